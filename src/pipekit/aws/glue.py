"""Glue jobs: create/read/update, tags through the tagging API, job runs, and ONE run-state classifier.

Every function takes an optional ``session``; endpoints come from boto3's own configuration.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipekit.aws._calls import call, code_of
from pipekit.aws._client import client
from pipekit.errors import AwsError, JobRunError


class RunOutcome(enum.Enum):
    """What a Glue job-run state means to a caller that waits for it."""

    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def done(self) -> bool:
        """True once the run will not change state any more."""
        return self is not RunOutcome.IN_PROGRESS


#: Every JobRunState the Glue API documents, and what it means.
_STATES: dict[str, RunOutcome] = {
    "STARTING": RunOutcome.IN_PROGRESS,
    "RUNNING": RunOutcome.IN_PROGRESS,
    "STOPPING": RunOutcome.IN_PROGRESS,
    # WAITING: a Flex/auto-scaling run queued for capacity; it will still run.
    "WAITING": RunOutcome.IN_PROGRESS,
    "SUCCEEDED": RunOutcome.SUCCEEDED,
    "FAILED": RunOutcome.FAILED,
    "ERROR": RunOutcome.FAILED,
    "TIMEOUT": RunOutcome.FAILED,
    # EXPIRED: a run that waited longer than allowed and never started.
    "EXPIRED": RunOutcome.FAILED,
    "STOPPED": RunOutcome.STOPPED,
}

GLUE_RUN_STATES: tuple[str, ...] = tuple(_STATES)


def classify_run_state(state: str) -> RunOutcome:
    """Map a Glue ``JobRunState`` to a RunOutcome; an unknown state is an error, never a silent wait."""
    try:
        return _STATES[state]
    except KeyError:
        raise AwsError(
            f"Glue returned an unknown job-run state {state!r}.",
            hint=f"Known states: {', '.join(GLUE_RUN_STATES)}. Upgrade pipekit if AWS added a new one.",
        ) from None


@dataclass(frozen=True)
class JobRun:
    """One Glue job run as pipekit reports it."""

    job_name: str
    run_id: str
    state: str
    outcome: RunOutcome
    error_message: str | None = None
    execution_time_s: int | None = None
    started_on: datetime | None = None
    completed_on: datetime | None = None

    @classmethod
    def from_api(cls, run: Mapping[str, Any]) -> JobRun:
        """Build from a GetJobRun ``JobRun`` structure."""
        state = str(run.get("JobRunState", ""))
        return cls(
            job_name=str(run.get("JobName", "")),
            run_id=str(run.get("Id", "")),
            state=state,
            outcome=classify_run_state(state),
            error_message=run.get("ErrorMessage") or None,
            execution_time_s=run.get("ExecutionTime"),
            started_on=run.get("StartedOn"),
            completed_on=run.get("CompletedOn"),
        )

    def describe(self) -> str:
        """One line for logs and pipeline summaries."""
        line = f"Glue job {self.job_name!r} run {self.run_id}: {self.state}"
        if self.error_message:
            line += f": {self.error_message}"
        return line


def _glue(session: Any | None) -> Any:
    return client("glue", session)


# --------------------------------------------------------------------------------------------- jobs


def get_job(name: str, *, session: Any | None = None) -> dict[str, Any] | None:
    """The job's GetJob ``Job`` structure, or None when it does not exist."""
    try:
        return call(_glue(session).get_job, f"Glue job {name!r} (GetJob)", JobName=name)["Job"]
    except AwsError as err:
        if code_of(err) == "EntityNotFoundException":
            return None
        raise


def list_jobs(*, session: Any | None = None) -> list[dict[str, Any]]:
    """Every Glue job in the account/region (GetJobs, all pages)."""
    glue = _glue(session)
    jobs: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"NextToken": token} if token else {}
        page = call(glue.get_jobs, "Glue jobs (GetJobs)", **kwargs)
        jobs.extend(page.get("Jobs", []))
        token = page.get("NextToken")
        if not token:
            return jobs


def create_job(name: str, definition: Mapping[str, Any], tags: Mapping[str, str] | None = None, *,
               session: Any | None = None) -> None:
    """Create job ``name``; fails with AwsError if it already exists (checked first: moto overwrites)."""
    if get_job(name, session=session) is not None:
        raise AwsError(f"Glue job {name!r} already exists; refusing to overwrite it with CreateJob.",
                       hint="Use update_job, or delete the job first.")
    kwargs = dict(definition, Name=name)
    if tags:
        kwargs["Tags"] = dict(tags)
    call(_glue(session).create_job, f"Glue job {name!r} (CreateJob)", **kwargs)


def update_job(name: str, definition: Mapping[str, Any], *, session: Any | None = None) -> None:
    """Replace job ``name``'s definition (UpdateJob resets fields left out, as AWS documents)."""
    update = {k: v for k, v in definition.items() if k not in ("Name", "Tags")}
    call(_glue(session).update_job, f"Glue job {name!r} (UpdateJob)", JobName=name, JobUpdate=update)


def delete_job(name: str, *, session: Any | None = None) -> None:
    """Delete job ``name`` (no error if it is already gone)."""
    call(_glue(session).delete_job, f"Glue job {name!r} (DeleteJob)", JobName=name)


def job_arn(name: str, *, session: Any | None = None) -> str:
    """The ARN of job ``name`` in the session's account and region (tagging APIs need it)."""
    sts = client("sts", session)
    ident = call(sts.get_caller_identity, "STS (GetCallerIdentity)")
    arn_parts = str(ident["Arn"]).split(":")
    partition = arn_parts[1] if len(arn_parts) > 1 else "aws"
    region = _glue(session).meta.region_name
    return f"arn:{partition}:glue:{region}:{ident['Account']}:job/{name}"


def get_tags(arn: str, *, session: Any | None = None) -> dict[str, str]:
    """Tags on a Glue resource."""
    return dict(call(_glue(session).get_tags, f"Glue resource {arn} (GetTags)", ResourceArn=arn).get("Tags", {}))


def tag_resource(arn: str, tags: Mapping[str, str], *, session: Any | None = None) -> None:
    """Add or overwrite tags on a Glue resource."""
    if tags:
        call(_glue(session).tag_resource, f"Glue resource {arn} (TagResource)",
             ResourceArn=arn, TagsToAdd=dict(tags))


def untag_resource(arn: str, keys: list[str], *, session: Any | None = None) -> None:
    """Remove tag ``keys`` from a Glue resource."""
    if keys:
        call(_glue(session).untag_resource, f"Glue resource {arn} (UntagResource)",
             ResourceArn=arn, TagsToRemove=list(keys))


# --------------------------------------------------------------------------------------------- runs


def start_job_run(name: str, arguments: Mapping[str, str] | None = None, *,
                  session: Any | None = None) -> str:
    """Start a run of job ``name`` with run ``arguments`` (merged over DefaultArguments); return its id."""
    kwargs: dict[str, Any] = {"JobName": name}
    if arguments:
        kwargs["Arguments"] = {str(k): str(v) for k, v in arguments.items()}
    return str(call(_glue(session).start_job_run, f"Glue job {name!r} (StartJobRun)", **kwargs)["JobRunId"])


def get_job_run(name: str, run_id: str, *, session: Any | None = None) -> JobRun:
    """The current state of run ``run_id`` of job ``name``."""
    resp = call(_glue(session).get_job_run, f"Glue job {name!r} run {run_id} (GetJobRun)",
                JobName=name, RunId=run_id, PredecessorsIncluded=False)
    return JobRun.from_api(resp["JobRun"])


def stop_job_runs(name: str, run_ids: list[str], *, session: Any | None = None) -> None:
    """Ask Glue to stop runs ``run_ids`` of job ``name`` (BatchStopJobRun); errors per run are raised."""
    resp = call(_glue(session).batch_stop_job_run, f"Glue job {name!r} (BatchStopJobRun)",
                JobName=name, JobRunIds=list(run_ids))
    errors = resp.get("Errors") or []
    if errors:
        detail = "; ".join(f"{e.get('JobRunId')}: {e.get('ErrorDetail', {}).get('ErrorMessage')}" for e in errors)
        raise AwsError(f"Glue job {name!r}: could not stop runs: {detail}")


def wait_for_job_run(
    name: str,
    run_id: str,
    *,
    poll_s: float = 10.0,
    timeout_s: float | None = None,
    raise_on_failure: bool = True,
    on_poll: Callable[[JobRun], None] | None = None,
    session: Any | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobRun:
    """Poll run ``run_id`` until it ends; raise JobRunError with Glue's ErrorMessage if it did not succeed.

    ``timeout_s`` bounds the wait (the run keeps going in Glue; pipekit does not stop it for you).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        run = get_job_run(name, run_id, session=session)
        if on_poll is not None:
            on_poll(run)
        if run.outcome.done:
            if raise_on_failure and run.outcome is not RunOutcome.SUCCEEDED:
                raise JobRunError(run.describe(),
                                  hint="See the run's logs in CloudWatch (/aws-glue/jobs/error) for details.")
            return run
        if deadline is not None and time.monotonic() >= deadline:
            raise JobRunError(
                f"Glue job {name!r} run {run_id} still {run.state} after {timeout_s:g}s.",
                hint="It is still running in Glue; wait longer or stop it with BatchStopJobRun.",
            )
        sleep(poll_s)
