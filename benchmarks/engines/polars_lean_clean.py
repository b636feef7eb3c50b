"""The Polars script a user would write (issue 13's "lean" peer), as the issue spells it.

``scan_csv`` -> ``drop_nulls(required)`` -> ``unique(keep="first", maintain_order=True)`` ->
``to_titlecase``, lowercase + regex mask, one-format ``to_datetime`` -> ``sink_csv`` + ``sink_parquet``
in one ``collect_all(engine="streaming")``. It does less than pipekit on purpose (no trim, no blank
check, duplicates compared before normalising, one timestamp format), so its rows differ from pipekit's:
the benchmark reports by how much.
"""

from __future__ import annotations

import polars as pl
from _common import EMAIL_MASK_PATTERN, REQUIRED, parse_args, sink_both


def main() -> None:
    """Clean one CSV file the lean Polars way."""
    src, out, now = parse_args(__doc__ or "")
    lf = pl.scan_csv(src, infer_schema=False)
    lf = lf.drop_nulls(list(REQUIRED)).unique(keep="first", maintain_order=True)
    lf = lf.with_columns(
        pl.col("name").str.to_titlecase(),
        pl.col("email").str.to_lowercase().str.replace(EMAIL_MASK_PATTERN, "${1}***${2}"),
        (
            pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S", time_zone="UTC", strict=False)
            > pl.lit(now)
        ).alias("is_future"),
    )
    sink_both(lf, out)


if __name__ == "__main__":
    main()
