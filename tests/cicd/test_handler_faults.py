"""The deploy Lambda under faults, driven with real-shaped CodePipeline job events on the twin.

Faults are injected with botocore ``before-call`` hooks on private clients, never with sleeps; retry
backoff is set to zero so that nothing waits.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from cicd_helpers import ARTIFACTS, GlueRepo, job_config, job_record

from pipekit.aws import _calls, codepipeline, glue, ssm
from pipekit.aws._client import new_client as fresh_client
from pipekit.deploy import lambda_support
from pipekit.deploy.config import OWNER_TAG
from pipekit.local.codepipeline_twin import FakeLambdaContext, run_on_push

# The module, not the function pipekit.deploy re-exports under the same name.
apply_module = importlib.import_module("pipekit.deploy.apply")
OK_SCRIPT = "print('ok')\n"
FAIL_SCRIPT = "raise ValueError('bad input')\n"
LAST_DEPLOYED = "/pipekit/glue-deploy/glue-etl/last-deployed"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries happen, but their backoff is zero (raising=False: the names are what the fix adds)."""
    monkeypatch.setattr(_calls, "BASE_DELAY_S", 0.0)
    monkeypatch.setattr(lambda_support, "RESULT_BASE_DELAY_S", 0.0, raising=False)


class Fault:
    """A ``before-call`` hook answering the first ``times`` calls with AWS error ``code`` (None: forever)."""

    def __init__(self, code: str, times: int | None = None) -> None:
        self.code, self.times, self.calls = code, times, 0

    def __call__(self, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.calls += 1
        if self.times is not None and self.calls > self.times:
            return None  # let the call through
        return AWSResponse("https://twin", 400, {}, None), {
            "Error": {"Code": self.code, "Message": f"injected {self.code}"},
            "ResponseMetadata": {"HTTPStatusCode": 400}}


def _hooked(monkeypatch: pytest.MonkeyPatch, module: Any, service: str,
            hooks: dict[str, Callable[..., Any]]) -> Any:
    """A private client for ``service`` with ``hooks`` (event name -> fn), used by ``module`` in this test only."""
    client = fresh_client(service)
    for event, fn in hooks.items():
        client.meta.events.register(event, fn)
    monkeypatch.setattr(module, "client", lambda name, session=None, **kw: client)
    return client


def _push_and_run(repo: GlueRepo, handler, files: dict[str, str | None], **params: object):
    repo.commit(files)
    return run_on_push(handler, repository=repo.name, branch="main", artifact_bucket=ARTIFACTS,
                       user_parameters=repo.params(**params), poll_s=0.2)


def _runs(name: str) -> list[dict]:
    return boto3.client("glue").get_job_runs(JobName=name)["JobRuns"]


# ------------------------------------------------------------------------------ a. UserParameters


def test_prune_false_as_a_string_keeps_the_orphan(glue_repo: GlueRepo, handler) -> None:
    first = _push_and_run(glue_repo, handler, {"glue/jobs/old.json": job_config(run_after_deploy=False),
                                               "glue/jobs/keep.json": job_config(run_after_deploy=False),
                                               "glue/scripts/etl.py": OK_SCRIPT}, prune="false")
    assert first.status == "Succeeded", first.message
    run = _push_and_run(glue_repo, handler, {"glue/jobs/old.json": None}, prune="false")
    assert run.status == "Succeeded" and "orphaned old" in run.message, run.message
    assert glue.get_job("old") is not None


def test_watched_as_a_comma_separated_string(glue_repo: GlueRepo, handler) -> None:
    base = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(run_after_deploy=False),
                                              "glue/scripts/etl.py": OK_SCRIPT}, watched="glue/jobs")
    assert base.status == "Succeeded" and "created a" in base.message, base.message
    scripts_only = _push_and_run(glue_repo, handler, {"glue/scripts/etl.py": "print(2)\n"}, watched="glue/jobs")
    assert "No files under glue/jobs changed" in scripts_only.message, scripts_only.message
    both = _push_and_run(glue_repo, handler, {"glue/scripts/etl.py": "print(3)\n"},
                         watched=" glue/jobs, glue/scripts ")
    assert both.status == "Succeeded" and "nothing to deploy" not in both.message, both.message


def test_bad_user_parameters_name_every_bad_key(glue_repo: GlueRepo, handler) -> None:
    event = glue_repo.event("invoke.json", commit="a" * 40, params={
        "bucket": "s3://glue-assets", "repository": "glue-etl", "prune": "yes", "watchd": ["glue/jobs"]})
    assert handler(event, FakeLambdaContext())["status"] == "failed"
    message = job_record(event["CodePipeline.job"]["id"])["results"][0]["failureDetails"]["message"]
    assert "UserParameters has 3 problem(s)" in message
    assert "field 'bucket'" in message and "field 'prune': 'yes' is not one of" in message
    assert "field 'watchd': is not a known field" in message and "user_parameters.schema.json" in message


# ------------------------------------------------------------------------ b. continuation tokens


@pytest.mark.parametrize("token", [
    "not json {",
    '["runs"]',
    '{"runs": {}}',
    '{"revision": "' + "a" * 40 + '", "runs": ["jr_1"]}',
    "{" + "x" * 500,
], ids=["not-json", "array", "no-revision", "runs-not-a-map", "long"])
def test_malformed_continuation_token_fails_naming_the_token(glue_repo: GlueRepo, handler, token: str) -> None:
    event = glue_repo.event("invoke_continuation.json", commit="a" * 40, token=token)
    out = handler(event, FakeLambdaContext())
    record = job_record(event["CodePipeline.job"]["id"])
    assert out["status"] == "failed" and record["status"] == "Failed" and len(record["results"]) == 1
    message = record["results"][0]["failureDetails"]["message"]
    assert message.startswith("Deployment failed. The continuation token "), message
    assert repr(token[:20])[:-1] in message  # the token's beginning, quoted
    assert "Release the change again" in message and "bug" not in message
    if len(token) > 100:
        assert token not in message and f"({len(token)} characters)" in message


# -------------------------------------------------------------------------------------- c. orphans


@pytest.mark.parametrize("delete_script", [False, True], ids=["config-deleted", "config-and-script-deleted"])
def test_orphan_of_a_failed_deploy_is_reported_whatever_the_history(glue_repo: GlueRepo, handler,
                                                                    delete_script: bool) -> None:
    glue.create_job("theirs", {"Role": "r", "Command": {"Name": "glueetl", "ScriptLocation": "s3://x/y.py"}},
                    {OWNER_TAG: "another-repo"})
    glue.create_job("untagged", {"Role": "r", "Command": {"Name": "glueetl", "ScriptLocation": "s3://x/y.py"}})
    ok = _push_and_run(glue_repo, handler, {"glue/jobs/keep.json": job_config(run_after_deploy=False),
                                            "glue/scripts/etl.py": OK_SCRIPT})
    assert ok.status == "Succeeded", ok.message
    failed = _push_and_run(glue_repo, handler, {"glue/jobs/flaky.json": job_config(script="bad.py"),
                                                "glue/scripts/bad.py": FAIL_SCRIPT})
    assert failed.status == "Failed" and glue.get_job("flaky") is not None, failed.message
    assert ssm.get_parameter(LAST_DEPLOYED) == ok.commit  # the diff still starts before flaky existed

    removal: dict[str, str | None] = {"glue/jobs/flaky.json": None}
    if delete_script:
        removal["glue/scripts/bad.py"] = None  # the diff from the last success is then empty
    run = _push_and_run(glue_repo, handler, removal)
    assert run.status == "Succeeded" and "orphaned flaky" in run.message, run.message
    assert "theirs" not in run.message and "untagged" not in run.message
    assert glue.get_job("flaky") is not None  # reported, left in place

    pruned = _push_and_run(glue_repo, handler, {"README.md": "x"}, prune=True)
    assert pruned.status == "Succeeded" and "deleted flaky" in pruned.message, pruned.message
    assert glue.get_job("flaky") is None
    assert all(glue.get_job(n) is not None for n in ("keep", "theirs", "untagged"))


def test_without_list_jobs_permission_orphans_come_from_the_diff(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    _push_and_run(glue_repo, handler, {"glue/jobs/old.json": job_config(run_after_deploy=False),
                                       "glue/jobs/keep.json": job_config(run_after_deploy=False),
                                       "glue/scripts/etl.py": OK_SCRIPT})
    denied = Fault("AccessDeniedException")
    _hooked(monkeypatch, apply_module, "glue", {"before-call.glue.ListJobs": denied})
    run = _push_and_run(glue_repo, handler, {"glue/jobs/old.json": None})
    assert run.status == "Succeeded" and "orphaned old" in run.message, run.message
    assert "lacks glue:ListJobs" in run.message and denied.calls == 1


# ----------------------------------------------------------------------- d. throttled results, SSM


def test_throttled_success_result_is_retried_and_reported_once(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    fault = Fault("ThrottlingException", times=6)  # more than the four attempts of an ordinary call
    _hooked(monkeypatch, codepipeline, "codepipeline", {"before-call.codepipeline.PutJobSuccessResult": fault})
    run = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(run_after_deploy=False),
                                             "glue/scripts/etl.py": OK_SCRIPT})
    assert run.status == "Succeeded", run.message
    assert [r["type"] for r in run.invocations[-1].job["results"]] == ["success"]
    assert fault.calls == 7 and ssm.get_parameter(LAST_DEPLOYED) == run.commit


def test_success_never_accepted_reports_a_truthful_failure_once(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    success = Fault("ThrottlingException")  # never accepted
    failure = Fault("ThrottlingException", times=5)
    _hooked(monkeypatch, codepipeline, "codepipeline", {
        "before-call.codepipeline.PutJobSuccessResult": success,
        "before-call.codepipeline.PutJobFailureResult": failure})
    run = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(run_after_deploy=False),
                                             "glue/scripts/etl.py": OK_SCRIPT})
    results = run.invocations[-1].job["results"]
    assert run.status == "Failed" and [r["type"] for r in results] == ["failure"], run.message
    assert "The deployment finished and is recorded, but CodePipeline did not accept the success" in run.message
    assert "created a" in run.message and "Retry the stage" in run.message
    assert success.calls == lambda_support.RESULT_ATTEMPTS and failure.calls == 6
    assert ssm.get_parameter(LAST_DEPLOYED) == run.commit


def test_no_result_accepted_at_all_fails_the_lambda(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    _hooked(monkeypatch, codepipeline, "codepipeline", {
        "before-call.codepipeline.PutJobSuccessResult": Fault("ThrottlingException"),
        "before-call.codepipeline.PutJobFailureResult": Fault("ThrottlingException")})
    commit = glue_repo.commit({"README.md": "x"})
    event = glue_repo.event("invoke.json", commit=commit)
    with pytest.raises(lambda_support.ResultNotSent, match="no result could be reported"):
        handler(event, FakeLambdaContext())  # Lambda records the error and retries the event
    assert job_record(event["CodePipeline.job"]["id"])["results"] == []


def test_success_retries_stop_in_time_to_report_failure(twin, monkeypatch) -> None:
    from pipekit.deploy.pipeline import SUCCEEDED, Outcome
    from pipekit.local.codepipeline_twin import twin_call

    monkeypatch.setattr(lambda_support.random, "uniform", lambda low, high: high)  # the longest backoff
    monkeypatch.setattr(lambda_support, "RESULT_BASE_DELAY_S", 1.0)
    job_id = twin_call(twin.endpoint_url, "CodePipeline_20150709.PipekitCreateJob", {"data": {}})["jobId"]
    session = boto3.Session()
    client = codepipeline.client("codepipeline", session)
    success = Fault("ThrottlingException")
    client.meta.events.register("before-call.codepipeline.PutJobSuccessResult", success)
    delays: list[float] = []
    reporter = lambda_support.Reporter(job_id, session=session, sleep=delays.append,
                                       remaining_ms=lambda: lambda_support.RESULT_RESERVE_MS + 2_000)
    reporter.outcome(Outcome(SUCCEEDED, "Deployed abc."))
    record = job_record(job_id)
    assert [r["type"] for r in record["results"]] == ["failure"] and reporter.reported == "failed"
    assert "did not accept the success result" in record["results"][0]["failureDetails"]["message"]
    # 7 s left: after sleeping 1 s and 2 s, another 4 s would leave less than the 5 s reserve
    assert delays == [1.0, 2.0] and success.calls == 3
    reporter.failure("late watchdog")  # a final result was sent: nothing else is
    assert len(job_record(job_id)["results"]) == 1


def test_result_backoff_grows_and_is_capped(twin, monkeypatch) -> None:
    from pipekit.deploy.pipeline import SUCCEEDED, Outcome
    from pipekit.local.codepipeline_twin import twin_call

    monkeypatch.setattr(lambda_support.random, "uniform", lambda low, high: high)  # the longest backoff
    monkeypatch.setattr(lambda_support, "RESULT_BASE_DELAY_S", 1.0)
    job_id = twin_call(twin.endpoint_url, "CodePipeline_20150709.PipekitCreateJob", {"data": {}})["jobId"]
    session = boto3.Session()
    codepipeline.client("codepipeline", session).meta.events.register(
        "before-call.codepipeline.PutJobSuccessResult", Fault("ThrottlingException", times=6))
    delays: list[float] = []
    lambda_support.Reporter(job_id, session=session, sleep=delays.append).outcome(Outcome(SUCCEEDED, "ok"))
    cap = lambda_support.RESULT_MAX_DELAY_S
    assert delays == [min(cap, 2.0**k) for k in range(6)] and max(delays) == cap
    assert job_record(job_id)["status"] == "Succeeded"


def test_ssm_throttling_is_retried(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    put = Fault("TooManyUpdates", times=3)
    get = Fault("ThrottlingException", times=2)
    _hooked(monkeypatch, ssm, "ssm", {"before-call.ssm.PutParameter": put, "before-call.ssm.GetParameter": get})
    run = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(), "glue/scripts/etl.py": OK_SCRIPT})
    assert run.status == "Succeeded", run.message
    assert put.calls > 3 and get.calls > 2
    assert ssm.get_parameter(LAST_DEPLOYED) == run.commit


def test_reinvoked_job_that_already_has_a_result_sends_nothing_more(glue_repo: GlueRepo, handler) -> None:
    commit = glue_repo.commit({"README.md": "x"})
    event = glue_repo.event("invoke.json", commit=commit)
    assert handler(event, FakeLambdaContext())["status"] == "succeeded"
    handler(event, FakeLambdaContext())  # Lambda retried the event: InvalidJobStateException is "already sent"
    record = job_record(event["CodePipeline.job"]["id"])
    assert record["status"] == "Succeeded" and [r["type"] for r in record["results"]] == ["success"]


# ------------------------------------------------------------------------------------- e. watchdog


def test_after_the_watchdog_fires_nothing_else_starts(glue_repo: GlueRepo, handler, monkeypatch) -> None:
    from pipekit.deploy import sources

    monkeypatch.setattr(lambda_support, "SAFETY_MARGIN_MS", 1000)
    reported = threading.Event()
    _hooked(monkeypatch, codepipeline, "codepipeline",
            {"after-call.codepipeline.PutJobFailureResult": lambda **kw: reported.set()})
    diff = sources.CodeCommitSource.changes

    def diff_after_the_watchdog(self, since):
        assert reported.wait(60), "the watchdog never reported"
        return diff(self, since)

    monkeypatch.setattr(sources.CodeCommitSource, "changes", diff_after_the_watchdog)

    class Context:
        """0.5 s left when the watchdog is armed, so it fires at once; after that, time looks ample,
        so only the watchdog having fired can stop the deployment."""

        calls = 0

        def get_remaining_time_in_millis(self) -> int:
            self.calls += 1
            return 500 if self.calls == 1 else 600_000

    commit = glue_repo.commit({"glue/jobs/customers.json": job_config(), "glue/scripts/etl.py": OK_SCRIPT})
    event = glue_repo.event("invoke.json", commit=commit)
    out = handler(event, Context())
    record = job_record(event["CodePipeline.job"]["id"])
    assert out["status"] == "failed" and record["status"] == "Failed" and len(record["results"]) == 1
    assert "Lambda about to time out" in record["results"][0]["failureDetails"]["message"]
    assert glue.get_job("customers") is None  # nothing created, so no run started either
    assert ssm.get_parameter(LAST_DEPLOYED) is None
