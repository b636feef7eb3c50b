"""A GX expectation that parses timestamps with pipekit.core's own parser (imported only when GX runs).

A regex can say a value *looks* like ISO-8601, not that it exists ("2026-02-30" looks fine); running the
core's ``parse_timestamps`` makes GX and the cleaning step agree on what is unparsable.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial


class ColumnValuesArePipekitTimestamps(ColumnMapMetricProvider):
    """Row condition: the value parses with ``pipekit.core.parse_timestamps`` (nulls are skipped by GX)."""

    condition_metric_name = "column_values.pipekit_timestamp"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        from pipekit.core import parse_timestamps

        parsed = parse_timestamps(column.astype("string"))
        return pd.Series(parsed.is_valid().to_numpy(zero_copy_only=False), index=column.index)


class ExpectColumnValuesToBePipekitTimestamps(ColumnMapExpectation):
    """Expect column values to be timestamps pipekit.core can parse (ISO-8601; naive = UTC)."""

    map_metric = "column_values.pipekit_timestamp"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)
