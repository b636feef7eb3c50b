"""PROPOSAL for pipekit.core.timestamps (not the product): vectorised check for impossible dates.

Today ``parse_timestamps`` falls back to parsing a whole batch value by value in Python as soon as
one grammar-valid value names an impossible date or time ("2023-02-30", "2023-13-45T00:00:00",
"24:00"): Arrow's cast then fails for the whole array. Real exports contain such values, so on the
benchmark file every batch takes the slow path. The fix: before casting, null out grammar-valid
strings whose fields are out of range, with numpy over the string buffer (fixed ISO positions),
then cast once. Same results (checked against the current implementation in
``benchmarks/engines/pipekit_fastts_clean.py`` runs and ``check()`` below).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipekit.core import timestamps as T

_DIM = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def possible(text: pa.Array, valid: pa.Array) -> pa.Array:
    """``valid`` and also a real calendar date/time: month 1-12, day within month, hh<24, mm/ss<60."""
    text = text.cast(pa.large_string())
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64, count=n + 1, offset=text.offset * 8)
    data = (
        np.frombuffer(text.buffers()[2], dtype=np.uint8)
        if text.buffers()[2] is not None
        else np.zeros(1, np.uint8)
    )
    ok = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool).copy()
    rows = np.flatnonzero(ok)
    start, length = offsets[rows], offsets[rows + 1] - offsets[rows]
    last = len(data) - 1

    def number(pos: int, width: int) -> np.ndarray:
        value = np.zeros(len(rows), np.int64)
        for k in range(width):
            value = value * 10 + (data[np.minimum(start + pos + k, last)].astype(np.int64) - 48)
        return value

    def colon(pos: int) -> np.ndarray:
        return (length > pos) & (data[np.minimum(start + pos, last)] == ord(":"))

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = _DIM[np.clip(month, 0, 12)] + ((month == 2) & leap)
    good = (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)
    has_hour = length >= 13
    good &= ~has_hour | (number(11, 2) <= 23)
    has_minute = has_hour & colon(13)
    good &= ~has_minute | (number(14, 2) <= 59)
    has_second = has_minute & colon(16)
    good &= ~has_second | (number(17, 2) <= 59)
    ok[rows] = good
    return pa.array(ok)


def parse_timestamps(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``pipekit.core.parse_timestamps`` with the range check before the cast."""
    data = T.as_array(values)
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    if pa.types.is_timestamp(data.type):
        return T._timestamps_to_utc(data)
    if pa.types.is_null(data.type) or len(data) == 0:
        return pa.nulls(len(data), type=T.UTC_US)
    if not T.is_stringlike(data.type):
        data = pc.cast(data, pa.string())
    text = pc.utf8_trim_whitespace(data)
    valid = pc.fill_null(pc.match_substring_regex(text, T._ISO), False)
    if not pc.any(valid).as_py():
        return pa.nulls(len(data), type=T.UTC_US)
    valid = possible(text, valid)
    n_valid = pc.sum(valid).as_py() or 0
    try:
        return T._cast_valid(text, valid, all_valid=n_valid == len(data))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    fixed = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2})[t ]", r"\1T")
    fixed = pc.replace_substring(pc.replace_substring(fixed, "z", "Z"), ",", ".")
    fixed = pc.replace_substring_regex(fixed, r"(\.\d{6})\d+", r"\1")
    try:
        return T._cast_valid(fixed, valid, all_valid=n_valid == len(data))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return T._parse_one_by_one(fixed, valid)  # offsets out of range etc.: still correct


def install() -> None:
    """Swap the proposal in (benchmark variant only)."""
    import pipekit.core.validation as V

    T.parse_timestamps = parse_timestamps
    V.parse_timestamps = parse_timestamps


def check(rows: int = 131072) -> bool:
    """Same output as the current core on the benchmark sample."""
    from pipekit.sample import customers_table

    column = customers_table(rows, seed=0).column("timestamp")
    return T.parse_timestamps(column).equals(parse_timestamps(column))
