"""SSM Parameter Store: small pieces of deployment state (last deployed commit, started runs)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from pipekit.aws import _calls
from pipekit.aws._calls import call, code_of
from pipekit.aws._client import client
from pipekit.errors import AwsError, ThrottledError

#: PutParameter's "slow down" when one parameter gets concurrent updates. It is not one of the throttling
#: codes botocore or ``call`` retry, but it is as transient, so put_parameter retries it the same way.
TOO_MANY_UPDATES = "TooManyUpdates"


def get_parameter(name: str, *, session: Any | None = None) -> str | None:
    """The value of parameter ``name``, or None if it does not exist."""
    try:
        resp = call(client("ssm", session).get_parameter, f"SSM parameter {name} (GetParameter)", Name=name)
    except AwsError as err:
        if code_of(err) == "ParameterNotFound":
            return None
        raise
    return str(resp["Parameter"]["Value"])


def put_parameter(name: str, value: str, *, description: str = "", session: Any | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Create or overwrite String parameter ``name``; throttling and TooManyUpdates are retried with backoff."""
    kwargs: dict[str, Any] = {"Name": name, "Value": value, "Type": "String", "Overwrite": True}
    if description:
        kwargs["Description"] = description
    what = f"SSM parameter {name} (PutParameter)"
    tries = _calls.ATTEMPTS
    for attempt in range(1, tries + 1):
        try:
            call(client("ssm", session).put_parameter, what, sleep=sleep, **kwargs)
            return
        except AwsError as err:
            if code_of(err) != TOO_MANY_UPDATES:
                raise
            if attempt == tries:
                raise ThrottledError(f"{what}: SSM kept answering {TOO_MANY_UPDATES} after {tries} attempts.",
                                     hint="Something else keeps updating this parameter; retry later.") from err
            sleep(random.uniform(0, _calls.BASE_DELAY_S * 2 ** (attempt - 1)))


def delete_parameter(name: str, *, session: Any | None = None) -> None:
    """Delete parameter ``name`` (no error if it is already gone)."""
    try:
        call(client("ssm", session).delete_parameter, f"SSM parameter {name} (DeleteParameter)", Name=name)
    except AwsError as err:
        if code_of(err) != "ParameterNotFound":
            raise
