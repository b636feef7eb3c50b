"""The twin runs a job's real script from S3 with its arguments, stages s3:// paths, reports state and errors.

These use tiny plain-Python scripts so they are fast; the Spark entrypoint runs in tests/aws.
"""

from __future__ import annotations

import textwrap
import time
import uuid

import pytest

from pipekit.aws import glue
from pipekit.errors import JobRunError
from pipekit.local.glue_twin import error_message

pytestmark = pytest.mark.twin

COPY_SCRIPT = textwrap.dedent('''
    import sys, pathlib
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    src, out = pathlib.Path(args["--source_path"]), pathlib.Path(args["--target_path"])
    rows = sum(len(p.read_text().splitlines()) - 1 for p in sorted(src.glob("*.csv")))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.txt"):
        old.unlink()
    (out / "rows.txt").write_text(f"{rows} {args['--JOB_NAME']} {args['--greeting']}\\n")
    (out / ".rows.txt.crc").write_text("local checksum, never uploaded")
    print("done")
''')

FAIL_SCRIPT = textwrap.dedent('''
    import sys
    print("starting", flush=True)
    raise ValueError("column FirstName is missing from s3://bucket/raw/customers.csv")
''')


@pytest.fixture()
def job(etl_twin):
    """Upload a script and create a job that runs it; yields (name, bucket, s3 client, put_script)."""
    import boto3

    s3 = boto3.client("s3")
    name = f"twin-job-{uuid.uuid4().hex[:8]}"
    bucket = etl_twin.bucket

    def create(script: str, **defaults: str) -> str:
        key = f"scripts/tests/{name}.py"
        s3.put_object(Bucket=bucket, Key=key, Body=script.encode())
        boto3.client("glue").create_job(
            Name=name, Role="arn:aws:iam::123456789012:role/glue", GlueVersion="5.0",
            Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/{key}", "PythonVersion": "3"},
            DefaultArguments=defaults, ExecutionProperty={"MaxConcurrentRuns": 1}, Timeout=5)
        return name

    return create, bucket, s3


def test_script_runs_with_merged_arguments_and_outputs_are_uploaded(job) -> None:
    create, bucket, s3 = job
    s3.put_object(Bucket=bucket, Key="temp-dir/jobin/a.csv", Body=b"id\n1\n2\n")
    s3.put_object(Bucket=bucket, Key="temp-dir/jobin/b.csv", Body=b"id\n3\n")
    s3.put_object(Bucket=bucket, Key="temp-dir/jobout/stale.txt", Body=b"old run")
    name = create(COPY_SCRIPT, **{"--source_path": f"s3://{bucket}/temp-dir/jobin/",
                                  "--target_path": f"s3://{bucket}/temp-dir/jobout/", "--greeting": "default"})
    run_id = glue.start_job_run(name, {"--greeting": "hello"})
    run = glue.wait_for_job_run(name, run_id, poll_s=0.2, timeout_s=120)
    assert run.state == "SUCCEEDED"
    body = s3.get_object(Bucket=bucket, Key="temp-dir/jobout/rows.txt")["Body"].read().decode()
    assert body.split() == ["3", name, "hello"]  # Arguments override DefaultArguments; --JOB_NAME passed
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="temp-dir/jobout/")["Contents"]}
    assert keys == {"temp-dir/jobout/rows.txt"}  # the deleted stale file is deleted in S3; .crc not uploaded
    # inputs are untouched
    assert s3.get_object(Bucket=bucket, Key="temp-dir/jobin/a.csv")["Body"].read() == b"id\n1\n2\n"
    import boto3

    api = boto3.client("glue").get_job_run(JobName=name, RunId=run_id)["JobRun"]
    assert api["Arguments"]["--greeting"] == "hello" and api["GlueVersion"] == "5.0"
    assert api["CompletedOn"] >= api["StartedOn"]
    logs = boto3.client("logs").get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id)
    assert any(e["message"] == "done" for e in logs["events"])


def test_failed_script_is_failed_with_its_error_message(job) -> None:
    create, _, _ = job
    name = create(FAIL_SCRIPT)
    run_id = glue.start_job_run(name)
    with pytest.raises(JobRunError) as info:
        glue.wait_for_job_run(name, run_id, poll_s=0.2, timeout_s=120)
    assert "ValueError: column FirstName is missing" in str(info.value)
    import boto3

    runs = boto3.client("glue").get_job_runs(JobName=name)["JobRuns"]
    assert [r["JobRunState"] for r in runs] == ["FAILED"]


def test_missing_script_fails_the_run_with_a_clear_message(etl_twin) -> None:
    import boto3

    name = f"no-script-{uuid.uuid4().hex[:6]}"
    boto3.client("glue").create_job(Name=name, Role="r", Command={
        "Name": "glueetl", "ScriptLocation": f"s3://{etl_twin.bucket}/scripts/missing.py"})
    run_id = glue.start_job_run(name)
    with pytest.raises(JobRunError, match="could not be read"):
        glue.wait_for_job_run(name, run_id, poll_s=0.2, timeout_s=60)


def test_concurrency_limit_and_stop(job) -> None:
    from botocore.exceptions import ClientError

    create, _, _ = job
    name = create("import time\ntime.sleep(60)\n")
    run_id = glue.start_job_run(name)
    import boto3

    with pytest.raises(ClientError, match="ConcurrentRunsExceeded"):
        boto3.client("glue").start_job_run(JobName=name)
    glue.stop_job_runs(name, [run_id])
    deadline = time.monotonic() + 30
    while glue.get_job_run(name, run_id).state != "STOPPED" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert glue.get_job_run(name, run_id).state == "STOPPED"


@pytest.mark.parametrize(("stderr", "expected"), [
    ("Traceback (most recent call last):\n  File \"x\", line 1\nValueError: bad thing\n", "ValueError: bad thing"),
    ("log line\nValidationError: no FirstName column -> fix the export\n",
     "ValidationError: no FirstName column -> fix the export"),
    ("py4j.protocol.Py4JJavaError: An error occurred\n\tat org.apache...\n", "py4j.protocol.Py4JJavaError: An error occurred"),
    ("", "Script exited with code 3: "),
])
def test_error_message_is_the_last_exception_line(stderr: str, expected: str) -> None:
    assert error_message(stderr, 3) == expected


def test_create_and_update_job_fill_in_aws_defaults_for_timeout_and_max_retries(etl_twin) -> None:
    """Left out of CreateJob/JobUpdate, Timeout reads 2,880 minutes (batch jobs) and MaxRetries 0, as on
    AWS (https://docs.aws.amazon.com/glue/latest/webapi/API_Job.html); given values are kept."""
    import boto3

    client = boto3.client("glue")
    name = f"defaults-{uuid.uuid4().hex[:6]}"
    command = {"Name": "glueetl", "ScriptLocation": f"s3://{etl_twin.bucket}/scripts/x.py"}
    client.create_job(Name=name, Role="r", Command=command)
    job = client.get_job(JobName=name)["Job"]
    assert (job["Timeout"], job["MaxRetries"]) == (2880, 0)
    client.update_job(JobName=name, JobUpdate={"Role": "r", "Command": command, "Timeout": 30, "MaxRetries": 2})
    job = client.get_job(JobName=name)["Job"]
    assert (job["Timeout"], job["MaxRetries"]) == (30, 2)
    client.update_job(JobName=name, JobUpdate={"Role": "r", "Command": command})  # omitted fields reset
    job = client.get_job(JobName=name)["Job"]
    assert (job["Timeout"], job["MaxRetries"]) == (2880, 0)
