"""pipekit.aws.glue against the twin (moto + UpdateJob/BatchStopJobRun) and with botocore Stubber."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.stub import ANY, Stubber

from pipekit.aws import _calls
from pipekit.aws import glue as g
from pipekit.errors import AwsError, JobRunError, ThrottledError

DEFN = {
    "Role": "arn:aws:iam::123456789012:role/glue",
    "Command": {"Name": "glueetl", "ScriptLocation": "s3://cicd-test-bucket/scripts/a.py", "PythonVersion": "3"},
    "GlueVersion": "5.0",
    "WorkerType": "G.1X",
    "NumberOfWorkers": 2,
    "DefaultArguments": {"--x": "1"},
}


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("STARTING", g.RunOutcome.IN_PROGRESS),
        ("RUNNING", g.RunOutcome.IN_PROGRESS),
        ("STOPPING", g.RunOutcome.IN_PROGRESS),
        ("WAITING", g.RunOutcome.IN_PROGRESS),
        ("SUCCEEDED", g.RunOutcome.SUCCEEDED),
        ("FAILED", g.RunOutcome.FAILED),
        ("ERROR", g.RunOutcome.FAILED),
        ("TIMEOUT", g.RunOutcome.FAILED),
        ("EXPIRED", g.RunOutcome.FAILED),
        ("STOPPED", g.RunOutcome.STOPPED),
    ],
)
def test_classify_every_glue_state(state: str, outcome: g.RunOutcome) -> None:
    assert g.classify_run_state(state) is outcome
    assert outcome.done is (outcome is not g.RunOutcome.IN_PROGRESS)


def test_every_state_in_the_glue_model_is_classified() -> None:
    shape = boto3.client("glue", region_name="us-east-1").meta.service_model.shape_for("JobRunState")
    assert set(shape.enum) == set(g.GLUE_RUN_STATES)


def test_unknown_state_is_an_error_not_a_wait() -> None:
    with pytest.raises(AwsError, match="unknown job-run state 'PAUSED'"):
        g.classify_run_state("PAUSED")


def _script(body: str, key: str = "scripts/a.py") -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cicd-test-bucket")
    s3.put_object(Bucket="cicd-test-bucket", Key=key, Body=body.encode())


def test_crud_update_tags_and_runs(reset_twin) -> None:
    _script("import sys\nassert '--y' in sys.argv and '--x' in sys.argv\n")
    assert g.get_job("j1") is None
    g.create_job("j1", DEFN, {"owner": "me"})
    with pytest.raises(AwsError, match="already exists"):
        g.create_job("j1", DEFN)
    g.update_job("j1", {**DEFN, "NumberOfWorkers": 5, "Timeout": 30})
    job = g.get_job("j1")
    assert job is not None and job["NumberOfWorkers"] == 5 and job["Timeout"] == 30
    arn = g.job_arn("j1")
    assert arn == "arn:aws:glue:us-east-1:123456789012:job/j1"
    g.tag_resource(arn, {"team": "data"})
    g.untag_resource(arn, ["owner"])
    assert g.get_tags(arn) == {"team": "data"}
    assert [j["Name"] for j in g.list_jobs()] == ["j1"]
    run_id = g.start_job_run("j1", {"--y": "2"})
    run = g.wait_for_job_run("j1", run_id, poll_s=0.2, timeout_s=30)
    assert run.outcome is g.RunOutcome.SUCCEEDED and run.run_id == run_id


def test_update_missing_job_names_it(reset_twin) -> None:
    with pytest.raises(AwsError, match="Glue job 'nope' \\(UpdateJob\\): EntityNotFoundException"):
        g.update_job("nope", DEFN)


def test_stop_job_run(reset_twin) -> None:
    _script("import time\ntime.sleep(60)\n")
    g.create_job("j2", DEFN)
    run_id = g.start_job_run("j2")
    # Let the twin's runner launch the script first (it stages inputs before starting the process).
    time.sleep(1.5)
    g.stop_job_runs("j2", [run_id])
    run = g.wait_for_job_run("j2", run_id, poll_s=0.2, timeout_s=30, raise_on_failure=False)
    assert run.outcome is g.RunOutcome.STOPPED
    with pytest.raises(AwsError, match="already STOPPED"):
        g.stop_job_runs("j2", [run_id])


def test_failed_run_on_the_twin_carries_the_script_error(reset_twin) -> None:
    _script("raise ValueError('column FirstName is missing')\n")
    g.create_job("j3", DEFN)
    with pytest.raises(JobRunError, match="ValueError: column FirstName is missing"):
        g.wait_for_job_run("j3", g.start_job_run("j3"), poll_s=0.2, timeout_s=30)


def _stubbed(monkeypatch) -> tuple[Stubber, object]:
    glue = boto3.client("glue", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(g, "_glue", lambda session: glue)
    return Stubber(glue), glue


def test_failed_run_carries_glue_error_message(monkeypatch) -> None:
    stub, _ = _stubbed(monkeypatch)
    stub.add_response("get_job_run", {"JobRun": {"Id": "jr_1", "JobName": "j", "JobRunState": "RUNNING"}})
    stub.add_response("get_job_run", {"JobRun": {"Id": "jr_1", "JobName": "j", "JobRunState": "FAILED",
                                                 "ErrorMessage": "AnalysisException: column x not found"}})
    polls: list[str] = []
    with stub, pytest.raises(JobRunError, match="FAILED: AnalysisException: column x not found"):
        g.wait_for_job_run("j", "jr_1", poll_s=0, on_poll=lambda r: polls.append(r.state))
    assert polls == ["RUNNING", "FAILED"]


def test_throttling_is_retried_then_succeeds(monkeypatch) -> None:
    stub, _ = _stubbed(monkeypatch)
    monkeypatch.setattr(_calls, "BASE_DELAY_S", 0.0)
    stub.add_client_error("start_job_run", "ThrottlingException", "Rate exceeded")
    stub.add_client_error("start_job_run", "ThrottlingException", "Rate exceeded")
    stub.add_response("start_job_run", {"JobRunId": "jr_ok"})
    with stub:
        assert g.start_job_run("j") == "jr_ok"
        stub.assert_no_pending_responses()


def test_throttling_gives_up_with_typed_retryable_error(monkeypatch) -> None:
    stub, _ = _stubbed(monkeypatch)
    monkeypatch.setattr(_calls, "BASE_DELAY_S", 0.0)
    for _ in range(_calls.ATTEMPTS):
        stub.add_client_error("get_job", "ThrottlingException", "Rate exceeded")
    with stub, pytest.raises(ThrottledError) as info:
        g.get_job("j")
    assert info.value.retryable and "Glue job 'j' (GetJob)" in info.value.message


def test_reporter_reports_once_and_falls_back_to_failure(monkeypatch) -> None:
    from pipekit.aws import codepipeline
    from pipekit.deploy.lambda_support import Reporter
    from pipekit.deploy.pipeline import SUCCEEDED, Outcome

    cp = boto3.client("codepipeline", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(codepipeline, "client", lambda service, session=None: cp)
    monkeypatch.setattr(_calls, "BASE_DELAY_S", 0.0)
    stub = Stubber(cp)
    stub.add_client_error("put_job_success_result", "ValidationException", "summary too long")
    sent: list[str] = []
    stub.add_response("put_job_failure_result", {}, {"jobId": "j1", "failureDetails": {
        "type": "JobFailed", "message": ANY}})
    cp.meta.events.register("before-parameter-build.codepipeline.PutJobFailureResult",
                            lambda params, **kw: sent.append(params["failureDetails"]["message"]))
    with stub:
        rep = Reporter("j1")
        rep.outcome(Outcome(SUCCEEDED, "Deployed abc."))  # not accepted: the Reporter itself reports failure
        assert rep.reported == "failed"
        rep.failure("the handler's except-path")  # no stubbed response left: would raise if called
        rep.failure("a second failure is not reported")
        stub.assert_no_pending_responses()
    (message,) = sent
    assert "The deployment finished and is recorded, but CodePipeline did not accept the success" in message
    assert "ValidationException: summary too long" in message and "Deployed abc." in message
