"""SSM Parameter Store: small pieces of deployment state (last deployed commit, started runs)."""

from __future__ import annotations

from typing import Any

from pipekit.aws._calls import call, code_of
from pipekit.aws._client import client
from pipekit.errors import AwsError


def get_parameter(name: str, *, session: Any | None = None) -> str | None:
    """The value of parameter ``name``, or None if it does not exist."""
    try:
        resp = call(client("ssm", session).get_parameter, f"SSM parameter {name} (GetParameter)", Name=name)
    except AwsError as err:
        if code_of(err) == "ParameterNotFound":
            return None
        raise
    return str(resp["Parameter"]["Value"])


def put_parameter(name: str, value: str, *, description: str = "", session: Any | None = None) -> None:
    """Create or overwrite String parameter ``name``."""
    kwargs: dict[str, Any] = {"Name": name, "Value": value, "Type": "String", "Overwrite": True}
    if description:
        kwargs["Description"] = description
    call(client("ssm", session).put_parameter, f"SSM parameter {name} (PutParameter)", **kwargs)


def delete_parameter(name: str, *, session: Any | None = None) -> None:
    """Delete parameter ``name`` (no error if it is already gone)."""
    try:
        call(client("ssm", session).delete_parameter, f"SSM parameter {name} (DeleteParameter)", Name=name)
    except AwsError as err:
        if code_of(err) != "ParameterNotFound":
            raise
