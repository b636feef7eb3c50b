"""A small JSON Schema validator for the keywords pipekit's published schemas use (job config, UserParameters).

Why not ``jsonschema``: the deploy Lambda must run on the bare Lambda runtime (boto3 only), and
``jsonschema`` pulls in compiled dependencies. Tests check this validator agrees with ``jsonschema``
on both published schemas. Unsupported keywords raise, so the schema cannot silently outgrow it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
_SUPPORTED = {
    "$schema", "$id", "title", "description", "default", "type", "properties", "required",
    "additionalProperties", "propertyNames", "enum", "minimum", "maximum", "minLength", "maxLength",
    "pattern", "items", "minItems", "maxItems", "maxProperties", "examples",
}


def _type_ok(value: Any, name: str | list[str]) -> bool:
    if isinstance(name, list):  # "type": ["array", "string"]: any one of them
        return any(_type_ok(value, n) for n in name)
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON Schema: true is not a number
    return isinstance(value, _TYPES[name])


def _same(a: Any, b: Any) -> bool:
    """JSON equality for ``enum``: unlike Python's ``==``, ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def iter_errors(instance: Any, schema: Mapping[str, Any], path: tuple[str | int, ...] = ()) -> Iterator[
        tuple[tuple[str | int, ...], str]]:
    """Yield ``(path, message)`` for every way ``instance`` breaks ``schema``."""
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise NotImplementedError(f"schema keywords not supported by pipekit's validator: {sorted(unknown)}")
    expected = schema.get("type")
    if expected is not None and not _type_ok(instance, expected):
        names = " or ".join(expected) if isinstance(expected, list) else expected
        yield path, f"must be of type {names}, got {_describe(instance)}"
        return
    if "enum" in schema and not any(_same(instance, e) for e in schema["enum"]):
        yield path, f"{_describe(instance)} is not one of {schema['enum']}"
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            yield path, f"{instance} is less than the minimum of {schema['minimum']}"
        if "maximum" in schema and instance > schema["maximum"]:
            yield path, f"{instance} is greater than the maximum of {schema['maximum']}"
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            yield path, f"{_describe(instance)} is shorter than {schema['minLength']} characters"
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            yield path, f"{_describe(instance)} is longer than {schema['maxLength']} characters"
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            yield path, f"{_describe(instance)} does not match {schema['pattern']!r}"
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            yield path, f"has fewer than {schema['minItems']} item(s)"
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            yield path, f"has more than {schema['maxItems']} items"
        if "items" in schema:
            for i, item in enumerate(instance):
                yield from iter_errors(item, schema["items"], (*path, i))
    if isinstance(instance, dict):
        yield from _object_errors(instance, schema, path)


def _object_errors(instance: dict[str, Any], schema: Mapping[str, Any], path: tuple[str | int, ...]) -> Iterator[
        tuple[tuple[str | int, ...], str]]:
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in instance:
            yield (*path, name), "is required but missing"
    if "maxProperties" in schema and len(instance) > schema["maxProperties"]:
        yield path, f"has more than {schema['maxProperties']} entries"
    extra = schema.get("additionalProperties", True)
    for key, value in instance.items():
        if "propertyNames" in schema:
            for _, msg in iter_errors(key, schema["propertyNames"], (*path, key)):
                yield (*path, key), f"key {msg}"
        if key in props:
            yield from iter_errors(value, props[key], (*path, key))
        elif extra is False:
            yield (*path, key), f"is not a known field (known: {', '.join(sorted(props))})"
        elif isinstance(extra, Mapping):
            yield from iter_errors(value, extra, (*path, key))
