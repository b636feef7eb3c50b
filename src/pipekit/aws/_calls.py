"""Calling AWS: wrap botocore errors into pipekit's typed errors, retry throttling with backoff."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pipekit.errors import AwsError, ThrottledError

T = TypeVar("T")

#: Error codes AWS uses for "slow down"; they are retried, then raised as ThrottledError.
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
    }
)

#: Attempts for a throttled call (on top of botocore's own standard-mode retries) and the base delay.
ATTEMPTS = 4
BASE_DELAY_S = 0.5


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    """The AWS error message of a botocore ClientError, or str(exc)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", "")) or str(exc)
    return str(exc)


def call(
    fn: Callable[..., T],
    what: str,
    *,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> T:
    """Call ``fn(**kwargs)``; retry throttling with jittered backoff; wrap other AWS errors in AwsError.

    ``what`` names the resource for the message, e.g. "Glue job 'customers' (UpdateJob)".
    Errors that are not botocore errors (bugs, bad arguments) propagate unchanged.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    tries = attempts or ATTEMPTS
    for attempt in range(1, tries + 1):
        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in THROTTLE_CODES:
                if attempt < tries:
                    # Full jitter keeps many Lambdas from retrying in lockstep.
                    sleep(random.uniform(0, BASE_DELAY_S * 2 ** (attempt - 1)))
                    continue
                raise ThrottledError(
                    f"{what}: AWS kept throttling the call ({code}) after {tries} attempts.",
                    hint="Retry later, or raise the service quota for this API.",
                ) from exc
            err = AwsError(f"{what}: {code}: {error_message(exc)}")
            err.code = code
            raise err from exc
        except BotoCoreError as exc:
            raise AwsError(f"{what}: {type(exc).__name__}: {exc}",
                           hint="Check AWS credentials, region and AWS_ENDPOINT_URL.") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def code_of(err: BaseException) -> str:
    """The AWS error code carried by an AwsError raised by :func:`call` ('' if none)."""
    return str(getattr(err, "code", "") or error_code(getattr(err, "__cause__", None) or err))


