"""The whole cleaning pipeline, as two Arrow batch kernels plus an in-memory pandas driver.

Order: validate -> drop rows with null/blank required values -> normalise (trim every text column,
Title Case names, lower-case emails) -> drop duplicates (on normalised, pre-mask values, so masking
cannot merge distinct people) -> mask per policy -> flag future timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipekit.core._arrow import frame_to_table, table_to_frame
from pipekit.core.masking import CUSTOMER_POLICY, MaskingPolicy, mask_table
from pipekit.core.normalize import (
    CONTROL_CHAR_MODES,
    DEFAULT_REQUIRED,
    apply_control_chars,
    drop_duplicates_table,
    emails_kernel,
    names_kernel,
    required_mask,
    trim_kernel,
)
from pipekit.core.timestamps import future_flags, utc_now
from pipekit.core.validation import ValidationReport, validate
from pipekit.errors import ConfigError, ValidationError

if TYPE_CHECKING:  # pandas loads only where a DataFrame is used (start-up: ~0.15 s)
    import pandas as pd


@dataclass(frozen=True)
class CleaningConfig:
    """Which columns the rules apply to, how duplicates are keyed and which masking policy to use."""

    required: tuple[str, ...] = DEFAULT_REQUIRED
    dedup_keys: tuple[str, ...] | None = None  # None = exact duplicate rows
    name_column: str = "name"
    email_column: str = "email"
    timestamp_column: str = "timestamp"
    policy: MaskingPolicy = CUSTOMER_POLICY
    flag_column: str = "is_future"
    #: CSV outputs prefix formula-like text with ``'`` (``pipekit.core.formulas``); Parquet and the
    #: in-memory results always keep the true values, so only CSV writers read this.
    formula_guard: bool = True
    #: Control characters other than tab/LF/CR in values (``pipekit.core.normalize.CONTROL_CHARS``):
    #: "strip" removes them (counted as ``control_chars``), "reject" raises ControlCharacterError,
    #: "keep" leaves them (still counted).
    control_chars: str = "strip"

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", tuple(self.required))
        if self.control_chars not in CONTROL_CHAR_MODES:
            raise ConfigError(
                f"control_chars must be one of {', '.join(CONTROL_CHAR_MODES)}, got {self.control_chars!r}"
            )
        if not isinstance(self.formula_guard, bool):
            raise ConfigError(f"formula_guard must be True or False, got {self.formula_guard!r}")
        if self.dedup_keys is not None:
            if not self.dedup_keys:
                raise ConfigError(
                    "dedup_keys is empty", hint="give at least one column, or None for exact rows"
                )
            object.__setattr__(self, "dedup_keys", tuple(self.dedup_keys))


@dataclass
class CleanReport:
    """What the cleaning did: rows in and out, counts per rule, and the validation report."""

    rows_in: int
    rows_out: int
    counts: dict[str, int]
    validation: ValidationReport

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "counts": dict(self.counts),
            "validation": self.validation.to_dict(),
        }


def normalize_batch(batch: pa.Table, config: CleaningConfig) -> tuple[pa.Table, dict[str, int]]:
    """Strip (or reject) control characters, drop rows with null/blank required values, trim text,
    Title Case names, lower-case emails.
    """
    table, blank, counts = normalize_rows(batch, config)
    if blank is not None and counts["dropped_null"]:
        table = table.filter(pc.invert(blank))
    return table, counts


def normalize_rows(
    batch: pa.Table, config: CleaningConfig
) -> tuple[pa.Table, pa.Array | pa.ChunkedArray | None, dict[str, int]]:
    """``normalize_batch`` without the drop: (every row normalised, True where a required value is null
    or blank - None when the table has no required column -, counts).

    For a caller that drops rows for other reasons too (duplicates) and wants one copy, not two.
    """
    # Control characters first, so a value that is only "\x00 " counts as blank and trimming sees the rest.
    batch, control = apply_control_chars(batch, config.control_chars)
    # Trimming first is equivalent (blank == empty after trim) and lets the null test reuse the work.
    columns = [trim_kernel(column) for column in batch.columns]
    table = pa.Table.from_arrays(columns, names=batch.column_names)
    blank = required_mask(table, config.required, trimmed=True)
    dropped = int(pc.sum(blank).as_py() or 0) if blank is not None else 0
    names = table.column_names
    # Blank rows are normalised too (a null stays null, "" stays ""): cheaper than copying the table.
    if config.name_column in names:
        i = names.index(config.name_column)
        values = names_kernel(table.column(i), trimmed=True)
        table = table.set_column(i, pa.field(config.name_column, values.type), values)
    if config.email_column in names:
        i = names.index(config.email_column)
        values = emails_kernel(table.column(i), trimmed=True)
        table = table.set_column(i, pa.field(config.email_column, values.type), values)
    return table, blank, {"dropped_null": dropped, "control_chars": control}


def dedup_batch(batch: pa.Table, config: CleaningConfig) -> tuple[pa.Table, dict[str, int]]:
    """Drop duplicates within one table (exact rows or ``config.dedup_keys``), keeping first occurrences."""
    table, dropped = drop_duplicates_table(batch, config.dedup_keys)
    return table, {"dropped_duplicate": dropped}


def finalize_batch(
    batch: pa.Table,
    config: CleaningConfig,
    *,
    now: datetime,
    key: bytes | None = None,
    parsed_timestamps: pa.Array | None = None,
) -> tuple[pa.Table, dict[str, int]]:
    """Mask per policy and append the future-timestamp flag; counts masked.<col>, future, timestamp_unparsable.

    ``parsed_timestamps``: ``parse_timestamps`` of the batch's timestamp column, when already done.
    """
    table, masked = mask_table(batch, config.policy, key=key)
    counts = {f"masked.{name}": n for name, n in masked.items()}
    if config.timestamp_column in table.column_names:
        flags, n_future, n_unparsable = future_flags(
            table.column(config.timestamp_column), now=utc_now(now), parsed=parsed_timestamps
        )
    else:
        flags, n_future, n_unparsable = pa.nulls(table.num_rows, pa.bool_()), 0, 0
    if config.flag_column in table.column_names:
        table = table.drop_columns([config.flag_column])
    table = table.append_column(pa.field(config.flag_column, pa.bool_()), flags)
    counts["future"] = n_future
    counts["timestamp_unparsable"] = n_unparsable
    return table, counts


def clean_table(
    table: pa.Table,
    config: CleaningConfig | None = None,
    *,
    now: datetime | None = None,
    key: bytes | None = None,
) -> tuple[pa.Table, CleanReport]:
    """Run the whole pipeline on an in-memory Arrow table; missing required columns raise ValidationError."""
    config = config or CleaningConfig()
    report = validate(
        table, config.required, email_column=config.email_column, timestamp_column=config.timestamp_column
    )
    if not report.ok:
        raise ValidationError(
            f"missing required column(s): {', '.join(report.missing_columns)}",
            report=report,
            hint=f"columns present: {', '.join(table.column_names) or '(none)'}",
        )
    counts: dict[str, int] = {}
    out, step = normalize_batch(table, config)
    counts.update(step)
    out, step = dedup_batch(out, config)
    counts.update(step)
    out, step = finalize_batch(out, config, now=utc_now(now), key=key)
    counts.update(step)
    return out, CleanReport(rows_in=table.num_rows, rows_out=out.num_rows, counts=counts, validation=report)


def clean_dataframe(
    customers: pd.DataFrame,
    config: CleaningConfig | None = None,
    *,
    now: datetime | None = None,
    key: bytes | None = None,
) -> tuple[pd.DataFrame, CleanReport]:
    """Run the whole pipeline on a DataFrame; return (cleaned frame with a fresh index, report)."""
    out, report = clean_table(frame_to_table(customers), config, now=now, key=key)
    return table_to_frame(out), report
