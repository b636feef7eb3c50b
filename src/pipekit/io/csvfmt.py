"""Vectorised CSV encoding of Arrow tables: RFC 4180, quoting only the fields that need it.

Arrow's own CSV writer quotes every string; most exporters (and people) quote only where a field
holds a comma, quote or line break, which keeps files small and diffs readable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NEEDS_QUOTES = '[,"\\r\\n]'


def header_line(columns: Sequence[str], newline: str = "\n") -> bytes:
    """The header row for ``columns``, quoted where needed."""
    fields = [
        f'"{c.replace(chr(34), chr(34) * 2)}"' if any(ch in c for ch in ',"\r\n') else c for c in columns
    ]
    return (",".join(fields) + newline).encode("utf-8")


def csv_field(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Field text for one column: nulls empty, booleans true/false, quotes doubled where needed."""
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    needs = pc.fill_null(pc.match_substring_regex(values, _NEEDS_QUOTES), False)
    if not pc.any(needs).as_py():
        return pc.fill_null(values, "")
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.fill_null(pc.if_else(needs, quoted, values), "")


def encode_csv_rows(table: pa.Table, newline: str = "\n") -> bytes:
    """Encode ``table``'s rows (no header) as UTF-8 CSV bytes, without a Python loop over rows."""
    if table.num_rows == 0:
        return b""
    if table.num_columns == 0:
        return newline.encode() * int(table.num_rows)
    fields = [csv_field(column) for column in table.columns]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, ","), newline, "")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    return _concat_strings(lines)


def _concat_strings(lines: pa.Array) -> bytes:
    """The bytes of every string in ``lines`` back to back: a slice of its data buffer."""
    width = 8 if pa.types.is_large_string(lines.type) else 4
    dtype = np.int64 if width == 8 else np.int32
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=dtype, count=len(lines) + 1, offset=lines.offset * width
    )
    data = lines.buffers()[2]
    if data is None:
        return b""
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])].tobytes()
