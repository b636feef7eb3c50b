"""CodePipeline Invoke action -> pipekit Glue deployment -> job result. Thin: parse, call, report.

Every path reports to CodePipeline: success (with a continuation token while Glue runs go on),
failure with the reason, unexpected exceptions, and a watchdog when the Lambda is about to time out.
Needs only boto3 (in the Lambda runtime) and pipekit's deploy code (``pipekit lambda package``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pipekit.deploy import pipeline
from pipekit.deploy.event import DeploySettings, parse_event
from pipekit.deploy.lambda_support import Deadline, Reporter, failure_message, make_source
from pipekit.errors import PipekitError

logging.getLogger("pipekit").setLevel(os.environ.get("LOG_LEVEL", "INFO"))
log = logging.getLogger("pipekit.deploy.handler")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    job = parse_event(event)  # without a job id nothing can be reported: let Lambda record the error
    reporter = Reporter(job.job_id)
    deadline = Deadline(getattr(context, "get_remaining_time_in_millis", lambda: 900_000))
    deadline.arm(reporter.failure)
    try:
        settings = DeploySettings.from_user_parameters(job.user_parameters, job.job_id)
        source = make_source(job, settings)
        outcome = pipeline.run(settings, source, continuation_token=job.continuation_token,
                               check_time=deadline.check)
        reporter.outcome(outcome)
        return {"jobId": job.job_id, "status": outcome.status, "summary": outcome.summary}
    except Exception as exc:  # every failure, expected or not, is reported: never a silent hang
        if not isinstance(exc, PipekitError):
            log.exception("unexpected error in CodePipeline job %s", job.job_id)
        message = failure_message(exc)
        reporter.failure(message)
        return {"jobId": job.job_id, "status": "failed", "summary": message}
    finally:
        deadline.disarm()
