"""CodePipeline job results: what a Lambda invoke action reports back."""

from __future__ import annotations

from typing import Any

from pipekit.aws._calls import call
from pipekit.aws._client import client

#: API limits: ExecutionDetails.summary <= 2048 chars, FailureDetails.message <= 5000 chars.
SUMMARY_MAX = 2048
MESSAGE_MAX = 5000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ...[truncated]"


def put_job_success(job_id: str, summary: str, *, continuation_token: str | None = None,
                    external_execution_id: str | None = None, percent_complete: int | None = None,
                    attempts: int | None = None, session: Any | None = None) -> None:
    """Report success; with ``continuation_token`` the pipeline invokes the action again with that token.

    ``attempts`` bounds the retries of throttling (see ``pipekit.aws._calls.call``); 1 leaves them to the caller.
    """
    details: dict[str, Any] = {"summary": _clip(summary, SUMMARY_MAX)}
    if external_execution_id:
        details["externalExecutionId"] = external_execution_id
    if percent_complete is not None:
        details["percentComplete"] = max(0, min(100, percent_complete))
    kwargs: dict[str, Any] = {"jobId": job_id, "executionDetails": details}
    if continuation_token:
        kwargs["continuationToken"] = continuation_token
    call(client("codepipeline", session).put_job_success_result,
         f"CodePipeline job {job_id} (PutJobSuccessResult)", attempts=attempts, **kwargs)


def put_job_failure(job_id: str, message: str, *, external_execution_id: str | None = None,
                    failure_type: str = "JobFailed", attempts: int | None = None,
                    session: Any | None = None) -> None:
    """Report failure with ``message`` (shown in the pipeline console); ``attempts`` as for put_job_success."""
    details: dict[str, Any] = {"type": failure_type, "message": _clip(message, MESSAGE_MAX)}
    if external_execution_id:
        details["externalExecutionId"] = external_execution_id
    call(client("codepipeline", session).put_job_failure_result,
         f"CodePipeline job {job_id} (PutJobFailureResult)", attempts=attempts, jobId=job_id,
         failureDetails=details)


def get_job_details(job_id: str, *, session: Any | None = None) -> dict[str, Any]:
    """The GetJobDetails ``jobDetails`` structure."""
    return call(client("codepipeline", session).get_job_details,
                f"CodePipeline job {job_id} (GetJobDetails)", jobId=job_id)["jobDetails"]
