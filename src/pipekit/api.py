"""The notebook/file API: one call to clean a DataFrame, and file-level validate and PII scan.

``clean`` runs the whole in-memory pipeline (the same core rules the streaming engine runs per batch);
``validate_file`` and ``scan_file`` stream a CSV (or Parquet, for scanning) in bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import pandas as pd
import pyarrow as pa

from pipekit.core import (
    CleaningConfig,
    CleanReport,
    MaskingPolicy,
    PiiReport,
    ValidationReport,
    clean_dataframe,
    scan_pii,
    validate,
)
from pipekit.errors import InputError
from pipekit.io._read import DEFAULT_MAX_ROW_BYTES, check_input
from pipekit.io.engine import DEFAULT_BATCH_ROWS, CleanFileReport, clean_file, iter_batches, read_header

__all__ = ["CleanFileReport", "clean", "clean_file", "scan_file", "validate_file"]


def clean(
    customers: pd.DataFrame,
    *,
    config: CleaningConfig | None = None,
    policy: MaskingPolicy | str | os.PathLike[str] | None = None,
    required: Sequence[str] | None = None,
    dedup_keys: Sequence[str] | None = None,
    now: datetime | None = None,
    key: bytes | None = None,
) -> tuple[pd.DataFrame, CleanReport]:
    """Clean a DataFrame in one call: returns (cleaned frame, report with counts per rule).

    ``policy`` (MaskingPolicy or YAML/JSON file), ``required`` and ``dedup_keys`` override ``config``;
    ``now`` decides which timestamps are in the future (default: the current time, UTC).
    """
    config = config or CleaningConfig()
    if policy is not None:
        config = replace(
            config, policy=policy if isinstance(policy, MaskingPolicy) else MaskingPolicy.from_file(policy)
        )
    if required is not None:
        config = replace(config, required=tuple(required))
    if dedup_keys is not None:
        config = replace(config, dedup_keys=tuple(dedup_keys) or None)
    return clean_dataframe(customers, config, now=now, key=key)


def validate_file(
    path: str | os.PathLike[str],
    *,
    config: CleaningConfig | None = None,
    encoding: str = "utf-8",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
) -> ValidationReport:
    """Validate a CSV file in batches; never raises for data problems (missing columns are in the report).

    Unreadable input (a row longer than ``max_row_bytes``, bad bytes, a malformed row) is an InputError."""
    config = config or CleaningConfig()
    email_column, timestamp_column = config.email_column, config.timestamp_column
    report: ValidationReport | None = None
    rows = 0
    for batch in iter_batches(path, encoding=encoding, batch_rows=batch_rows, max_row_bytes=max_row_bytes):
        part = validate(batch, config.required, row_offset=rows,
                        email_column=email_column, timestamp_column=timestamp_column)
        rows += batch.num_rows
        report = part if report is None else report.merge(part)
    if report is None:
        columns = read_header(Path(path), encoding, max_row_bytes=max_row_bytes)
        report = validate(
            pa.table({c: pa.array([], pa.string()) for c in columns}), config.required,
            email_column=email_column, timestamp_column=timestamp_column,
        )
    return report


def scan_file(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    sample: int | None = None,
    encoding: str = "utf-8",
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
) -> PiiReport:
    """Scan a CSV or Parquet file for PII in batches; ``sample`` limits the scan to the first N rows."""
    src = Path(path)
    check_input(src)  # before anything opens it: a FIFO would block the Parquet sniff below
    batches = (
        _parquet_batches(src)
        if _is_parquet(src)
        else iter_batches(src, encoding=encoding, max_row_bytes=max_row_bytes)
    )
    findings: dict[str, dict[str, int]] = {}
    rows = 0
    for batch in batches:
        if sample is not None and rows >= sample:
            break
        if sample is not None:
            batch = batch.slice(0, sample - rows)
        part = scan_pii(batch, columns)
        rows += part.rows_scanned
        for column, entities in part.findings.items():
            into = findings.setdefault(column, {})
            for entity, n in entities.items():
                into[entity] = into.get(entity, 0) + n
    frozen = {c: MappingProxyType(e) for c, e in findings.items()}
    return PiiReport(findings=MappingProxyType(frozen), rows_scanned=rows)


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _parquet_batches(path: Path) -> Iterator[pa.Table]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: cannot read as Parquet: {exc}", hint="check the file is complete") from exc
    for batch in parquet.iter_batches(batch_size=DEFAULT_BATCH_ROWS):
        yield pa.Table.from_batches([batch])
