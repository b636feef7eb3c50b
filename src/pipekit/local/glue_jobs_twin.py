"""Twin operations for Glue jobs that moto lacks or gets wrong (see pipekit.local.server).

- ``CreateJob``: moto silently overwrites an existing job; AWS answers ``AlreadyExistsException``.
- ``UpdateJob``: missing in moto. Like AWS, fields left out of ``JobUpdate`` are reset, not kept.
- ``BatchStopJobRun``: missing in moto. Runs still going become STOPPED; finished runs are reported
  as errors, as AWS does.
- Job bookmarks: ``GetJobBookmark`` / ``ResetJobBookmark`` (missing in moto) answer with AWS's
  ``JobBookmarkEntry`` from bookmark state the twin keeps per job. ``StartJobRun`` (wrapping
  ``glue_twin``'s real run) hands that state to the script as Glue's bookmark service would: with
  ``--job-bookmark-option`` enable or pause it writes the state to ``state.json`` under
  ``<TempDir>pipekit-bookmarks/<job>/<id>/`` and passes that prefix as ``--pipekit_bookmark_dir`` (the run
  stages it like any ``s3://`` argument). The script writes ``commit.json`` there at ``job.commit``; it is
  uploaded only when the script succeeded, and the twin adopts it once it sees the run SUCCEEDED. So a
  failed or stopped run, and any paused run, leave the bookmark where it was.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from pipekit.local import glue_twin
from pipekit.local.server import TwinContext, TwinFault, operation

_MODULE = "glue_jobs_twin"
_OPTIONS = ("job-bookmark-enable", "job-bookmark-disable", "job-bookmark-pause")

#: JobUpdate / CreateJob field -> moto FakeJob attribute.
_FIELDS: dict[str, str] = {
    "Description": "description",
    "LogUri": "log_uri",
    "Role": "role",
    "ExecutionProperty": "execution_property",
    "Command": "command",
    "DefaultArguments": "default_arguments",
    "NonOverridableArguments": "non_overridable_arguments",
    "Connections": "connections",
    "MaxRetries": "max_retries",
    "AllocatedCapacity": "allocated_capacity",
    "Timeout": "timeout",
    "MaxCapacity": "max_capacity",
    "WorkerType": "worker_type",
    "NumberOfWorkers": "number_of_workers",
    "SecurityConfiguration": "security_configuration",
    "NotificationProperty": "notification_property",
    "GlueVersion": "glue_version",
    "CodeGenConfigurationNodes": "code_gen_configuration_nodes",
    "ExecutionClass": "execution_class",
    "SourceControlDetails": "source_control_details",
}
_DEFAULTS: dict[str, Any] = {"execution_property": {}, "default_arguments": {}, "execution_class": "STANDARD",
                             "max_retries": 0}
#: Glue's Timeout when none is given: 2,880 minutes for batch jobs (glueetl, pythonshell); streaming jobs
#: have none (https://docs.aws.amazon.com/glue/latest/webapi/API_Job.html, "Timeout").
BATCH_TIMEOUT_MINUTES = 2880


def _with_aws_defaults(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` (attr -> value) with AWS's defaults for the members a CreateJob/UpdateJob left out."""
    out = {attr: (value if value is not None else _DEFAULTS.get(attr)) for attr, value in fields.items()}
    streaming = (out.get("command") or {}).get("Name") == "gluestreaming"
    if out.get("timeout") is None and not streaming:
        out["timeout"] = BATCH_TIMEOUT_MINUTES
    return out


def _backend(ctx: TwinContext) -> Any:
    from moto.glue.models import glue_backends

    return glue_backends[ctx.account][ctx.region]


def _job(ctx: TwinContext, name: str) -> Any:
    job = _backend(ctx).jobs.get(name)
    if job is None:
        raise TwinFault("EntityNotFoundException", f"Job {name} not found.")
    return job


@operation("AWSGlue.CreateJob")
def create_job(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """CreateJob that refuses an existing name, as AWS does."""
    name = body.get("Name")
    if not name or not body.get("Role") or not body.get("Command"):
        raise TwinFault("InvalidInputException", "Name, Role and Command are required.")
    backend = _backend(ctx)
    if name in backend.jobs:
        raise TwinFault("AlreadyExistsException", f"Job {name} already exists.")
    kwargs = _with_aws_defaults({attr: body.get(field) for field, attr in _FIELDS.items()})
    backend.create_job(name=name, tags=body.get("Tags") or {}, **kwargs)
    return {"Name": name}


@operation("AWSGlue.UpdateJob")
def update_job(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """UpdateJob: replace the job's definition with ``JobUpdate`` (omitted fields reset)."""
    name = body.get("JobName", "")
    update = body.get("JobUpdate") or {}
    job = _job(ctx, name)
    if not update.get("Role") or not update.get("Command"):
        raise TwinFault("InvalidInputException", "JobUpdate needs Role and Command.")
    for attr, value in _with_aws_defaults({attr: update.get(field) for field, attr in _FIELDS.items()}).items():
        setattr(job, attr, value)
    # Newer JobUpdate fields (JobMode, MaintenanceWindow, ...) were validated by botocore against the
    # service model; moto's job has no place for them, so they are accepted and not stored.
    job.last_modified_on = datetime.now(UTC)
    return {"JobName": name}


@operation("AWSGlue.BatchStopJobRun")
def batch_stop_job_run(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """BatchStopJobRun over moto's job runs (and any runner registered in ``ctx.shared['glue_run_stoppers']``)."""
    name = body.get("JobName", "")
    job = _job(ctx, name)
    stopped: list[dict[str, str]] = []
    errors: list[dict[str, Any]] = []
    stoppers = ctx.shared.get("glue_run_stoppers", [])
    for run_id in body.get("JobRunIds") or []:
        run = next((r for r in job.job_runs if r.job_run_id == run_id), None)
        if run is None:
            errors.append({"JobName": name, "JobRunId": run_id,
                           "ErrorDetail": {"ErrorCode": "EntityNotFoundException",
                                           "ErrorMessage": f"Job run {run_id} not found."}})
            continue
        if run.status not in ("STARTING", "RUNNING", "WAITING", "STOPPING"):
            errors.append({"JobName": name, "JobRunId": run_id,
                           "ErrorDetail": {"ErrorCode": "InvalidInputException",
                                           "ErrorMessage": f"Job run {run_id} is already {run.status}."}})
            continue
        # A twin runner executing the run for real (local Spark) gets the chance to kill it.
        for stop in stoppers:
            stop(name, run_id)
        run.status = "STOPPED"
        stopped.append({"JobName": name, "JobRunId": run_id})
    return {"SuccessfulSubmissions": stopped, "Errors": errors}


# ---------------------------------------------------------------- job bookmarks


def _bookmarks(ctx: TwinContext) -> dict[str, Any]:
    """This module's shared state: entries per job (newest last) and runs whose commit is pending."""
    return ctx.shared.setdefault(_MODULE, {"lock": threading.RLock(), "entries": {}, "pending": {}})


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").removeprefix("s3a://").partition("/")
    return bucket, key


def _store_prefix(job: Any, args: dict[str, Any]) -> str:
    """Where the run's bookmark files go: under ``--TempDir`` (Glue's scratch space), else the script's bucket."""
    temp = str(args.get("--TempDir") or "")
    if temp.startswith(("s3://", "s3a://")):
        base = temp.rstrip("/") + "/"
    else:
        bucket, _ = _split(str((job.command or {}).get("ScriptLocation", "")))
        if not bucket:
            raise TwinFault("InvalidInputException", "job bookmarks on the twin need --TempDir or an s3:// script")
        base = f"s3://{bucket}/temp-dir/"
    return f"{base}pipekit-bookmarks/{job.name}/{uuid.uuid4().hex[:12]}/"


def _settle(ctx: TwinContext, name: str | None = None) -> None:
    """Adopt the commits of finished enable runs (of job ``name``, or all); forget failed/stopped/paused ones."""
    book = _bookmarks(ctx)
    runs = glue_twin._state(ctx)["runs"]
    with book["lock"]:
        for run_id, pend in list(book["pending"].items()):
            if name is not None and pend["job"] != name:
                continue
            run = runs.get(run_id)
            state = run["JobRunState"] if run else "FAILED"
            if state in glue_twin._ACTIVE:
                continue
            del book["pending"][run_id]
            s3 = ctx.boto3_client("s3")
            bucket, prefix = _split(pend["store"])
            if state == "SUCCEEDED" and pend["option"] == "job-bookmark-enable":
                try:
                    body = s3.get_object(Bucket=bucket, Key=prefix + "commit.json")["Body"].read().decode()
                except s3.exceptions.NoSuchKey:
                    body = None  # the script never called commit (or read nothing): nothing to advance
                if body is not None:
                    _advance(book, pend["job"], run_id, body, int(run.get("Attempt", 0)) if run else 0)
            for key in ("state.json", "commit.json"):
                s3.delete_object(Bucket=bucket, Key=prefix + key)


def _advance(book: dict[str, Any], job: str, run_id: str, bookmark: str, attempt: int) -> dict[str, Any]:
    history = book["entries"].setdefault(job, [])
    last = history[-1] if history else None
    entry = {"JobName": job, "Version": (last["Version"] + 1) if last else 1,
             "Run": (last["Run"] + 1) if last else 1, "Attempt": attempt,
             "PreviousRunId": (last.get("RunId") or "") if last else "", "RunId": run_id, "JobBookmark": bookmark}
    history.append(entry)
    return entry


def _entry(ctx: TwinContext, name: str) -> dict[str, Any]:
    glue_twin._job(ctx, name)  # EntityNotFoundException for an unknown job
    _settle(ctx, name)
    history = _bookmarks(ctx)["entries"].get(name)
    if not history:
        # What AWS answers for a job that never committed a bookmark.
        raise TwinFault("EntityNotFoundException", f"Continuation for job {name} not found")
    return history[-1]


@operation("AWSGlue.StartJobRun")
def start_job_run(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """glue_twin's real run, with the job's bookmark state handed to the script (enable / pause)."""
    name = body.get("JobName", "")
    job = glue_twin._job(ctx, name)
    args = {**(job.default_arguments or {}), **(body.get("Arguments") or {}),
            **(job.non_overridable_arguments or {})}
    option = args.get("--job-bookmark-option") or "job-bookmark-disable"
    if option not in _OPTIONS:
        raise TwinFault("InvalidInputException", f"--job-bookmark-option must be one of {', '.join(_OPTIONS)}")
    if option == "job-bookmark-disable":
        return glue_twin.start_job_run(body, ctx)
    book = _bookmarks(ctx)
    _settle(ctx, name)
    with book["lock"]:
        history = book["entries"].get(name)
        store = _store_prefix(job, args)
        bucket, prefix = _split(store)
        ctx.boto3_client("s3").put_object(Bucket=bucket, Key=prefix + "state.json",
                                          Body=(history[-1]["JobBookmark"] if history else "").encode())
        try:
            started = glue_twin.start_job_run(
                {**body, "Arguments": {**(body.get("Arguments") or {}), "--pipekit_bookmark_dir": store}}, ctx)
        except TwinFault:  # e.g. ConcurrentRunsExceededException: no run, so no state to hand over
            ctx.boto3_client("s3").delete_object(Bucket=bucket, Key=prefix + "state.json")
            raise
        book["pending"][started["JobRunId"]] = {"job": name, "store": store, "option": option}
    return started


@operation("AWSGlue.GetJobBookmark")
def get_job_bookmark(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """The job's bookmark entry (the one committed by ``RunId`` when given)."""
    name = body.get("JobName", "")
    entry = _entry(ctx, name)
    run_id = body.get("RunId")
    if run_id:
        found = next((e for e in _bookmarks(ctx)["entries"][name] if e["RunId"] == run_id), None)
        if found is None:
            raise TwinFault("EntityNotFoundException", f"Continuation for job {name} and run {run_id} not found")
        entry = found
    return {"JobBookmarkEntry": dict(entry)}


@operation("AWSGlue.ResetJobBookmark")
def reset_job_bookmark(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Forget what the job processed (the next run reads everything), or rewind to the state ``RunId`` committed."""
    name = body.get("JobName", "")
    current = _entry(ctx, name)
    book = _bookmarks(ctx)
    run_id = body.get("RunId")
    with book["lock"]:
        state = ""
        if run_id:
            target = next((e for e in book["entries"][name] if e["RunId"] == run_id), None)
            if target is None:
                raise TwinFault("EntityNotFoundException", f"Continuation for job {name} and run {run_id} not found")
            state = target["JobBookmark"]
        entry = {**current, "Version": current["Version"] + 1, "JobBookmark": state}
        book["entries"][name].append(entry)
    return {"JobBookmarkEntry": dict(entry)}
