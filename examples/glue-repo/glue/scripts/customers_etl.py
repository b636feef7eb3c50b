"""AWS Glue job: mask AdventureWorks customers (FirstName -> "hu25", email/phone/passwords masked, other
detected PII masked) and write them as snappy Parquet.

Job arguments: --JOB_NAME NAME --source_path s3://.../customers_csv/ --target_path s3://.../customers_parquet/
               [--policy s3://.../policy.yaml] [--TempDir s3://.../temp-dir/] [--detect_pii true|false]
               [--pii_sample 1000] [--multiline false] [--job-bookmark-option job-bookmark-enable|pause|disable]
               [--ingest_date YYYY-MM-DD] [--clean none|full]

``--clean full`` runs pipekit's whole customer cleaning on the input before writing (``pipekit clean``'s rules
on Spark: drop rows missing id/name/email/timestamp, trim, Title Case names, lower-case emails, drop duplicates
keeping the first, mask per ``--policy`` (default: ``pipekit clean``'s policy), add ``is_future``); the
default ``--clean none`` only masks (FirstName -> "hu25" and so on), as before.

Glue 5.0 (Spark 3.5, Python 3.11) gets pipekit from ``--extra-py-files s3://BUCKET/scripts/pipekit.zip``.
Locally: ``python adapters/glue/customers_etl.py --JOB_NAME local --source_path in.csv --target_path out/``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from pipekit.spark.job import main as run_job


def main(argv: Sequence[str] | None = None, *, spark: Any | None = None) -> int:
    """Parse the job arguments, run pipekit's customers ETL, return the exit code."""
    return run_job(sys.argv[1:] if argv is None else argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
