"""Twin operations for Glue jobs that moto lacks or gets wrong (see pipekit.local.server).

- ``CreateJob``: moto silently overwrites an existing job; AWS answers ``AlreadyExistsException``.
- ``UpdateJob``: missing in moto. Like AWS, fields left out of ``JobUpdate`` are reset, not kept.
- ``BatchStopJobRun``: missing in moto. Runs still going become STOPPED; finished runs are reported
  as errors, as AWS does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipekit.local.server import TwinContext, TwinFault, operation

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
_DEFAULTS: dict[str, Any] = {"execution_property": {}, "default_arguments": {}, "execution_class": "STANDARD"}


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
    kwargs = {attr: body.get(field) for field, attr in _FIELDS.items()}
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
    for field, attr in _FIELDS.items():
        setattr(job, attr, update.get(field, _DEFAULTS.get(attr)))
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
