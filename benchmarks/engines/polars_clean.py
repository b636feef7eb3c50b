"""The cleaning pipeline in Polars: lazy scan, streaming engine, CSV and Parquet sinks."""

from __future__ import annotations

import polars as pl
from _common import EMAIL_MASK_PATTERN, REQUIRED, parse_args, sink_both

# Polars' \s is Unicode-aware; naive timestamps are UTC, as in pipekit.
_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d")


def main() -> None:
    """Clean one CSV file with Polars."""
    src, out, now = parse_args(__doc__ or "")
    lf = pl.scan_csv(src, infer_schema=False, empty_string_is_null=False)
    columns = lf.collect_schema().names()
    lf = lf.with_columns(pl.col(c).str.strip_chars() for c in columns)
    lf = lf.filter(pl.all_horizontal(pl.col(c).is_not_null() & (pl.col(c) != "") for c in REQUIRED))
    lf = lf.with_columns(
        pl.col("name").str.replace_all(r"\s+", " ").str.to_titlecase(),
        pl.col("email").str.to_lowercase(),
    )
    lf = lf.unique(maintain_order=True, keep="first")
    ts = pl.col("timestamp")
    parsed = pl.coalesce(
        ts.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False) for f in _FORMATS
    )
    lf = lf.with_columns(
        pl.col("email").str.replace(EMAIL_MASK_PATTERN, "${1}***${2}"),
        (parsed > pl.lit(now)).alias("is_future"),
    )
    sink_both(lf, out)


if __name__ == "__main__":
    main()
