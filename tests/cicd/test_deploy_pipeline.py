"""The deploy Lambda end to end on the twin: real git repo behind CodeCommit, real-shaped events,
real handler, Glue jobs created/updated in the twin and their scripts run for real."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from cicd_helpers import BUCKET, ROLE, GlueRepo, job_config, job_record

from pipekit.aws import _calls, glue, ssm
from pipekit.aws._client import new_client as fresh_client
from pipekit.deploy import lambda_support
from pipekit.deploy import runs as job_runs
from pipekit.local.codepipeline_twin import FakeLambdaContext, run_on_push

OK_SCRIPT = "import sys\nprint('args', sys.argv[1:])\n"
SLOW_SCRIPT = "import time\ntime.sleep(2.5)\nprint('done')\n"
FAIL_SCRIPT = "raise ValueError('column FirstName is missing in s3://raw/customers.csv')\n"


def _push_and_run(repo: GlueRepo, handler, files: dict[str, str | None], **params: object):
    repo.commit(files)
    return run_on_push(handler, repository=repo.name, branch="main", artifact_bucket="pipeline-artifacts-cicd",
                       user_parameters=repo.params(**params), poll_s=0.3)


def _runs(name: str) -> list[dict]:
    return boto3.client("glue").get_job_runs(JobName=name)["JobRuns"]


def test_create_then_update_then_unchanged(glue_repo: GlueRepo, handler) -> None:
    run = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(),
                                             "glue/scripts/etl.py": OK_SCRIPT})
    assert run.status == "Succeeded", run.message
    assert "created customers" in run.message and "SUCCEEDED" in run.message
    job = glue.get_job("customers")
    assert job["Command"]["ScriptLocation"] == f"s3://{BUCKET}/scripts/etl.py"
    assert job["Role"] == ROLE
    tags = glue.get_tags(glue.job_arn("customers"))
    assert tags == {"team": "data", "pipekit:owner": "glue-etl", "pipekit:config": "glue/jobs/customers.json"}
    assert boto3.client("s3").get_object(Bucket=BUCKET, Key="scripts/etl.py")["Body"].read() == OK_SCRIPT.encode()
    assert ssm.get_parameter("/pipekit/glue-deploy/glue-etl/last-deployed") == run.commit
    assert len(_runs("customers")) == 1

    # update: a field-level change and a tag change
    run2 = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(
        number_of_workers=5, tags={"team": "analytics"})})
    assert run2.status == "Succeeded", run2.message
    assert "updated customers" in run2.message
    assert glue.get_job("customers")["NumberOfWorkers"] == 5
    assert glue.get_tags(glue.job_arn("customers"))["team"] == "analytics"
    assert len(_runs("customers")) == 2

    # unchanged: another job's config changes; customers is neither updated nor run again
    run3 = _push_and_run(glue_repo, handler, {"glue/jobs/other.json": job_config(run_after_deploy=False)})
    assert run3.status == "Succeeded", run3.message
    assert "created other" in run3.message and "unchanged customers" in run3.message
    assert len(_runs("customers")) == 2 and _runs("other") == []


def test_commit_without_watched_files_succeeds_in_one_invocation_and_does_nothing(glue_repo: GlueRepo, handler) -> None:
    _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(run_after_deploy=False),
                                       "glue/scripts/etl.py": OK_SCRIPT})
    run = _push_and_run(glue_repo, handler, {"README.md": "docs only\n"})
    assert run.status == "Succeeded"
    assert "nothing to deploy" in run.message
    assert len(run.invocations) == 1  # answered at once: no continuation, no waiting on a run
    assert ssm.get_parameter("/pipekit/glue-deploy/glue-etl/last-deployed") == run.commit


def test_bad_config_fails_naming_file_and_field(glue_repo: GlueRepo, handler) -> None:
    run = _push_and_run(glue_repo, handler, {
        "glue/jobs/customers.json": job_config(number_of_workers=0, worker_type="G.3X"),
        "glue/scripts/etl.py": OK_SCRIPT})
    assert run.status == "Failed"
    assert "Bad Glue job config" in run.message
    assert "glue/jobs/customers.json: field 'number_of_workers': 0 is less than the minimum of 2" in run.message
    assert "glue/jobs/customers.json: field 'worker_type'" in run.message
    assert glue.get_job("customers") is None
    assert ssm.get_parameter("/pipekit/glue-deploy/glue-etl/last-deployed") is None


def test_failed_glue_run_reports_glue_error_message(glue_repo: GlueRepo, handler) -> None:
    run = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(),
                                             "glue/scripts/etl.py": FAIL_SCRIPT})
    assert run.status == "Failed"
    assert "Glue job run failed" in run.message
    assert "ValueError: column FirstName is missing in s3://raw/customers.csv" in run.message
    # the job itself was deployed; only the run failed, so the commit is not marked deployed
    assert glue.get_job("customers") is not None
    assert ssm.get_parameter("/pipekit/glue-deploy/glue-etl/last-deployed") is None


def test_long_run_returns_continuation_token_then_succeeds(glue_repo: GlueRepo, handler) -> None:
    run = _push_and_run(glue_repo, handler, {"glue/jobs/slow.json": job_config(),
                                             "glue/scripts/etl.py": SLOW_SCRIPT})
    assert run.status == "Succeeded", run.message
    first, last = run.invocations[0], run.invocations[-1]
    assert len(run.invocations) >= 2
    token = first.result["continuationToken"]
    assert json.loads(token)["revision"] == run.commit and "slow" in json.loads(token)["runs"]
    assert first.job["status"] == "InProgress"
    assert last.event["CodePipeline.job"]["data"]["continuationToken"]
    assert last.job["status"] == "Succeeded" and "SUCCEEDED" in last.result["executionDetails"]["summary"]
    assert len(_runs("slow")) == 1


def test_reinvoking_the_same_job_id_never_starts_a_run_twice(glue_repo: GlueRepo, handler) -> None:
    commit = glue_repo.commit({"glue/jobs/slow_reinvoke.json": job_config(), "glue/scripts/etl.py": SLOW_SCRIPT})
    event = glue_repo.event("invoke.json", commit=commit)
    first = handler(event, FakeLambdaContext())
    assert first["status"] == "in_progress"
    again = handler(event, FakeLambdaContext())  # Lambda retried the same CodePipeline job
    assert again["status"] in ("in_progress", "succeeded")
    assert len(_runs("slow_reinvoke")) == 1
    # a new job for the same commit (a re-run of the stage) resumes too
    handler(glue_repo.event("invoke.json", commit=commit), FakeLambdaContext())
    assert len(_runs("slow_reinvoke")) == 1


def test_continuation_fixture_checks_runs_only(glue_repo: GlueRepo, handler) -> None:
    commit = glue_repo.commit({"glue/jobs/slow_cont.json": job_config(), "glue/scripts/etl.py": SLOW_SCRIPT})
    first_id = glue_repo.event("invoke.json", commit=commit)
    handler(first_id, FakeLambdaContext())
    token = job_record(first_id["CodePipeline.job"]["id"])["results"][-1]["continuationToken"]
    deadline = time.monotonic() + 30
    while True:
        event = glue_repo.event("invoke_continuation.json", commit=commit, token=token)
        out = handler(event, FakeLambdaContext())
        record = job_record(event["CodePipeline.job"]["id"])
        if out["status"] != "in_progress" or time.monotonic() > deadline:
            break
        token = record["results"][-1]["continuationToken"]
        time.sleep(0.3)
    assert out["status"] == "succeeded" and record["status"] == "Succeeded"
    assert len(_runs("slow_cont")) == 1


def test_api_throttling_is_retried(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    from botocore.awsrequest import AWSResponse

    monkeypatch.setattr(_calls, "BASE_DELAY_S", 0.01)
    throttled: list[str] = []
    def throttle(**kwargs):
        if len(throttled) < 2:
            throttled.append("StartJobRun")
            return AWSResponse("http://twin", 400, {}, None), {
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    client = fresh_client("glue")  # a private client: the hook must not leak into the cached one
    client.meta.events.register("before-call.glue.StartJobRun", throttle)

    # StartJobRun goes through the deploy's one-shot client: each retry comes after a search for the run
    monkeypatch.setattr(job_runs, "_glue_once", lambda session: client)
    monkeypatch.setattr(job_runs, "START_BASE_DELAY_S", 0.01)
    run = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(),
                                             "glue/scripts/etl.py": OK_SCRIPT})
    assert run.status == "Succeeded", run.message
    assert throttled == ["StartJobRun", "StartJobRun"]
    assert len(_runs("customers")) == 1


def test_throttling_that_never_stops_is_reported_as_api_error(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    from botocore.awsrequest import AWSResponse

    monkeypatch.setattr(_calls, "BASE_DELAY_S", 0.0)
    client = fresh_client("glue")  # a private client: the hook must not leak into the cached one
    client.meta.events.register("before-call.glue.GetJob", lambda **kw: (
        AWSResponse("http://twin", 400, {}, None),
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {}}))
    monkeypatch.setattr(glue, "_glue", lambda session: client)
    run = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(),
                                             "glue/scripts/etl.py": OK_SCRIPT})
    assert run.status == "Failed"
    assert "AWS API error (throttled" in run.message and "Glue job 'customers' (GetJob)" in run.message


def test_unexpected_exception_is_reported_not_hung(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    from pipekit.deploy import pipeline

    def boom(*args, **kwargs):
        raise KeyError("Command")

    monkeypatch.setattr(pipeline, "plan", boom)
    run = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(),
                                             "glue/scripts/etl.py": OK_SCRIPT})
    assert run.status == "Failed"
    assert run.message.startswith("Unexpected error: KeyError: 'Command'")


def test_about_to_time_out_reports_failure_before_the_step(glue_repo: GlueRepo, handler) -> None:
    commit = glue_repo.commit({"glue/jobs/customers.json": job_config(), "glue/scripts/etl.py": OK_SCRIPT})
    event = glue_repo.event("invoke.json", commit=commit)
    out = handler(event, FakeLambdaContext(timeout_s=5))  # less than the 20 s safety margin
    assert out["status"] == "failed"
    record = job_record(event["CodePipeline.job"]["id"])
    assert record["status"] == "Failed"
    assert "Lambda about to time out" in record["results"][-1]["failureDetails"]["message"]


def test_watchdog_reports_when_a_call_hangs(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    from pipekit.deploy import sources

    monkeypatch.setattr(lambda_support, "SAFETY_MARGIN_MS", 1000)
    monkeypatch.setattr(sources.CodeCommitSource, "changes", lambda self, since: time.sleep(3) or [])
    commit = glue_repo.commit({"glue/jobs/customers.json": job_config()})
    event = glue_repo.event("invoke.json", commit=commit)
    handler(event, FakeLambdaContext(timeout_s=1.6))
    record = job_record(event["CodePipeline.job"]["id"])
    assert record["status"] == "Failed" and len(record["results"]) == 1
    assert "still in step 'diff'" in record["results"][0]["failureDetails"]["message"]


def test_bad_user_parameters_fixture_fails_with_reason(glue_repo: GlueRepo, handler) -> None:
    event = glue_repo.event("invoke_bad_user_parameters.json", commit="0" * 40)
    out = handler(event, FakeLambdaContext())
    assert out["status"] == "failed"
    message = job_record(event["CodePipeline.job"]["id"])["results"][-1]["failureDetails"]["message"]
    assert "UserParameters is not valid JSON" in message


def test_job_owned_by_someone_else_is_never_touched(glue_repo: GlueRepo, handler) -> None:
    glue.create_job("customers", {"Role": ROLE, "Command": {"Name": "glueetl", "ScriptLocation": "s3://x/y.py"},
                                  "NumberOfWorkers": 10, "WorkerType": "G.2X", "GlueVersion": "4.0"},
                    {"pipekit:owner": "another-repo"})
    run = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(),
                                             "glue/scripts/etl.py": OK_SCRIPT})
    assert run.status == "Failed" and "owned by 'another-repo'" in run.message
    assert glue.get_job("customers")["NumberOfWorkers"] == 10 and _runs("customers") == []


@pytest.mark.parametrize("source", ["zip", "git"])
def test_zip_and_full_clone_sources(glue_repo: GlueRepo, handler, source: str, monkeypatch) -> None:
    if source == "git":
        # A full-clone artifact: zip the working tree including .git, as a CodeBuild clone step would.
        import io
        import zipfile
        from pathlib import Path

        from pipekit.local import codepipeline_twin

        def clone_zip(repository, commit, *, session=None):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for p in Path(glue_repo.work).rglob("*"):
                    if p.is_file():
                        z.write(p, p.relative_to(glue_repo.work).as_posix())
            return buf.getvalue()

        monkeypatch.setattr(codepipeline_twin, "source_zip", clone_zip)
    run1 = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(run_after_deploy=False),
                                              "glue/scripts/etl.py": OK_SCRIPT}, source=source, owner="team-a")
    assert run1.status == "Succeeded" and "created customers" in run1.message, run1.message
    run2 = _push_and_run(glue_repo, handler, {"README.md": "x"}, source=source, owner="team-a")
    assert run2.status == "Succeeded" and "nothing to deploy" in run2.message, run2.message
    run3 = _push_and_run(glue_repo, handler, {"glue/jobs/customers.json": job_config(
        run_after_deploy=False, timeout_minutes=20)}, source=source, owner="team-a")
    assert run3.status == "Succeeded" and "updated customers" in run3.message, run3.message
    assert glue.get_job("customers")["Timeout"] == 20


def test_push_trigger_runs_the_pipeline_on_git_push(glue_repo: GlueRepo) -> None:
    import subprocess

    from pipekit.local.codepipeline_twin import install_push_trigger

    install_push_trigger(glue_repo.name, bucket=BUCKET, artifact_bucket="pipeline-artifacts-cicd", poll_s=0.3)
    (glue_repo.work / "glue/jobs").mkdir(parents=True)
    (glue_repo.work / "glue/scripts").mkdir(parents=True)
    (glue_repo.work / "glue/jobs/pushed.json").write_text(job_config())
    (glue_repo.work / "glue/scripts/etl.py").write_text(OK_SCRIPT)
    glue_repo.git("add", "-A")
    glue_repo.git("commit", "-q", "-m", "add pushed")
    proc = subprocess.run(["git", "-C", str(glue_repo.work), "push", "origin", "HEAD:main"], capture_output=True,
                          text=True, timeout=300)
    sha = glue_repo.git("rev-parse", "HEAD")
    assert f"remote: pipeline for {sha[:12]}: Succeeded" in proc.stderr, proc.stderr
    assert glue.get_job("pushed") is not None and len(_runs("pushed")) == 1


def test_first_deploy_diffs_against_the_parent_commit(glue_repo: GlueRepo, handler) -> None:
    """With no last-deployed commit in SSM, the baseline is the commit's parent (issue: 'parent the first time')."""
    glue_repo.commit({"glue/jobs/early.json": job_config(run_after_deploy=False), "glue/scripts/etl.py": OK_SCRIPT})
    run = _push_and_run(glue_repo, handler, {"glue/jobs/later.json": job_config(run_after_deploy=False)})
    assert run.status == "Succeeded", run.message
    parent = glue_repo.git("rev-parse", "HEAD~1")
    assert "created later" in run.message
    # every config at the commit is reconciled (desired state), but only this commit's changes triggered it
    assert glue.get_job("later") is not None and glue.get_job("early") is not None
    readme = _push_and_run(glue_repo, handler, {"README.md": "x"})
    assert run.commit[:12] in readme.message and parent[:12] not in readme.message


def test_job_details_are_recorded_for_each_invocation(glue_repo: GlueRepo, handler) -> None:
    from pipekit.aws import codepipeline

    run = _push_and_run(glue_repo, handler, {"README.md": "x"})
    details = codepipeline.get_job_details(run.invocations[0].job_id)
    assert details["data"]["inputArtifacts"][0]["revision"] == run.commit
    assert json.loads(details["data"]["actionConfiguration"]["configuration"]["UserParameters"])["repository"] \
        == glue_repo.name


def test_short_of_time_after_starting_runs_hands_over_to_the_next_invocation(glue_repo: GlueRepo) -> None:
    """Out of time between two StartJobRun calls: continue (token), start the rest next time, never twice."""
    from pipekit.deploy import pipeline
    from pipekit.deploy.event import DeploySettings
    from pipekit.deploy.sources import CodeCommitSource

    commit = glue_repo.commit({"glue/jobs/ta.json": job_config(), "glue/jobs/tb.json": job_config(),
                               "glue/scripts/etl.py": OK_SCRIPT})
    settings = DeploySettings.from_user_parameters(glue_repo.params())
    source = CodeCommitSource(glue_repo.name, commit)

    def short(step: str) -> None:
        if step == "start run of tb" or step.startswith("check run"):
            raise pipeline.DeployTimeout(f"no time for {step}")

    first = pipeline.run(settings, source, check_time=short)
    assert first.status == pipeline.IN_PROGRESS and first.continuation_token
    assert "tb (not checked yet)" in first.summary
    assert len(_runs("ta")) == 1 and _runs("tb") == []
    token = first.continuation_token
    for _ in range(60):
        out = pipeline.run(settings, source, continuation_token=token)
        if out.status != pipeline.IN_PROGRESS:
            break
        token = out.continuation_token
        time.sleep(0.3)
    assert out.status == pipeline.SUCCEEDED, out.summary
    assert len(_runs("ta")) == 1 and len(_runs("tb")) == 1


def test_removed_config_orphans_the_job_and_prune_deletes_it(glue_repo: GlueRepo, handler) -> None:
    _push_and_run(glue_repo, handler, {"glue/jobs/old.json": job_config(run_after_deploy=False),
                                       "glue/jobs/keep.json": job_config(run_after_deploy=False),
                                       "glue/scripts/etl.py": OK_SCRIPT})
    run = _push_and_run(glue_repo, handler, {"glue/jobs/old.json": None})
    assert run.status == "Succeeded" and "orphaned old" in run.message, run.message
    assert glue.get_job("old") is not None  # left in place by default
    # still an orphan in later deploys, whose diffs do not mention it
    run = _push_and_run(glue_repo, handler, {"glue/jobs/keep.json": job_config(run_after_deploy=False,
                                                                                 timeout_minutes=11)})
    assert "updated keep" in run.message and "orphaned old" in run.message, run.message
    run = _push_and_run(glue_repo, handler, {"glue/jobs/keep.json": None,
                                             "glue/jobs/new.json": job_config(run_after_deploy=False)}, prune=True)
    assert run.status == "Succeeded" and "created new" in run.message, run.message
    assert "deleted keep" in run.message and "deleted old" in run.message, run.message
    assert glue.get_job("old") is None and glue.get_job("keep") is None and glue.get_job("new") is not None
