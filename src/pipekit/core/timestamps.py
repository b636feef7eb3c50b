"""Timestamp parsing (ISO-8601, naive = UTC) and the future-timestamp flag."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipekit.core._arrow import (
    arrow_to_series,
    as_array,
    blank_mask,
    is_stringlike,
    nulls_like,
    string_offsets,
)
from pipekit.errors import ValidationError

if TYPE_CHECKING:  # pandas loads only where a DataFrame is used (start-up: ~0.15 s)
    import pandas as pd

UTC_US = pa.timestamp("us", tz="UTC")
_NAIVE_US = pa.timestamp("us")

# Accepted shapes: date, or date + 'T'/space + HH[:MM[:SS[.fraction]]], then optional Z or +HH[:MM].
_ISO = (
    r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?$"
)
#: The timestamp grammar parse_timestamps accepts (RE2/Python syntax; values are trimmed first).
TIMESTAMP_PATTERN = _ISO
# A zone designator can only follow a time part ("2023-01-15" ends in "-15", which is not an offset).
_HAS_ZONE = r"[Tt ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"


def parse_timestamps(values: pa.Array | pa.ChunkedArray | pd.Series) -> pa.Array:
    """Parse ISO-8601 strings to ``timestamp[us, UTC]``; naive values are UTC; unparsable -> null."""
    data = as_array(values)
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    if pa.types.is_timestamp(data.type):
        return _timestamps_to_utc(data)
    if pa.types.is_null(data.type) or len(data) == 0:
        return pa.nulls(len(data), type=UTC_US)
    if not is_stringlike(data.type):
        data = pc.cast(data, pa.string())
    text = pc.utf8_trim_whitespace(data)
    fast = _parse_common(text)
    if fast is None:
        return _parse_trimmed(text)
    micros, handled, good = fast
    parsed = pa.Array.from_buffers(UTC_US, len(text), [pa.array(good).buffers()[1], pa.py_buffer(micros)])
    if handled.all():
        return parsed
    rest = ~handled
    return pc.replace_with_mask(parsed, pa.array(rest), _parse_trimmed(text.filter(pa.array(rest))))


def _parse_trimmed(text: pa.Array) -> pa.Array:
    """``parse_timestamps`` of trimmed strings, any spelling the grammar accepts (the general path)."""
    valid = pc.fill_null(pc.match_substring_regex(text, _ISO), False)
    if not pc.any(valid).as_py():
        return pa.nulls(len(text), type=UTC_US)
    # Null out impossible dates/times first (Feb 30, month 13, hour 24): one such value would make the
    # whole-array cast fail and send the batch down the slow value-by-value path.
    valid = _possible(text, valid)
    n_valid = pc.sum(valid).as_py() or 0
    if n_valid == 0:
        return pa.nulls(len(text), type=UTC_US)
    try:
        return _cast_valid(text, valid, all_valid=n_valid == len(text))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Spellings Arrow's ISO parser rejects: lower-case t/z, comma decimal marks, fractions finer
    # than microseconds (truncated: the target unit is microseconds). Fixed only when needed.
    fixed = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2})[t ]", r"\1T")
    fixed = pc.replace_substring(pc.replace_substring(fixed, "z", "Z"), ",", ".")
    fixed = pc.replace_substring_regex(fixed, r"(\.\d{6})\d+", r"\1")
    try:
        return _cast_valid(fixed, valid, all_valid=n_valid == len(text))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Well-formed but impossible values (Feb 30, hour 25, out of range) fail the whole cast;
        # only then parse this array value by value.
        return _parse_one_by_one(fixed, valid)


#: The shape the common path reads: YYYY-MM-DD, T/t/space, HH:MM:SS (19 bytes), then an optional
#: fraction (. or , and 1-9 digits) and an optional zone (Z/z, +HH, +HHMM, +HH:MM).
_COMMON_PREFIX = 19


def _parse_common(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The usual spellings, read straight off the string buffer with numpy (no regex, no cast):
    (microseconds since the epoch, rows this read decided, rows that hold a timestamp).

    Decided: empty and null values (no timestamp), and every value of the common shape (date, time with
    seconds, optional fraction and zone): those hold a timestamp when the date and time exist (as
    ``_possible`` checks) and the zone is at most 23:59. Everything else (date only, no seconds, year 0,
    any other text) goes to the general path, which a property test holds this one to.
    None when no value has the common shape.
    """
    text = text.cast(pa.large_string()) if not pa.types.is_large_string(text.type) else text
    n = len(text)
    offsets = string_offsets(text)
    starts, length = offsets[:-1], np.diff(offsets)
    buffer = text.buffers()[2]
    empty = length == 0
    if text.null_count:
        empty |= np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero((length >= _COMMON_PREFIX) & ~empty)
    if len(rows) == 0 or buffer is None:
        return None
    data = np.frombuffer(buffer, dtype=np.uint8)
    data = np.concatenate((data, np.zeros(32, np.uint8)))  # reads past a value stay in bounds
    start, size = starts[rows], length[rows]

    def at(pos: np.ndarray | int, where: np.ndarray | None = None) -> np.ndarray:
        base = start if where is None else start[where]
        value: np.ndarray = data[base + pos]
        return value

    # uint8 digits: a byte below '0' wraps round to a large value, so one comparison checks a digit.
    d = {pos: at(pos) - np.uint8(48) for pos in (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)}
    shape = (at(4) == ord("-")) & (at(7) == ord("-")) & (at(13) == ord(":")) & (at(16) == ord(":"))
    for value in d.values():
        shape &= value <= 9
    sep = at(10)
    shape &= (sep == ord("T")) | (sep == ord("t")) | (sep == ord(" "))

    def number(*positions: int) -> np.ndarray:
        value = d[positions[0]].astype(np.int32)
        for pos in positions[1:]:
            value = value * 10 + d[pos]
        return value

    year, month, day = number(0, 1, 2, 3), number(5, 6), number(8, 9)
    hour, minute, second = number(11, 12), number(14, 15), number(17, 18)
    # The rest after HH:MM:SS, on the few rows that have one: a fraction ('.' or ',' then 1-9 digits,
    # microseconds keep the first 6, as the general path), then a zone (Z/z, +/- HH, HHMM or HH:MM).
    micro = np.zeros(len(rows), np.int64)
    offset = np.zeros(len(rows), np.int64)
    longer = np.flatnonzero(size > _COMMON_PREFIX)
    if len(longer):
        more = size[longer]
        mark = at(_COMMON_PREFIX, longer)
        fraction = (mark == ord(".")) | (mark == ord(","))
        pos = _COMMON_PREFIX + fraction.astype(np.int64)
        value = np.zeros(len(longer), np.int64)
        count = np.zeros(len(longer), np.int64)
        going = fraction.copy()
        for k in range(9):
            if not going.any():
                break
            digit_k = at(pos, longer).astype(np.int64) - 48
            going &= (pos < more) & (digit_k >= 0) & (digit_k <= 9)
            if k < 6:
                value = np.where(going, value * 10 + digit_k, value)
            count += going
            pos += going
        ok = ~fraction | (count >= 1)
        value *= 10 ** (6 - np.minimum(count, 6))
        left = more - pos
        sign = at(pos, longer)
        zulu = (left == 1) & ((sign == ord("Z")) | (sign == ord("z")))
        signed = (sign == ord("+")) | (sign == ord("-"))
        z = [at(pos + k, longer).astype(np.int64) - 48 for k in range(1, 6)]
        colon = z[2] == ord(":") - 48
        hh_ok = (z[0] >= 0) & (z[0] <= 9) & (z[1] >= 0) & (z[1] <= 9)
        m1, m2 = np.where(colon, z[3], z[2]), np.where(colon, z[4], z[3])
        mm_ok = (m1 >= 0) & (m1 <= 9) & (m2 >= 0) & (m2 <= 9)
        zone_hh = signed & (left == 3) & hh_ok
        zone_hhmm = signed & hh_ok & mm_ok & (((left == 5) & ~colon) | ((left == 6) & colon))
        zh, zm = z[0] * 10 + z[1], np.where(zone_hhmm, m1 * 10 + m2, 0)
        zoned = zone_hh | zone_hhmm
        ok &= (left == 0) | zulu | zoned
        ok &= ~zoned | ((zh <= 23) & (zm <= 59))  # larger offsets: the general path decides
        shape[longer] &= ok
        micro[longer] = value
        minutes = np.where(zoned, zh * 60 + zm, 0)
        offset[longer] = np.where(sign == ord("-"), -minutes, minutes)
    # Decided here: real dates from year 1 (year 0 and the rest: the general path).
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    possible = (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in)
    possible &= (hour <= 23) & (minute <= 59) & (second <= 59)
    decided = shape & (year >= 1)
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = (era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468).astype(np.int64)
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second - offset * 60
    micros = np.zeros(n, np.int64)
    handled = empty.copy()
    good = np.zeros(n, dtype=bool)
    handled[rows[decided]] = True
    keep = decided & possible
    micros[rows[keep]] = (seconds * 1_000_000 + micro)[keep]
    good[rows[keep]] = True
    return micros, handled, good


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _possible(text: pa.Array, valid: pa.Array) -> pa.Array:
    """``valid`` and also a real calendar date/time: month 1-12, day within month, hh<24, mm/ss<60.

    Works on the string buffer with numpy at the fixed ISO positions the grammar guarantees.
    """
    text = text.cast(pa.large_string())
    n = len(text)
    buffers = text.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64, count=n + 1, offset=text.offset * 8)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(1, np.uint8)
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
        found: np.ndarray = (length > pos) & (data[np.minimum(start + pos, last)] == ord(":"))
        return found

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    good = (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)
    has_hour = length >= 13
    good &= ~has_hour | (number(11, 2) <= 23)
    has_minute = has_hour & colon(13)
    good &= ~has_minute | (number(14, 2) <= 59)
    has_second = has_minute & colon(16)
    good &= ~has_second | (number(17, 2) <= 59)
    ok[rows] = good
    return pa.array(ok)


def _cast_valid(text: pa.Array, valid: pa.Array, *, all_valid: bool) -> pa.Array:
    """Cast strings that matched the grammar: zoned ones to UTC, naive ones read as UTC.

    Naive values get a "Z" (date-only ones "T00Z") so that ONE cast to ``timestamp[us, UTC]`` reads
    every value: trying whole-array casts that fail costs several times more than this whole path.
    """
    candidates = text if all_valid else pc.if_else(valid, text, nulls_like(text))
    zoned = _zoned(text, valid)
    if not pc.all(zoned).as_py():
        date_only = pc.fill_null(pc.equal(pc.binary_length(candidates), 10), False)
        suffix = pc.if_else(date_only, pa.scalar("T00Z"), pa.scalar("Z"))
        as_utc = pc.binary_join_element_wise(candidates, suffix, "")
        candidates = pc.if_else(zoned, candidates, as_utc)
    return pc.cast(candidates, UTC_US)


def _zoned(text: pa.Array, valid: pa.Array) -> pa.Array:
    """``valid`` and ending in a zone designator: what ``_HAS_ZONE`` matches on grammar-valid values.

    In a value that matched ``_ISO`` a zone is a final Z/z, or a +/- after the date (index 11 or
    later: the time part holds only digits, ':', '.' and ','), which can only sit 3, 5 or 6 bytes
    from the end (+HH, +HHMM, +HH:MM). Read off the buffer with numpy instead of a regex pass.
    """
    offsets = string_offsets(text)
    starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    buffer = text.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    if len(data) == 0:
        data = np.zeros(1, np.uint8)  # only empty values: every lookup below is masked out
    last = len(data) - 1
    nonempty = ends > starts
    tail = data[np.clip(ends - 1, 0, last)]
    zoned = nonempty & ((tail == ord("Z")) | (tail == ord("z")))
    for back in (3, 5, 6):
        at = ends - back
        byte = data[np.clip(at, 0, last)]
        zoned |= (at >= starts + 11) & ((byte == ord("+")) | (byte == ord("-")))
    ok = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    return pa.array(zoned & ok)


def _timestamps_to_utc(data: pa.Array) -> pa.Array:
    if data.type.tz is None:
        return data.cast(pa.timestamp(data.type.unit)).cast(pa.timestamp("us", tz="UTC"), safe=False)
    return data.cast(UTC_US, safe=False)


def _parse_one_by_one(text: pa.Array, valid: pa.Array) -> pa.Array:
    out: list[datetime | None] = []
    for value, ok in zip(text.to_pylist(), valid.to_pylist(), strict=True):
        out.append(_parse_scalar(value) if ok else None)
    return pa.array(out, type=UTC_US)


def _parse_scalar(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def utc_now(now: datetime | None = None) -> datetime:
    """Return ``now`` as an aware UTC datetime (naive = UTC); the current time when None."""
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def future_flags(
    values: pa.Array | pa.ChunkedArray, *, now: datetime, parsed: pa.Array | None = None
) -> tuple[pa.Array, int, int]:
    """Flag values later than ``now``: (flags with null for unparsable, n_future, n_unparsable).

    ``parsed`` is ``parse_timestamps(values)`` when the caller has it already (one parse per batch).
    """
    parsed = parse_timestamps(values) if parsed is None else parsed
    flags = pc.greater(parsed, pa.scalar(utc_now(now), type=UTC_US))
    n_future = pc.sum(pc.fill_null(flags, False)).as_py() or 0
    data = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    # Unparsable = a value was present but did not parse; a missing value is not unparsable.
    present = pc.invert(blank_mask(data))
    n_unparsable = pc.sum(pc.and_(present, pc.is_null(parsed))).as_py() or 0
    return flags, int(n_future), int(n_unparsable)


def flag_future(
    customers: pd.DataFrame,
    column: str = "timestamp",
    *,
    now: datetime | None = None,
    flag_column: str = "is_future",
) -> tuple[pd.DataFrame, int, int]:
    """Add a boolean ``flag_column`` (null when unparsable); return (data, n_future, n_unparsable)."""
    if column not in customers.columns:
        raise ValidationError(
            f"timestamp column {column!r} is not in the data",
            hint=f"columns present: {', '.join(map(str, customers.columns))}",
        )
    flags, n_future, n_unparsable = future_flags(as_array(customers[column]), now=utc_now(now))
    out = customers.copy()
    out[flag_column] = arrow_to_series(flags, customers[column])
    return out, n_future, n_unparsable
