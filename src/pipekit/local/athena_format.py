"""How Athena engine v3 (Trino) names result types and prints values, for the twin's DuckDB results.

Types: DuckDB's result types map to the names Athena puts in ``ResultSetMetadata.ColumnInfo[].Type``
(``varchar``, ``bigint``, ``double``, ``timestamp with time zone``, ``array``, ``map``, ``row``, ...).
Values: Trino's text form, the one Athena writes to the result CSV and returns from GetQueryResults:
doubles as Java's ``Double.toString`` (``1.0E8``, ``0.5``), timestamps with milliseconds, zoned
timestamps with the zone (``... UTC``), arrays ``[a, b]``, maps and rows ``{k=v}``, booleans
``true``/``false``, decimals with their scale.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from decimal import Decimal
from typing import Any

#: DuckDB type id -> Athena ColumnInfo type name. HUGEINT only appears where DuckDB widens a sum;
#: the twin casts those to bigint (Trino's sum(bigint) is bigint), so the name is bigint too.
_TYPE_NAMES = {
    "boolean": "boolean", "tinyint": "tinyint", "smallint": "smallint", "integer": "integer",
    "bigint": "bigint", "hugeint": "bigint", "utinyint": "smallint", "usmallint": "integer",
    "uinteger": "bigint", "ubigint": "bigint", "uhugeint": "bigint", "float": "float", "double": "double",
    "decimal": "decimal", "varchar": "varchar", "date": "date", "timestamp": "timestamp",
    "timestamp_ms": "timestamp", "timestamp_s": "timestamp", "timestamp_ns": "timestamp",
    "timestamp with time zone": "timestamp with time zone", "time": "time", "blob": "varbinary",
    "list": "array", "array": "array", "map": "map", "struct": "row", "interval": "interval day to second",
    "uuid": "uuid", "json": "json", "null": "unknown", "sqlnull": "unknown",
}

#: Precision Athena reports per type (decimal: its own precision; the rest 0).
_PRECISION = {"varchar": 2147483647, "bigint": 19, "integer": 10, "smallint": 5, "tinyint": 3, "double": 17,
              "float": 7, "timestamp": 3, "timestamp with time zone": 3, "time": 3, "varbinary": 2147483647,
              "json": 2147483647}


def type_id(duck_type: Any) -> str:
    """DuckDB's type id (``list``, ``decimal``, ``timestamp with time zone``...) of a DuckDBPyType."""
    return str(getattr(duck_type, "id", duck_type)).lower()


def children(duck_type: Any) -> list[tuple[str, Any]]:
    """The (name, type) children of a nested DuckDB type; [] for a flat one."""
    if type_id(duck_type) not in {"list", "array", "map", "struct", "union"}:
        return []
    try:
        return list(duck_type.children)
    except Exception:  # a type given by name only
        return []


def athena_type(duck_type: Any) -> str:
    """The Athena (Trino) type name for a DuckDB result type."""
    return _TYPE_NAMES.get(type_id(duck_type), "varchar")


def column_info(name: str, duck_type: Any) -> dict[str, Any]:
    """One ``ColumnInfo`` entry as Athena returns it for a query result column."""
    kind = athena_type(duck_type)
    precision, scale = _PRECISION.get(kind, 0), 0
    if kind == "decimal":
        text = str(duck_type)
        inner = text[text.find("(") + 1:text.rfind(")")].split(",") if "(" in text else ["18", "3"]
        precision, scale = int(inner[0]), int(inner[1])
    return {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
            "Type": kind, "Precision": precision, "Scale": scale, "Nullable": "UNKNOWN",
            "CaseSensitive": kind == "varchar"}


def java_double(value: float) -> str:
    """``Double.toString``: positional within [1e-3, 1e7), else ``d.dddE<n>``; always a fraction digit."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    return _java_style(repr(value), abs(value))


def java_float(value: float) -> str:
    """``Float.toString`` for a real: the shortest digits that read back to the same float32."""
    if math.isnan(value) or math.isinf(value) or value == 0:
        return java_double(value)
    packed = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{packed:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == packed:
            break
    return _java_style(text, abs(packed))


def _java_style(shortest: str, magnitude: float) -> str:
    sign, digits, exponent = Decimal(shortest).normalize().as_tuple()
    text_digits = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + int(exponent)  # position of the decimal point within the digits
    prefix = "-" if sign else ""
    if 1e-3 <= magnitude < 1e7:
        if point <= 0:
            return f"{prefix}0.{'0' * -point}{text_digits}"
        whole = text_digits[:point].ljust(point, "0")
        frac = text_digits[point:] or "0"
        return f"{prefix}{whole}.{frac}"
    return f"{prefix}{text_digits[0]}.{text_digits[1:] or '0'}E{point - 1}"


def _timestamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _zone(value: dt.datetime) -> str:
    offset = value.utcoffset()
    if offset is None or offset == dt.timedelta(0):
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_value(value: Any, duck_type: Any, nested: bool = False) -> str | None:
    """Trino's text form of ``value`` (of DuckDB type ``duck_type``); None stays None (NULL) at top level."""
    if value is None:
        return "null" if nested else None
    kind = type_id(duck_type)
    kids = children(duck_type)
    if kind in {"list", "array"}:
        child = kids[0][1] if kids else "varchar"
        return "[" + ", ".join(str(format_value(v, child, True)) for v in value) + "]"
    if kind == "map":
        key_t = kids[0][1] if kids else "varchar"
        val_t = kids[1][1] if len(kids) > 1 else "varchar"
        items = (zip(value["key"], value["value"], strict=False) if isinstance(value, dict) and set(value) == {"key", "value"}
                 else value.items())
        return "{" + ", ".join(f"{format_value(k, key_t, True)}={format_value(v, val_t, True)}" for k, v in items) + "}"
    if kind == "struct":
        types = dict(kids)
        return "{" + ", ".join(f"{k}={format_value(v, types.get(k, 'varchar'), True)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "double":
        return java_double(float(value))
    if kind == "float":
        return java_float(float(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None or kind == "timestamp with time zone":
            return f"{_timestamp(value)} {_zone(value)}"
        return _timestamp(value)
    if isinstance(value, dt.timedelta):  # interval day to second: "D HH:MM:SS.mmm"
        sign = "-" if value < dt.timedelta(0) else ""
        total_ms = abs(value) // dt.timedelta(milliseconds=1)
        days, rest = divmod(total_ms, 86_400_000)
        hours, rest = divmod(rest, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        return f"{sign}{days} {hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return " ".join(f"{b:02x}" for b in bytes(value))
    return str(value)


class QueryTable:
    """A finished query's result: Trino column names, DuckDB types, the rows as Python values and as Arrow."""

    def __init__(self, names: list[str], types: list[Any], values: list[tuple[Any, ...]], arrow: Any) -> None:
        self.names, self.types, self.values, self.arrow = names, types, values, arrow

    def text_rows(self) -> list[list[str | None]]:
        """Every value in Trino's text form (None for NULL)."""
        return [[format_value(v, t) for v, t in zip(row, self.types, strict=True)] for row in self.values]
