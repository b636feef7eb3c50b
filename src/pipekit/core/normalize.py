"""Row and value rules: drop null/blank rows, drop duplicates, normalise names and emails.

Each rule is one Arrow kernel; the pandas functions are thin wrappers around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipekit.core._arrow import (
    arrow_to_series,
    as_array,
    as_strings,
    blank_mask,
    frame_to_table,
    is_stringlike,
    string_offsets,
    value_bytes,
)
from pipekit.errors import ConfigError, InputError

if TYPE_CHECKING:  # pandas loads only where a DataFrame is used (start-up: ~0.15 s)
    import pandas as pd

DEFAULT_REQUIRED: tuple[str, ...] = ("id", "name", "email", "timestamp")

# Runs of any whitespace, ASCII or Unicode space separators (RE2 \s is ASCII only).
_WHITESPACE_RUN = r"[\s\p{Z}]+"
# True where _WHITESPACE_RUN would change something: a run of two, or one that is not a plain space.
_NEEDS_COLLAPSE = r"[\s\p{Z}]{2}|[\t\n\f\r]|[^\P{Z} ]"
_ROW = "__pipekit_row"

#: What cleaning does with control characters in values: remove them, stop the run, or leave them.
CONTROL_CHAR_MODES: tuple[str, ...] = ("strip", "reject", "keep")
# C0 controls (NUL included) and DEL and the C1 range, except tab, LF and CR, which CSV fields may
# legitimately hold (LF/CR only inside quotes). Spreadsheets, terminals and C-string consumers of
# the outputs misbehave on the others (a NUL truncates a value in many readers).
CONTROL_CHARS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"


class ControlCharacterError(InputError):
    """A value holds a control character and the policy is ``reject``: ``row`` is 0-based in its batch."""

    def __init__(self, column: str, row: int, codepoint: int) -> None:
        super().__init__(
            f"column {column!r}, row {row + 1} holds a control character (U+{codepoint:04X})",
            hint="pass --control-chars strip to remove such characters (counted in the report)",
        )
        self.column, self.row, self.codepoint = column, row, codepoint


# --- Arrow kernels -------------------------------------------------------------------------------


def trim_kernel(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Trim leading/trailing Unicode whitespace of a string array (other types pass through)."""
    if not is_stringlike(values.type) or not _may_need_trim(values):
        return values
    return pc.utf8_trim_whitespace(values)


def _may_need_trim(values: pa.Array | pa.ChunkedArray) -> bool:
    """False when no value starts or ends with a byte that can be (part of) whitespace.

    Whitespace is ASCII <= 0x20 or a non-ASCII character, whose UTF-8 bytes are all >= 0x80: a value
    whose first and last bytes are printable ASCII needs no trimming. Read off the offsets, ~0.1 ms per
    100k values, against ~1.5 ms for the trim itself.
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    for chunk in chunks:
        if len(chunk) == 0 or chunk.buffers()[2] is None:
            continue
        offsets = string_offsets(chunk)
        starts, ends = offsets[:-1], offsets[1:]
        nonempty = ends > starts
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)
        edges = np.concatenate((data[starts[nonempty]], data[ends[nonempty] - 1]))
        if ((edges <= 0x20) | (edges >= 0x7F)).any():
            return True
    return False


def control_chars_mask(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray | None:
    """True where a string holds a control character other than tab, LF, CR; None for non-strings."""
    if not is_stringlike(values.type):
        return None
    return pc.fill_null(pc.match_substring_regex(values, CONTROL_CHARS), False)


# Bytes that start (or are) a CONTROL_CHARS character in UTF-8: C0 except tab/LF/CR, DEL, and 0xC2,
# the lead byte of U+0080-U+00BF (which holds C1). A column with none of them has no control character.
_CONTROL_LEAD = np.zeros(256, dtype=bool)
_CONTROL_LEAD[[*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0xC2]] = True


def may_hold_control_chars(values: pa.Array | pa.ChunkedArray) -> bool:
    """False when no value of a string array can hold a CONTROL_CHARS character (one byte scan)."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    return any(_has_control_lead(value_bytes(chunk)) for chunk in chunks if len(chunk))


def _has_control_lead(raw: np.ndarray) -> bool:
    # Plain comparisons are SIMD-fast; the table lookup runs only on the (rare) bytes below 0x20.
    low = raw < 0x20
    if low.any() and bool(_CONTROL_LEAD[raw[low]].any()):
        return True
    return bool((raw == 0x7F).any() or (raw == 0xC2).any())


def apply_control_chars(table: pa.Table, mode: str) -> tuple[pa.Table, int]:
    """Apply a ``CONTROL_CHAR_MODES`` policy to every string column; (table, values with control chars).

    ``reject`` raises ControlCharacterError naming the first such value's column and row.
    """
    if mode not in CONTROL_CHAR_MODES:
        raise ConfigError(f"control_chars must be one of {', '.join(CONTROL_CHAR_MODES)}, got {mode!r}")
    total = 0
    columns = list(table.columns)
    for i, column in enumerate(columns):
        if not is_stringlike(column.type) or not may_hold_control_chars(column):
            continue  # the regex costs ~7 ms per 100k values; the byte scan clears almost every column
        found = control_chars_mask(column)
        if found is None:
            continue
        n = int(pc.sum(found).as_py() or 0)
        if not n:
            continue
        total += n
        if mode == "reject":
            row = int(pc.index(found, True).as_py())
            text = column[row].as_py()
            codepoint = next(ord(ch) for ch in text if _is_control(ord(ch)))
            raise ControlCharacterError(table.column_names[i], row, codepoint)
        if mode == "strip":
            columns[i] = pc.replace_substring_regex(column, CONTROL_CHARS, "")
    if mode == "strip" and total:
        table = pa.Table.from_arrays(columns, names=table.column_names)
    return table, total


def _is_control(codepoint: int) -> bool:
    return (codepoint < 0x20 and codepoint not in (9, 10, 13)) or 0x7F <= codepoint <= 0x9F


def names_kernel(values: pa.Array | pa.ChunkedArray, *, trimmed: bool = False) -> pa.Array | pa.ChunkedArray:
    """Collapse whitespace runs, trim, then Title Case each word (after spaces, hyphens, apostrophes)."""
    text = as_strings(values) if trimmed else pc.utf8_trim_whitespace(as_strings(values))
    # Most names need no collapsing: find the few that might (a byte scan, a superset of what
    # _NEEDS_COLLAPSE matches) and rewrite only those; on a trimmed value without a run to collapse
    # the rewrite changes nothing, so the superset is safe.
    found = _may_need_collapse(text)
    if found is not None:
        needs, unicode = found
        text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
        ascii_only = needs & ~unicode
        if ascii_only.any():  # runs of ASCII whitespace only: collapsed on the bytes
            mask = pa.array(ascii_only)
            text = pc.replace_with_mask(text, mask, _collapse_ascii_whitespace(text.filter(mask)))
        if unicode.any():  # a non-ASCII space may be involved: RE2 decides
            mask = pa.array(unicode)
            collapsed = pc.replace_substring_regex(text.filter(mask), _WHITESPACE_RUN, " ")
            text = pc.replace_with_mask(text, mask, pc.utf8_trim_whitespace(collapsed))
    # utf8_title upper-cases the first letter after any non-letter, which gives O'Brien and Jean-Luc.
    return pc.utf8_title(text)


def _may_need_collapse(text: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Where ``_NEEDS_COLLAPSE`` could match (a superset), and which of those rows hold a non-ASCII byte
    that may start a \\p{Z} character; None when no row could match.

    Flags two spaces in a row, ASCII \\t..\\r, and the UTF-8 lead bytes of every non-ASCII \\p{Z}
    character (0xC2, 0xE1-0xE3), found with plain comparisons.
    """
    array = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    raw = value_bytes(array)
    if len(raw) == 0:
        return None
    space = raw == 0x20
    lead = (raw == 0xC2) | ((raw >= 0xE1) & (raw <= 0xE3))
    flagged = ((raw >= 0x09) & (raw <= 0x0D)) | lead
    flagged[1:] |= space[1:] & space[:-1]
    at = np.flatnonzero(flagged)
    if len(at) == 0:
        return None
    offsets = string_offsets(array)
    needs = np.zeros(len(array), dtype=bool)
    needs[np.searchsorted(offsets, offsets[0] + at, side="right") - 1] = True
    unicode = np.zeros(len(array), dtype=bool)
    at = np.flatnonzero(lead)
    if len(at):
        unicode[np.searchsorted(offsets, offsets[0] + at, side="right") - 1] = True
    return needs, unicode


#: RE2's \\s (tab, LF, FF, CR, space; not VT) plus the one ASCII \\p{Z} character, the space.
_ASCII_WHITESPACE = np.zeros(256, dtype=bool)
_ASCII_WHITESPACE[[0x09, 0x0A, 0x0C, 0x0D, 0x20]] = True


def _collapse_ascii_whitespace(text: pa.Array) -> pa.Array:
    """Each run of ASCII whitespace inside a value becomes one space, on the bytes (trimmed input).

    The same as ``replace_substring_regex(text, _WHITESPACE_RUN, " ")`` for values without non-ASCII
    spaces, several times faster; nulls stay null.
    """
    offsets = string_offsets(text).astype(np.int64)
    raw = value_bytes(text)
    starts = offsets[:-1] - offsets[0]
    white = _ASCII_WHITESPACE[raw]
    after_white = np.zeros(len(raw), dtype=bool)
    after_white[1:] = white[:-1]
    after_white[starts[starts < len(raw)]] = False  # a run never spans two values
    keep = ~(white & after_white)
    data = np.where(white, np.uint8(0x20), raw)[keep]
    kept = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept[1:])
    large = pa.types.is_large_string(text.type)
    new_offsets = kept[offsets - offsets[0]].astype(np.int64 if large else np.int32)
    validity = text.buffers()[0] if text.null_count else None
    if validity is not None and text.offset:
        validity = pa.array(text.is_valid()).buffers()[1]  # re-based bitmap of a sliced array
    return pa.Array.from_buffers(
        text.type, len(text), [validity, pa.py_buffer(new_offsets), pa.py_buffer(data)], text.null_count
    )


def emails_kernel(values: pa.Array | pa.ChunkedArray, *, trimmed: bool = False) -> pa.Array | pa.ChunkedArray:
    """Trim and lower-case email addresses."""
    values = as_strings(values)
    return pc.utf8_lower(values if trimmed else pc.utf8_trim_whitespace(values))


def required_mask(
    table: pa.Table, columns: Sequence[str], *, trimmed: bool = False
) -> pa.Array | pa.ChunkedArray | None:
    """True for rows where any present column in ``columns`` is null, empty or whitespace-only.

    ``trimmed``: the string columns were trimmed already, so whitespace-only values are empty now.
    """
    mask = None
    for name in columns:
        if name not in table.column_names:
            continue
        values = table.column(name)
        if trimmed and is_stringlike(values.type):
            blank = pc.fill_null(pc.equal(pc.binary_length(values), 0), True)
        else:
            blank = blank_mask(values)
        mask = blank if mask is None else pc.or_(mask, blank)
    return mask


def drop_nulls_table(
    table: pa.Table, columns: Sequence[str] = DEFAULT_REQUIRED, *, trimmed: bool = False
) -> tuple[pa.Table, int]:
    """Drop rows with a null/blank value in any of ``columns`` that the table has (see ``required_mask``)."""
    mask = required_mask(table, columns, trimmed=trimmed)
    if mask is None:
        return table, 0
    dropped = pc.sum(mask).as_py() or 0
    if dropped == 0:
        return table, 0
    return table.filter(pc.invert(mask)), int(dropped)


def first_occurrence_indices(table: pa.Table, keys: Sequence[str] | None = None) -> pa.Array:
    """Sorted row indices of the first occurrence of each distinct key (nulls compare equal)."""
    key_names = list(table.column_names if keys is None else keys)
    missing = [k for k in key_names if k not in table.column_names]
    if missing:
        raise ConfigError(
            f"duplicate keys not in the data: {', '.join(missing)}",
            hint=f"choose keys among: {', '.join(map(str, table.column_names))}",
        )
    if table.num_rows == 0 or not key_names:
        return pa.array(np.arange(min(table.num_rows, 1), dtype=np.int64))
    keyed = table.select(key_names).append_column(_ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    firsts = keyed.group_by(key_names, use_threads=False).aggregate([(_ROW, "min")])
    firsts_rows = firsts.column(f"{_ROW}_min").combine_chunks()
    return pc.take(firsts_rows, pc.array_sort_indices(firsts_rows))


def drop_duplicates_table(table: pa.Table, keys: Sequence[str] | None = None) -> tuple[pa.Table, int]:
    """Keep the first occurrence of each row (or of each ``keys`` combination), in input order."""
    keep = first_occurrence_indices(table, keys)
    dropped = table.num_rows - len(keep)
    if dropped == 0:
        return table, 0
    return table.take(keep), dropped


# --- pandas wrappers -----------------------------------------------------------------------------


def drop_nulls(
    customers: pd.DataFrame, columns: Sequence[str] = DEFAULT_REQUIRED
) -> tuple[pd.DataFrame, int]:
    """Drop rows with a null, empty or whitespace-only value in any of ``columns``; return (data, n_dropped)."""
    present = [c for c in columns if c in customers.columns]
    if not present or customers.empty:
        return customers.copy(), 0
    import pandas as pd

    mask = required_mask(frame_to_table(customers[present]), present)
    assert mask is not None
    drop = pd.Series(_to_numpy_bool(mask), index=customers.index)
    return customers.loc[~drop].copy(), int(drop.sum())


def drop_duplicates(customers: pd.DataFrame, keys: Sequence[str] | None = None) -> tuple[pd.DataFrame, int]:
    """Drop duplicate rows (all columns, or ``keys``), keeping the first occurrence in stable order."""
    if customers.empty:
        return customers.copy(), 0
    key_names = [str(c) for c in (customers.columns if keys is None else keys)]
    missing = [k for k in key_names if k not in customers.columns]
    if missing:
        raise ConfigError(
            f"duplicate keys not in the data: {', '.join(missing)}",
            hint=f"choose keys among: {', '.join(map(str, customers.columns))}",
        )
    keep = first_occurrence_indices(frame_to_table(customers[key_names]), key_names)
    out = customers.iloc[keep.to_numpy(zero_copy_only=False)].copy()
    return out, len(customers) - len(out)


def title_case_name(name: str) -> str:
    """Title Case one person's name: "o'brien" -> "O'Brien", "jean-luc" -> "Jean-Luc"."""
    titled: str = names_kernel(pa.array([name], type=pa.string()))[0].as_py()
    return titled


def normalize_names(names: pd.Series) -> pd.Series:
    """Title Case a Series of names, trimming and collapsing whitespace; nulls stay null."""
    return arrow_to_series(names_kernel(as_array(names)), names)


def normalize_emails(emails: pd.Series) -> pd.Series:
    """Trim and lower-case a Series of email addresses; nulls stay null."""
    return arrow_to_series(emails_kernel(as_array(emails)), emails)


def _to_numpy_bool(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    flags: np.ndarray = mask.to_numpy(zero_copy_only=False)
    return flags
