"""Small Arrow helpers shared by the core kernels (conversion to and from pandas, null/blank tests)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # pandas loads only where a DataFrame is used (start-up: ~0.15 s)
    import pandas as pd

STRING = pa.string()
# Booleans with nulls would become object columns; the nullable "boolean" dtype keeps them typed.
def _bool_mapping(data_type: pa.DataType) -> Any:
    """``to_pandas`` types_mapper: booleans become the nullable ``boolean`` dtype (nulls kept)."""
    import pandas as pd

    return pd.BooleanDtype() if data_type == pa.bool_() else None


def nulls_like(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """An all-null array of ``values``' length and type.

    Used as the "else" side of ``if_else`` instead of a null scalar: pyarrow 14 (the Glue-era floor)
    builds an invalid array from ``if_else(mask, sliced_string_array, null_scalar)``.
    """
    return pa.nulls(len(values), type=values.type)


def is_stringlike(data_type: pa.DataType) -> bool:
    """True for string, large_string and string_view columns."""
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(data_type))
    )


def as_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Return ``values`` as text: strings pass through, other types are cast (ints keep their digits)."""
    if is_stringlike(values.type):
        return values
    return pc.cast(values, pa.string())


def as_array(values: pa.Array | pa.ChunkedArray | pd.Series | Sequence[object]) -> pa.Array | pa.ChunkedArray:
    """Return ``values`` as Arrow data without copying when it already is Arrow."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    pandas = sys.modules.get("pandas")  # not loaded: values cannot be a Series
    if pandas is not None and isinstance(values, pandas.Series):
        return series_to_arrow(values)
    return pa.array(list(values), from_pandas=True)


def series_to_arrow(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    """Convert a pandas Series to Arrow; NaN/None/NA become null, mixed objects become strings."""
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed Python objects (e.g. ints and strings read from a messy source): compare them as text.
        as_text = series.map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
        return pa.array(as_text, type=pa.string(), from_pandas=True)
    # pandas 3 "str" columns arrive as large_string; plain string matches what Arrow's CSV reader
    # gives, so batches from a file and from a DataFrame have the same schema.
    if pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    return values


def arrow_to_series(values: pa.Array | pa.ChunkedArray, like: pd.Series) -> pd.Series:
    """Convert Arrow data back to a Series with ``like``'s index, name and (string) dtype."""
    import pandas as pd

    out = values.to_pandas(types_mapper=_bool_mapping)
    # Assign (not pass) the index: passing it to pd.Series would re-align by label and lose values.
    out.index = like.index
    out.name = like.name
    if isinstance(like.dtype, pd.StringDtype) and is_stringlike(values.type):
        out = out.astype(like.dtype)
    return out


def frame_to_table(frame: pd.DataFrame) -> pa.Table:
    """Convert a DataFrame to an Arrow table (index dropped), turning unconvertible objects into strings."""
    columns = {str(name): series_to_arrow(frame[name]) for name in frame.columns}
    if not columns:
        return pa.table({})
    return pa.table(columns)


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """Convert an Arrow table to pandas; booleans with nulls become the nullable ``boolean`` dtype."""
    return table.to_pandas(types_mapper=_bool_mapping)


def blank_mask(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """True where a value is null, or a string that is empty or whitespace-only."""
    nulls = pc.is_null(values, nan_is_null=pa.types.is_floating(values.type))
    if not is_stringlike(values.type):
        return nulls
    # utf8_is_space is false for "", so test the length too; fill_null keeps the mask null-free.
    empty = pc.equal(pc.binary_length(values), 0)
    space = pc.utf8_is_space(values)
    return pc.fill_null(pc.or_(nulls, pc.or_(empty, space)), True)


def first_rows(mask: pa.Array | pa.ChunkedArray, limit: int, row_offset: int) -> tuple[int, ...]:
    """1-based data row numbers (header = row 0) of the first ``limit`` true values of ``mask``."""
    if limit <= 0:
        return ()
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    idx = pc.indices_nonzero(pc.fill_null(mask, False))
    return tuple(int(i) + 1 + row_offset for i in idx.slice(0, limit).to_pylist())


def string_offsets(chunk: pa.Array) -> np.ndarray:
    """The offsets of a string/binary array (int32 or int64, ``len + 1`` values, slice offset applied)."""
    large = pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type)
    width, dtype = (8, np.int64) if large else (4, np.int32)
    buffer = chunk.buffers()[1]
    if buffer is None:
        return np.zeros(len(chunk) + 1, dtype)
    return np.frombuffer(buffer, dtype=dtype, count=len(chunk) + 1, offset=chunk.offset * width)


def value_bytes(chunk: pa.Array) -> np.ndarray:
    """The bytes of every value of a string/binary array, back to back (no copy)."""
    data = chunk.buffers()[2]
    if data is None or len(chunk) == 0:
        return np.zeros(0, np.uint8)
    offsets = string_offsets(chunk)
    return np.frombuffer(data, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
