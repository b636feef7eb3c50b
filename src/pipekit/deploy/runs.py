"""Glue runs of a deployment: at most one per job and revision, whatever fails, and sibling stops.

Each run a deployment starts carries the revision as a job argument (:data:`REVISION_ARG`). Before
``StartJobRun``, and again after any failed attempt, ``GetJobRuns`` is searched for a run of that
revision: a run started by an earlier invocation whose id was never recorded (SSM refused the write,
the Lambda died, a throttled or timed-out call that did reach Glue) is adopted instead of started again.
``StartJobRun`` itself goes through a client with botocore's retries off, so that no retry is ever sent
without that search first.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipekit.aws import _client, glue
from pipekit.aws._calls import call, code_of
from pipekit.aws._client import client
from pipekit.errors import AwsError, ThrottledError

log = logging.getLogger("pipekit.deploy")

#: The job argument that tags a run with the revision that started it (Glue passes it to the script,
#: whose ``getResolvedOptions`` ignores arguments it was not asked for).
REVISION_ARG = "--pipekit_revision"
#: StartJobRun attempts (each after a search for the run) and the backoff base between them.
START_ATTEMPTS = 4
START_BASE_DELAY_S = 0.5
#: GetJobRuns pages searched for a run of the revision (newest first; runs of a revision are recent).
SEARCH_PAGES = 5
#: Errors after which the StartJobRun may or may not have started the run: search before retrying.
_UNCERTAIN = frozenset({"InternalServiceException", "OperationTimeoutException", "ServiceUnavailable",
                        "InternalFailure", "500", "502", "503", "504"})
_ACTIVE = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})

_LOCK = threading.Lock()
_ONE_SHOT: dict[tuple[int | str | None, ...], Any] = {}


def _glue(session: Any | None) -> Any:
    return client("glue", session)


def _glue_once(session: Any | None) -> Any:
    """A Glue client that sends each call once: a retry is only ever sent after a search for the run."""
    import os

    from botocore.config import Config

    # Keyed like pipekit.aws._client's shared clients: by session, or by the AWS_* environment.
    key = (id(session), *(os.environ.get(k) for k in _client._ENV_KEYS))
    with _LOCK:
        if key not in _ONE_SHOT:
            _ONE_SHOT[key] = _client.new_client("glue", session, config=Config(
                retries={"mode": "standard", "max_attempts": 1}, user_agent_extra="pipekit"))
        return _ONE_SHOT[key]


@dataclass(frozen=True)
class Started:
    """The run of a job for a revision: its id, and whether this call found it rather than started it."""

    run_id: str
    adopted: bool = False


class LeftoverRuns(AwsError):
    """The job still has runs of another revision going, so no run of this revision can start yet."""

    retryable = True

    def __init__(self, job_name: str, runs: list[dict[str, Any]]) -> None:
        self.job_name = job_name
        self.runs = runs
        shown = ", ".join(f"{r.get('Id', '')[:16]} ({r.get('JobRunState')}, revision "
                          f"{str((r.get('Arguments') or {}).get(REVISION_ARG) or 'not pipekit')[:12]})"
                          for r in runs)
        super().__init__(f"Glue job {job_name!r} still has run(s) of another revision going: {shown}.")


def find_run(name: str, revision: str, *, session: Any | None = None) -> dict[str, Any] | None:
    """The newest run of job ``name`` tagged with ``revision`` (GetJobRuns, a few pages), or None."""
    runs = _recent_runs(name, session=session)
    return next((r for r in runs if (r.get("Arguments") or {}).get(REVISION_ARG) == revision), None)


def _recent_runs(name: str, *, session: Any | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(SEARCH_PAGES):
        kwargs: dict[str, Any] = {"JobName": name, "MaxResults": 200}
        if token:
            kwargs["NextToken"] = token
        page = call(_glue(session).get_job_runs, f"Glue job {name!r} (GetJobRuns)", **kwargs)
        found.extend(page.get("JobRuns") or [])
        token = page.get("NextToken")
        if not token:
            break
    return found


def start_once(name: str, revision: str, arguments: Mapping[str, str] | None = None, *,
               session: Any | None = None, stop_leftovers: bool = True,
               sleep: Callable[[float], None] = time.sleep) -> Started:
    """Start one run of job ``name`` for ``revision``, or adopt the run of that revision that exists.

    Raises :class:`LeftoverRuns` when Glue refuses the run because runs of another revision are still
    going (``ConcurrentRunsExceededException``); with ``stop_leftovers`` those that a pipekit deployment
    started are asked to stop first (BatchStopJobRun), so that a later attempt can start.
    """
    existing = find_run(name, revision, session=session)
    if existing is not None:
        log.info("Glue job %s already has run %s of revision %s; not starting another", name,
                 existing.get("Id"), revision[:12])
        return Started(str(existing["Id"]), adopted=True)
    args = {**{str(k): str(v) for k, v in (arguments or {}).items()}, REVISION_ARG: revision}
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            resp = call(_glue_once(session).start_job_run, f"Glue job {name!r} (StartJobRun)", attempts=1,
                        JobName=name, Arguments=args)
            return Started(str(resp["JobRunId"]))
        except AwsError as err:
            code = code_of(err)
            # Whatever went wrong, the run may exist (the request reached Glue, the answer did not).
            existing = find_run(name, revision, session=session)
            if existing is not None:
                log.warning("StartJobRun of %s failed (%s) but run %s of revision %s exists; adopted", name,
                            code or err, existing.get("Id"), revision[:12])
                return Started(str(existing["Id"]), adopted=True)
            if code == "ConcurrentRunsExceededException":
                raise _leftovers(name, revision, stop=stop_leftovers, session=session) from err
            if not (err.retryable or code in _UNCERTAIN or not code):
                raise
            if attempt == START_ATTEMPTS:
                raise ThrottledError(
                    f"Glue job {name!r} (StartJobRun): failed {attempt} times ({code or err}); after each, "
                    f"GetJobRuns showed no run of revision {revision[:12]}, so none was started.",
                    hint="Retry the stage later: it starts the run, or adopts it if one appeared.") from err
            delay = random.uniform(0, START_BASE_DELAY_S * 2 ** (attempt - 1))
            log.warning("StartJobRun of %s failed (%s); no run of revision %s exists; retrying in %.1fs",
                        name, code or err, revision[:12], delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _leftovers(name: str, revision: str, *, stop: bool, session: Any | None) -> LeftoverRuns:
    """The runs in the way of a new one; those of other pipekit revisions are stopped when ``stop``."""
    active = [r for r in _recent_runs(name, session=session) if r.get("JobRunState") in _ACTIVE]
    ours = [r for r in active if (r.get("Arguments") or {}).get(REVISION_ARG) not in (None, revision)
            and r.get("JobRunState") != "STOPPING"]
    if stop and ours:
        log.warning("stopping leftover run(s) %s of Glue job %s (revisions superseded by %s)",
                    [r.get("Id") for r in ours], name, revision[:12])
        stop_runs(name, [str(r["Id"]) for r in ours], session=session)
    return LeftoverRuns(name, active)


def stop_runs(name: str, run_ids: list[str], *, session: Any | None = None) -> None:
    """BatchStopJobRun; a run that ended meanwhile is not an error (it no longer needs stopping)."""
    if not run_ids:
        return
    try:
        glue.stop_job_runs(name, run_ids, session=session)
    except AwsError as err:
        log.warning("Glue job %s: not every run could be stopped (it may have ended): %s", name, err)
