"""Bad input gives a clear, typed error and leaves the raw data untouched."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipekit import etl
from pipekit.cli import app
from pipekit.errors import InputError, JobRunError, ValidationError

pytestmark = pytest.mark.twin


def _raw_state(twin) -> dict[str, str]:
    import boto3

    prefix = twin.outputs["RawPrefix"].split("/", 3)[3]
    objs = boto3.client("s3").list_objects_v2(Bucket=twin.bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in objs}


def test_empty_file_is_refused_before_upload(etl_twin, tmp_path) -> None:
    before = _raw_state(etl_twin)
    empty = tmp_path / "customers.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        etl.ingest(empty)
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("CustomerID,FirstName,EmailAddress\n")
    with pytest.raises(InputError, match="no data rows"):
        etl.ingest(header_only)
    assert _raw_state(etl_twin) == before


def test_missing_first_name_column_is_refused(etl_twin, tmp_path) -> None:
    before = _raw_state(etl_twin)
    bad = tmp_path / "customers.csv"
    bad.write_text("CustomerID,LastName,EmailAddress\n1,Smith,a@example.com\n")
    original = bad.read_bytes()
    with pytest.raises(ValidationError, match="FirstName"):
        etl.run(bad)
    assert bad.read_bytes() == original
    assert _raw_state(etl_twin) == before


def test_cli_reports_bad_input_without_a_traceback(etl_twin, tmp_path) -> None:
    bad = tmp_path / "customers.csv"
    bad.write_text("CustomerID,LastName\n1,Smith\n")
    result = CliRunner().invoke(app, ["aws", "ingest", str(bad)])
    assert result.exit_code == 1
    assert "FirstName" in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["etl", "run", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_missing_stack_is_a_clear_error(etl_twin) -> None:
    result = CliRunner().invoke(app, ["etl", "verify", "--stack", "no-such-stack"])
    assert result.exit_code == 2
    assert "no-such-stack" in result.output and "does not exist" in result.output


def test_a_failing_job_reports_glue_error_message_and_raw_data_stays(pipeline_run, etl_twin) -> None:
    """The real script on a CSV without FirstName: the run FAILS with the script's message (one Spark run)."""
    import boto3

    s3 = boto3.client("s3")
    bucket = etl_twin.bucket
    s3.put_object(Bucket=bucket, Key="temp-dir/bad-input/customers.csv",
                  Body=b"CustomerID,LastName,EmailAddress\n1,Smith,a@example.com\n")
    before = _raw_state(etl_twin)
    parquet_prefix = etl_twin.outputs["ParquetPrefix"].split("/", 3)[3]
    parquet_before = {o["Key"]: o["ETag"] for o in
                      s3.list_objects_v2(Bucket=bucket, Prefix=parquet_prefix).get("Contents", [])}
    result = CliRunner().invoke(app, [
        "aws", "run-job", "customers-etl", "--wait", "--poll", "0.5",
        "--arg", f"--source_path=s3://{bucket}/temp-dir/bad-input/",
        "--arg", f"--target_path=s3://{bucket}/temp-dir/bad-output/",
    ])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and "FirstName" in result.output
    assert "Traceback" not in result.output
    assert _raw_state(etl_twin) == before
    after = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=parquet_prefix).get("Contents", [])}
    assert after == parquet_before
    assert not s3.list_objects_v2(Bucket=bucket, Prefix="temp-dir/bad-output/").get("Contents")
    # and through the Python API the same failure is a JobRunError carrying Glue's ErrorMessage
    from pipekit.aws import glue

    runs = boto3.client("glue").get_job_runs(JobName="customers-etl")["JobRuns"]
    failed = next(r for r in runs if r["JobRunState"] == "FAILED")
    assert "FirstName" in failed["ErrorMessage"]
    with pytest.raises(JobRunError, match="FirstName"):
        glue.wait_for_job_run("customers-etl", failed["Id"], poll_s=0.1)
