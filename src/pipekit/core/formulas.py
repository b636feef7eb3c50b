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
    risky = _risky_rows(chunk)
    if risky is None:
        return chunk, 0
    # Only values that start with a trigger can need the guard: test just those for a plain number.
    rows = np.flatnonzero(risky)
    candidates = chunk.take(pa.array(rows))
    number = pc.fill_null(pc.match_substring_regex(candidates, PLAIN_NUMBER_PATTERN), False)
    guarded = rows[~np.asarray(number.to_numpy(zero_copy_only=False), dtype=bool)]
    if len(guarded) == 0:
        return chunk, 0
    mask = np.zeros(len(chunk), dtype=bool)
    mask[guarded] = True
    prefixed = pc.utf8_replace_slice(chunk, start=0, stop=0, replacement=GUARD_PREFIX)
    return pc.if_else(pa.array(mask), prefixed, chunk), len(guarded)


def _risky_rows(chunk: pa.Array) -> npt.NDArray[np.bool_] | None:
    """True for values whose first byte is a trigger, read straight off the buffers; None when none is.

    Every trigger is one ASCII byte, so the first byte decides; nulls are never risky.
    """
    if len(chunk) == 0:
        return None
    _, offsets_buf, data_buf = chunk.buffers()[:3]
    if offsets_buf is None or data_buf is None:
        return None  # no data bytes: every value is empty or null
    offsets: npt.NDArray[np.signedinteger[Any]]
    if pa.types.is_large_string(chunk.type):
        offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(chunk) + 1, offset=chunk.offset * 8)
    else:
        offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
    starts = offsets[:-1]
    nonempty = offsets[1:] > starts
    risky = np.zeros(len(chunk), dtype=bool)
    risky[nonempty] = _TRIGGER_BYTES[np.frombuffer(data_buf, dtype=np.uint8)[starts[nonempty]]]
    if chunk.null_count:
        risky &= np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return risky if risky.any() else None
