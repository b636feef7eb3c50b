"""No duplicate Glue run under any fault: one final result per CodePipeline job, one run per job and revision.

Faults are injected with botocore ``before-call``/``after-call`` hooks registered on every client pipekit
builds during the test (whichever client a code path uses), never with sleeps.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from cicd_helpers import ARTIFACTS, GlueRepo, job_config, job_record

from pipekit.aws import _calls, _client, ssm
from pipekit.deploy import lambda_support
from pipekit.local.codepipeline_twin import FakeLambdaContext, run_on_push

SLOW_SCRIPT = "import time\ntime.sleep(1.5)\nprint('done')\n"
OK_SCRIPT = "print('ok')\n"
RUNS_PARAMETER = "/pipekit/glue-deploy/glue-etl/runs"
REVISION_ARG = "--pipekit_revision"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_calls, "BASE_DELAY_S", 0.0)
    monkeypatch.setattr(lambda_support, "RESULT_BASE_DELAY_S", 0.0)
    try:
        from pipekit.deploy import runs
    except ImportError:  # before the fix
        return
    monkeypatch.setattr(runs, "START_BASE_DELAY_S", 0.0)


@pytest.fixture()
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Callable[..., Any]]]:
    """Event name -> hook, registered on every boto3 client pipekit creates in this test."""
    registered: dict[str, Callable[..., Any]] = {}
    original = _client.new_client

    def new_client(service: str, session: Any | None = None, **kwargs: Any) -> Any:
        made = original(service, session, **kwargs)
        for event, fn in registered.items():
            made.meta.events.register(event, fn)
        return made

    monkeypatch.setattr(_client, "new_client", new_client)
    monkeypatch.setattr(_client, "_SHARED", {})  # no client built before the hooks were set
    try:
        from pipekit.deploy import runs
    except ImportError:
        pass
    else:
        monkeypatch.setattr(runs, "_ONE_SHOT", {})
    yield registered


def _error(code: str, status: int = 400) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://twin", status, {}, None), {
        "Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}}


def _push_and_run(repo: GlueRepo, handler, files: dict[str, str | None] | None, **params: object):
    """Commit ``files`` (None: deploy the branch head again, as Release change / Retry does) and run."""
    if files is not None:
        repo.commit(files)
    return run_on_push(handler, repository=repo.name, branch="main", artifact_bucket=ARTIFACTS,
                       user_parameters=repo.params(**params), poll_s=0.2)


def _runs(name: str) -> list[dict[str, Any]]:
    return boto3.client("glue").get_job_runs(JobName=name)["JobRuns"]


def _assert_one_result_per_job(*pipeline_runs: Any) -> None:
    for run in pipeline_runs:
        for invocation in run.invocations:
            results = job_record(invocation.job_id)["results"]
            assert len(results) == 1, (invocation.job_id, results)


def _assert_one_run_per_revision(name: str, revision: str) -> None:
    runs = _runs(name)
    assert len(runs) == 1, [(r["Id"], r["JobRunState"], r.get("Arguments")) for r in runs]
    assert Counter(r["Arguments"].get(REVISION_ARG) for r in runs) == {revision: 1}


# ------------------------------------------------------------------------------- StartJobRun faults


@pytest.mark.parametrize(("code", "started_on_server", "max_runs"), [
    ("ThrottlingException", False, 1),
    ("ThrottlingException", True, 1),
    ("ThrottlingException", True, 3),
    ("InternalServiceException", True, 3),
], ids=["throttled", "throttled-but-started", "throttled-but-started-3-slots", "500-but-started-3-slots"])
def test_failed_start_job_run_never_starts_a_second_run(glue_repo: GlueRepo, handler, hooks, code: str,
                                                        started_on_server: bool, max_runs: int) -> None:
    """A StartJobRun that fails, or that reached Glue but whose answer was an error: one run, adopted."""
    calls: list[str] = []

    def start(params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        calls.append("StartJobRun")
        if len(calls) > 1:
            return None
        if started_on_server:  # the request reached Glue, the answer was lost
            body = json.loads(params["body"])
            boto3.client("glue").start_job_run(JobName=body["JobName"], Arguments=body.get("Arguments", {}))
        return _error(code, 500 if code.startswith("Internal") else 400)

    hooks["before-call.glue.StartJobRun"] = start
    run = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(max_concurrent_runs=max_runs),
                                             "glue/scripts/etl.py": SLOW_SCRIPT})
    assert run.status == "Succeeded", run.message
    _assert_one_result_per_job(run)
    _assert_one_run_per_revision("a", run.commit)
    assert calls == ["StartJobRun"] if started_on_server else ["StartJobRun", "StartJobRun"]


# ------------------------------------------------------------------------ SSM after StartJobRun


def test_ssm_too_many_updates_right_after_start_job_run(glue_repo: GlueRepo, handler, hooks) -> None:
    """The run id cannot be recorded (TooManyUpdates past every retry): the invocation goes on (the token
    carries the run), and a retry of the stage adopts the run it finds by its revision; one run."""
    started: list[str] = []
    refused: list[str] = []
    hooks["after-call.glue.StartJobRun"] = lambda **kw: started.append("x")

    def put(params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if started and json.loads(params["body"])["Name"] == RUNS_PARAMETER and len(refused) < 4:
            refused.append("TooManyUpdates")
            return _error("TooManyUpdates")
        return None

    hooks["before-call.ssm.PutParameter"] = put
    run = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(), "glue/scripts/etl.py": SLOW_SCRIPT})
    assert refused == ["TooManyUpdates"] * 4  # every attempt of the write after the start was refused
    assert run.status == "Succeeded", run.message
    again = _push_and_run(glue_repo, handler, None)  # Retry / Release change of the same commit
    assert again.status == "Succeeded", again.message
    _assert_one_result_per_job(run, again)
    _assert_one_run_per_revision("a", run.commit)


def test_run_id_never_recorded_and_token_lost_the_retry_adopts_the_run(glue_repo: GlueRepo, handler, hooks,
                                                                       monkeypatch) -> None:
    """SSM never takes the run id and CodePipeline never takes the progress report (so the token is lost):
    the retried stage starts from the intent record alone and finds the run by its revision argument."""
    state = {"started": False, "first_job": True}

    def start_done(**kwargs: Any) -> None:
        state["started"] = True

    def put(params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if state["started"] and state["first_job"] and json.loads(params["body"])["Name"] == RUNS_PARAMETER:
            return _error("TooManyUpdates")
        return None

    def success(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        return _error("ThrottlingException") if state["first_job"] else None

    hooks.update({"after-call.glue.StartJobRun": start_done, "before-call.ssm.PutParameter": put,
                  "before-call.codepipeline.PutJobSuccessResult": success})
    first = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(),
                                               "glue/scripts/etl.py": SLOW_SCRIPT})
    assert first.status == "Failed" and "Retry the stage" in first.message, first.message
    record = json.loads(ssm.get_parameter(RUNS_PARAMETER) or "{}")
    assert record["to_run"] == ["a"] and record["runs"] == {}  # the intent, without the run id
    state["first_job"] = False
    retry = _push_and_run(glue_repo, handler, None)
    assert retry.status == "Succeeded", retry.message
    _assert_one_result_per_job(first, retry)
    _assert_one_run_per_revision("a", first.commit)


# ------------------------------------------------------------------------------- result calls


def test_throttled_progress_report_then_retry(glue_repo: GlueRepo, handler, hooks) -> None:
    """Every PutJobSuccessResult of the first job throttled: it ends Failed (one result), and the retried
    stage resumes the recorded run instead of starting one."""
    first_job = {"on": True}
    hooks["before-call.codepipeline.PutJobSuccessResult"] = (
        lambda **kw: _error("ThrottlingException") if first_job["on"] else None)
    first = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(),
                                               "glue/scripts/etl.py": SLOW_SCRIPT})
    assert first.status == "Failed" and "did not accept the progress report" in first.message, first.message
    first_job["on"] = False
    retry = _push_and_run(glue_repo, handler, None)
    assert retry.status == "Succeeded", retry.message
    _assert_one_result_per_job(first, retry)
    _assert_one_run_per_revision("a", first.commit)


def test_throttled_result_calls_are_retried_once_sent(glue_repo: GlueRepo, handler, hooks) -> None:
    """Throttling on every result call for a while: each job still gets one result, one run in all."""
    throttled: Counter[str] = Counter()

    def throttle(what: str) -> Callable[..., Any]:
        def hook(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            throttled[what] += 1
            return _error("ThrottlingException") if throttled[what] % 4 else None  # 3 of every 4 calls
        return hook

    hooks["before-call.codepipeline.PutJobSuccessResult"] = throttle("success")
    hooks["before-call.codepipeline.PutJobFailureResult"] = throttle("failure")
    run = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(), "glue/scripts/etl.py": SLOW_SCRIPT})
    assert run.status == "Succeeded", run.message
    assert len(run.invocations) >= 2 and throttled["success"] == 4 * len(run.invocations)
    _assert_one_result_per_job(run)
    _assert_one_run_per_revision("a", run.commit)


# ------------------------------------------------------------------------------ watchdog mid-run


def test_watchdog_firing_right_after_a_start_starts_nothing_more(glue_repo: GlueRepo, handler, hooks,
                                                                 monkeypatch) -> None:
    """The watchdog reports failure just after the first StartJobRun: the second job's run is not started
    by that invocation, the retried stage starts it and resumes the first; one run each."""
    timers: list[Any] = []
    arm = lambda_support.Deadline.arm

    def keep_timer(self: Any, on_expiry: Callable[[str], None]) -> None:
        arm(self, on_expiry)
        timers.append(self._timer)

    monkeypatch.setattr(lambda_support.Deadline, "arm", keep_timer)
    fired: list[str] = []

    def fire_watchdog(**kwargs: Any) -> None:
        if not fired:
            fired.append("x")
            timers[-1].cancel()
            timers[-1].function()  # what the timer thread would run at the deadline, now

    hooks["after-call.glue.StartJobRun"] = fire_watchdog
    first = _push_and_run(glue_repo, handler, {"glue/jobs/a.json": job_config(), "glue/jobs/b.json": job_config(),
                                               "glue/scripts/etl.py": OK_SCRIPT})
    assert first.status == "Failed" and "Lambda about to time out" in first.message, first.message
    assert len(first.invocations) == 1
    assert len(_runs("a")) == 1 and _runs("b") == []  # nothing started after the watchdog fired
    retry = _push_and_run(glue_repo, handler, None)
    assert retry.status == "Succeeded", retry.message
    _assert_one_result_per_job(first, retry)
    _assert_one_run_per_revision("a", first.commit)
    _assert_one_run_per_revision("b", first.commit)


def test_lambda_retry_of_the_same_event_mid_run(glue_repo: GlueRepo, handler) -> None:
    """Lambda retries the very same event (same job id) while the run goes: no second run, one result."""
    commit = glue_repo.commit({"glue/jobs/a.json": job_config(), "glue/scripts/etl.py": SLOW_SCRIPT})
    event = glue_repo.event("invoke.json", commit=commit)
    assert handler(event, FakeLambdaContext())["status"] == "in_progress"
    handler(event, FakeLambdaContext())
    assert len(job_record(event["CodePipeline.job"]["id"])["results"]) == 1
    _assert_one_run_per_revision("a", commit)
