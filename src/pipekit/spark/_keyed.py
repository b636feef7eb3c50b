"""Keyed masks on Spark: the core's Arrow kernel in a vectorised UDF, the key sent in a broadcast.

Spark SQL built-ins can compute HMAC-SHA256 (``sha2`` over the RFC 2104 pads), but the pads are then
literals of the query plan: ``explain()``, the Spark UI's SQL tab and the event log print them, and the
key is one XOR away. Here the plan holds only the UDF's name and its input column. The key is a
broadcast variable: its bytes travel through Spark's block manager, never through the plan, the
configuration or the event log, and each Python worker reads them when it runs the kernel, which is
:func:`pipekit.core.masking.mask_column`, the one the file engine runs, so both engines agree byte for byte.

Only pandas and pyarrow are imported here (Glue ships both); pyspark is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from pipekit.core.masking import ColumnRule, check_key, mask_column


def broadcast_key(spark: Any, key: bytes) -> Any:
    """Send ``key`` to the executors as a broadcast variable (a key the core refuses is never sent)."""
    return spark.sparkContext.broadcast(check_key(key))


def mask_series(values: pd.Series, rule: ColumnRule, key: bytes) -> pd.Series:
    """One Arrow batch of a keyed mask, as pyspark hands it to a pandas UDF: the core kernel on its text."""
    masked, _ = mask_column(pa.array(values, type=pa.string(), from_pandas=True), rule, key=key)
    return masked.to_pandas()


def keyed_mask_column(column: Any, rule: ColumnRule, key_ref: Any) -> Any:
    """``column`` masked by the keyed ``rule`` (hash, or email hash) with the key in broadcast ``key_ref``."""
    from pyspark.sql.functions import pandas_udf

    # The plan shows this function's name and its input, ``pipekit_keyed_mask(Phone#20)``. Only ``rule``
    # and the broadcast's id are pickled into the UDF; the key is read on the executor.
    def pipekit_keyed_mask(values: pd.Series) -> pd.Series:
        return mask_series(values, rule, key_ref.value)

    # pyspark reads the UDF type (Series -> Series) from the annotations; its stubs only know the
    # deprecated functionType= form, which would warn at run time.
    udf = pandas_udf(pipekit_keyed_mask, "string")  # type: ignore[call-overload]
    return udf(column.cast("string"))
