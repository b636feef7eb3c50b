"""Spreadsheet formula guard (OWASP "CSV injection"): make text that a spreadsheet would run read as text.

Excel, LibreOffice and Google Sheets evaluate a CSV cell whose text starts with ``=``, ``+``, ``-`` or
``@`` (``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``, ``@SUM(...)``, ``-2+3+cmd``); OWASP and ASVS 1.2.10 add
a leading tab, carriage return and NUL, and a leading line feed is treated the same here. The guard
prefixes such a value with a single quote, which spreadsheets show as text and do not display.

Two choices keep real data intact:

- only string columns are guarded: a number, boolean or timestamp in a typed Arrow column is written
  as that value, and a negative number is not a formula;
- in a string column, a value that is entirely one plain decimal number (``-12.5``, ``+1``, ``-1e5``,
  ``-.5``) is left alone: a spreadsheet reads it as that number, and guarding it would turn every
  negative amount kept as text into text. ``-2+3``, ``+1 555 0100`` or ``-1,5`` are not plain numbers
  and are guarded.

The guard is for files people open in spreadsheets (CSV); Parquet and the in-memory results keep the
true values. A guarded value cannot be told apart from a value that really began with a quote.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_TRIGGERS = "=+-@\t\r\n\x00"
#: What a guarded value is prefixed with.
GUARD_PREFIX = "'"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
#: A value that is one plain decimal number (RE2 syntax, whole value): never guarded.
PLAIN_NUMBER_PATTERN = f"^{_NUMBER}$"
_TRIGGER_PATTERN = r"^[=+\-@\t\r\n\x00]"
_TRIGGER_BYTES = np.zeros(256, dtype=bool)
_TRIGGER_BYTES[list(FORMULA_TRIGGERS.encode("ascii"))] = True
_NUMBER_RE = re.compile(_NUMBER)


def needs_formula_guard(text: str) -> bool:
    """True when a spreadsheet would evaluate ``text`` (and it is not a plain number)."""
    return text[:1] in tuple(FORMULA_TRIGGERS) and _NUMBER_RE.fullmatch(text) is None


def guard_formula_text(text: str) -> str:
    """One value (e.g. a header name), guarded like ``formula_guard_kernel`` guards a column."""
    return GUARD_PREFIX + text if needs_formula_guard(text) else text


def formula_guard_kernel(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array | pa.ChunkedArray, int]:
    """Prefix formula-like values of a string column with ``'``; return (values, number guarded).

    Columns that are not strings come back unchanged with 0. Nulls stay null.
    """
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values, 0
    if isinstance(values, pa.ChunkedArray):
        parts = [_guard_chunk(chunk) for chunk in values.chunks]
        n = sum(count for _, count in parts)
        if not n:
            return values, 0
        return pa.chunked_array([chunk for chunk, _ in parts], type=values.type), n
    return _guard_chunk(values)


def guard_formulas(table: pa.Table) -> tuple[pa.Table, dict[str, int]]:
    """Guard every string column of ``table``; return (table, values guarded per column, only those > 0)."""
    counts: dict[str, int] = {}
    for index, name in enumerate(table.column_names):
        guarded, n = formula_guard_kernel(table.column(index))
        if n:
            table = table.set_column(index, table.schema.field(index), guarded)
            counts[name] = counts.get(name, 0) + n
    return table, counts


def _guard_chunk(chunk: pa.Array) -> tuple[pa.Array, int]:
    if not _may_need_guard(chunk):
        return chunk, 0
    risky = pc.match_substring_regex(chunk, _TRIGGER_PATTERN)
    number = pc.match_substring_regex(chunk, PLAIN_NUMBER_PATTERN)
    guard = pc.fill_null(pc.and_not(risky, number), False)
    n = int(pc.sum(guard).as_py() or 0)
    if not n:
        return chunk, 0
    prefixed = pc.utf8_replace_slice(chunk, start=0, stop=0, replacement=GUARD_PREFIX)
    return pc.if_else(guard, prefixed, chunk), n


def _may_need_guard(chunk: pa.Array) -> bool:
    """Whether any value's first byte is a trigger, read straight off the buffers (a cheap pre-check).

    Almost every column of real data has no such value, and this costs about a tenth of one regex
    pass. Null slots may give false positives; the exact Arrow test runs whenever this says True.
    """
    if len(chunk) == 0:
        return False
    _, offsets_buf, data_buf = chunk.buffers()[:3]
    if offsets_buf is None or data_buf is None:
        return offsets_buf is None  # no data bytes: nothing to guard; no offsets: let the exact test decide
    offsets: npt.NDArray[np.signedinteger[Any]]
    if pa.types.is_large_string(chunk.type):
        offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(chunk) + 1, offset=chunk.offset * 8)
    else:
        offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
    starts = offsets[:-1]
    first = np.frombuffer(data_buf, dtype=np.uint8)[starts[offsets[1:] > starts]]
    return bool(_TRIGGER_BYTES[first].any())
