"""When one run of a revision fails, its siblings are stopped (default) or awaited; a later commit never
meets leftovers; a job name outside the pipeline's prefix is refused naming the file."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from cicd_helpers import ARTIFACTS, GlueRepo, job_config

from pipekit.aws import _calls, glue, ssm
from pipekit.local.codepipeline_twin import run_on_push

FAIL_SCRIPT = "import time\ntime.sleep(0.5)\nraise ValueError('bad input')\n"
LONG_SCRIPT = "import time\ntime.sleep(60)\nprint('done')\n"
SHORT_SCRIPT = "import time\ntime.sleep(2)\nprint('done')\n"
OK_SCRIPT = "print('ok')\n"
LAST_DEPLOYED = "/pipekit/glue-deploy/glue-etl/last-deployed"
_ACTIVE = {"STARTING", "RUNNING", "STOPPING", "WAITING"}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_calls, "BASE_DELAY_S", 0.0)


def _push_and_run(repo: GlueRepo, handler, files: dict[str, str | None], **params: object):
    repo.commit(files)
    return run_on_push(handler, repository=repo.name, branch="main", artifact_bucket=ARTIFACTS,
                       user_parameters=repo.params(**params), poll_s=0.2)


def _runs(name: str) -> list[dict[str, Any]]:
    return boto3.client("glue").get_job_runs(JobName=name)["JobRuns"]


def _active() -> list[tuple[str, str]]:
    return [(n, r["JobRunState"]) for n in ("bad", "slow") for r in _runs(n) if r["JobRunState"] in _ACTIVE]


def test_a_failed_run_stops_its_siblings_and_the_next_commit_starts_cleanly(glue_repo: GlueRepo, handler) -> None:
    run = _push_and_run(glue_repo, handler, {"glue/jobs/bad.json": job_config(script="bad.py"),
                                             "glue/jobs/slow.json": job_config(script="slow.py"),
                                             "glue/scripts/bad.py": FAIL_SCRIPT,
                                             "glue/scripts/slow.py": LONG_SCRIPT})
    assert run.status == "Failed", run.message
    assert "Glue job run failed" in run.message and "ValueError: bad input" in run.message
    assert "stopped because of that failure: slow run" in run.message and "STOPPED" in run.message
    # the failure is reported only once no run of the revision is going
    assert _active() == [] and [r["JobRunState"] for r in _runs("slow")] == ["STOPPED"]
    assert any("stopping slow" in (i.result or {}).get("executionDetails", {}).get("summary", "")
               for i in run.invocations), [i.result for i in run.invocations]

    fixed = _push_and_run(glue_repo, handler, {"glue/scripts/bad.py": OK_SCRIPT, "glue/scripts/slow.py": OK_SCRIPT})
    assert fixed.status == "Succeeded", fixed.message  # no ConcurrentRunsExceededException
    assert [r["JobRunState"] for r in _runs("slow")] == ["SUCCEEDED", "STOPPED"]
    assert ssm.get_parameter(LAST_DEPLOYED) == fixed.commit


def test_on_run_failure_wait_lets_the_siblings_finish(glue_repo: GlueRepo, handler) -> None:
    run = _push_and_run(glue_repo, handler, {"glue/jobs/bad.json": job_config(script="bad.py"),
                                             "glue/jobs/slow.json": job_config(script="slow.py"),
                                             "glue/scripts/bad.py": FAIL_SCRIPT,
                                             "glue/scripts/slow.py": SHORT_SCRIPT}, on_run_failure="wait")
    assert run.status == "Failed", run.message
    assert "ValueError: bad input" in run.message and "the other runs ended: slow SUCCEEDED" in run.message
    assert _active() == [] and [r["JobRunState"] for r in _runs("slow")] == ["SUCCEEDED"]


def test_a_leftover_run_of_an_older_revision_is_stopped_before_the_new_run(glue_repo: GlueRepo, handler) -> None:
    first = _push_and_run(glue_repo, handler, {"glue/jobs/slow.json": job_config(script="slow.py",
                                                                                  run_after_deploy=False),
                                               "glue/scripts/slow.py": LONG_SCRIPT})
    assert first.status == "Succeeded", first.message
    # A run of an earlier deployment still going (e.g. its job timed out in CodePipeline)
    leftover = glue.start_job_run("slow", {"--pipekit_revision": first.commit})
    run = _push_and_run(glue_repo, handler, {"glue/jobs/slow.json": job_config(script="slow.py"),
                                             "glue/scripts/slow.py": OK_SCRIPT})
    assert run.status == "Succeeded", run.message
    states = {r["Id"]: r["JobRunState"] for r in _runs("slow")}
    assert states.pop(leftover) == "STOPPED" and list(states.values()) == ["SUCCEEDED"]


def test_a_job_name_outside_the_prefix_fails_naming_the_file(glue_repo: GlueRepo, handler) -> None:
    run = _push_and_run(glue_repo, handler, {"glue/jobs/etl_orders.json": job_config(),
                                             "glue/jobs/customers.json": job_config(),
                                             "glue/scripts/etl.py": OK_SCRIPT}, job_prefix="etl_")
    assert run.status == "Failed" and "Bad Glue job config" in run.message, run.message
    assert "glue/jobs/customers.json: file: job name 'customers' (from the file name) does not start with " \
           "'etl_'" in run.message and "glue/jobs/etl_customers.json" in run.message
    assert "etl_orders.json" not in run.message
    assert glue.get_job("etl_orders") is None and glue.get_job("customers") is None  # nothing changed


def test_a_run_not_started_by_pipekit_is_awaited_not_stopped(glue_repo: GlueRepo, handler) -> None:
    first = _push_and_run(glue_repo, handler, {"glue/jobs/slow.json": job_config(script="slow.py",
                                                                                  run_after_deploy=False),
                                               "glue/scripts/slow.py": SHORT_SCRIPT})
    assert first.status == "Succeeded", first.message
    by_hand = glue.start_job_run("slow")  # someone ran the job from the console: no revision argument
    run = _push_and_run(glue_repo, handler, {"glue/jobs/slow.json": job_config(script="slow.py")})
    assert run.status == "Succeeded", run.message
    assert any("waiting for a run of another revision to end" in (i.result or {}).get(
        "executionDetails", {}).get("summary", "") for i in run.invocations)
    states = {r["Id"]: r["JobRunState"] for r in _runs("slow")}
    assert states.pop(by_hand) == "SUCCEEDED" and list(states.values()) == ["SUCCEEDED"]


def test_runs_not_started_yet_never_start_after_a_failure(glue_repo: GlueRepo) -> None:
    """Out of time between two starts, and the first run fails meanwhile: the second never starts."""
    import time

    from pipekit.deploy import pipeline
    from pipekit.deploy.event import DeploySettings
    from pipekit.deploy.sources import CodeCommitSource

    commit = glue_repo.commit({"glue/jobs/ta.json": job_config(script="bad.py"), "glue/jobs/tb.json": job_config(),
                               "glue/scripts/bad.py": FAIL_SCRIPT, "glue/scripts/etl.py": OK_SCRIPT})
    settings = DeploySettings.from_user_parameters(glue_repo.params())
    source = CodeCommitSource(glue_repo.name, commit)

    def short(step: str) -> None:
        if step == "start run of tb":
            raise pipeline.DeployTimeout(f"no time for {step}")

    first = pipeline.run(settings, source, check_time=short)
    assert first.status == pipeline.IN_PROGRESS and first.continuation_token, first.summary
    deadline = time.monotonic() + 30
    while _runs("ta")[0]["JobRunState"] in _ACTIVE and time.monotonic() < deadline:
        time.sleep(0.2)
    with pytest.raises(pipeline.GlueRunFailed, match="not started: tb") as failed:
        pipeline.run(settings, source, continuation_token=first.continuation_token)
    assert "ValueError: bad input" in str(failed.value)
    assert _runs("tb") == []
