"""Shared argument parsing for the benchmark's engine scripts (each runs as its own process)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The pipeline every engine runs (same rules as pipekit.core; see docs/perf/clean.md).
REQUIRED = ("id", "name", "email", "timestamp")
#: Email partial mask: keep the first character of the local part, then "***", then "@domain".
EMAIL_MASK_PATTERN = r"^([^@]?).*?(@[^@]*)?$"


def parse_args(description: str) -> tuple[Path, Path, datetime]:
    """Parse ``IN.csv OUT_DIR [--now ISO]`` and return (input, csv/parquet output stem, now as aware UTC)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("input", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--now", default="2026-01-01T00:00:00+00:00")
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now)
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    return args.input, args.out_dir / f"{args.input.stem}_cleaned", now


def sink_both(lf: Any, out: Path) -> None:
    """Write a Polars LazyFrame to ``out.parquet`` (snappy) and ``out.csv`` in one streaming query, so the
    CSV is read and cleaned once (polars is imported here: the other engines share this module)."""
    import polars as pl

    pl.collect_all(
        [
            lf.sink_parquet(f"{out}.parquet", compression="snappy", lazy=True),
            lf.sink_csv(f"{out}.csv", lazy=True),
        ],
        engine="streaming",
    )
