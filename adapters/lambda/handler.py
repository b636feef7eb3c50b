"""CodePipeline Invoke action -> pipekit Glue deployment -> job result. Thin: parse, call, report.

``filter_handler`` is the other entry point in the same zip: the EventBridge target for CodeCommit pushes,
which starts the pipeline only when a watched directory changed (:mod:`pipekit.deploy.trigger`).

Every path reports to CodePipeline, once: success (with a continuation token while Glue runs go on),
failure with the reason, unexpected exceptions, and a watchdog when the Lambda is about to time out.
Only when CodePipeline accepts no result at all (throttled past every retry) does the Lambda itself fail.
Needs only boto3 (in the Lambda runtime) and pipekit's deploy code (``pipekit lambda package``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pipekit.deploy import pipeline, trigger
from pipekit.deploy.event import DeploySettings, parse_event
from pipekit.deploy.lambda_support import Deadline, Reporter, ResultNotSent, failure_message, make_source
from pipekit.errors import PipekitError

logging.getLogger("pipekit").setLevel(os.environ.get("LOG_LEVEL", "INFO"))
log = logging.getLogger("pipekit.deploy.handler")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    job = parse_event(event)  # without a job id nothing can be reported: let Lambda record the error
    deadline = Deadline(getattr(context, "get_remaining_time_in_millis", lambda: 900_000))
    reporter = Reporter(job.job_id, remaining_ms=deadline.remaining_ms)
    deadline.arm(reporter.failure)
    try:
        settings = DeploySettings.from_user_parameters(job.user_parameters, job.job_id)
        source = make_source(job, settings)
        outcome = pipeline.run(settings, source, continuation_token=job.continuation_token,
                               check_time=deadline.check)
        reporter.outcome(outcome)
        return {"jobId": job.job_id, "status": reporter.reported or outcome.status, "summary": outcome.summary}
    except ResultNotSent:
        raise  # CodePipeline has no result at all: fail the Lambda, so that it retries or the action times out
    except Exception as exc:  # every failure, expected or not, is reported: never a silent hang
        if not isinstance(exc, PipekitError):
            log.exception("unexpected error in CodePipeline job %s", job.job_id)
        message = failure_message(exc)
        reporter.failure(message)
        return {"jobId": job.job_id, "status": "failed", "summary": message}
    finally:
        deadline.disarm()


def filter_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge entry point: start the deploy pipeline for a push that touched a watched directory."""
    # A bad environment or an AWS error fails the invocation: Lambda retries the event, then drops it
    # (the next watched push deploys everything since the last successful deployment).
    return trigger.handle(event, trigger.FilterSettings.from_env(os.environ))
