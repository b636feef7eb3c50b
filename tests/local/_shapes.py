"""Check a parsed AWS response against botocore's output shape for its operation.

``problems("athena", "GetQueryResults", response)`` lists every member that the service model requires
but the response lacks, every value of the wrong type, and every string outside its enum; an empty
list means the response is one the real service could have sent (as far as the model says).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any


@cache
def _model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def problems(service: str, operation: str, response: dict[str, Any]) -> list[str]:
    """Every way ``response`` breaks ``operation``'s output shape (ResponseMetadata is ignored)."""
    shape = _model(service).operation_model(operation).output_shape
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    out: list[str] = []
    if shape is not None:
        _check(shape, body, operation, out)
    elif body:
        out.append(f"{operation}: the model has no output, got {sorted(body)}")
    return out


def assert_valid(service: str, operation: str, response: dict[str, Any]) -> None:
    """Fail with every problem :func:`problems` finds."""
    found = problems(service, operation, response)
    assert not found, f"{service}.{operation} response breaks botocore's output shape:\n" + "\n".join(found)


def _check(shape: Any, value: Any, path: str, out: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            out.append(f"{path}: expected a structure, got {type(value).__name__}")
            return
        for name in getattr(shape, "required_members", []) or []:
            if name not in value:
                out.append(f"{path}.{name}: required member missing")
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                out.append(f"{path}.{name}: not a member of {shape.name}")
            elif item is not None:
                _check(member, item, f"{path}.{name}", out)
    elif kind == "list":
        if not isinstance(value, list):
            out.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", out)
    elif kind == "map":
        if not isinstance(value, dict):
            out.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(shape.key, key, f"{path} key {key!r}", out)
            _check(shape.value, item, f"{path}[{key!r}]", out)
    elif kind == "string":
        if not isinstance(value, str):
            out.append(f"{path}: expected a string, got {type(value).__name__}")
            return
        enum = shape.enum
        if enum and value not in enum:
            out.append(f"{path}: {value!r} is not one of {list(enum)}")
    elif kind in {"integer", "long"}:
        if not isinstance(value, int) or isinstance(value, bool):
            out.append(f"{path}: expected an integer, got {type(value).__name__}")
    elif kind in {"double", "float"}:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            out.append(f"{path}: expected a number, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            out.append(f"{path}: expected a boolean, got {type(value).__name__}")
    elif kind == "timestamp":
        if not isinstance(value, dt.datetime):
            out.append(f"{path}: expected a timestamp, got {type(value).__name__}")
    elif kind == "blob" and not isinstance(value, (bytes, bytearray)) and not hasattr(value, "read"):
        out.append(f"{path}: expected bytes, got {type(value).__name__}")
