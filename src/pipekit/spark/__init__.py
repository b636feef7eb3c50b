"""pipekit on Spark: the masking policy (Spark SQL, keyed hashes in an Arrow UDF), the customers ETL and the
whole customer cleaning (``clean_file_spark``: the core's kernels in ``mapInArrow``).

Importing this package does not import pyspark; the functions do, and raise MissingExtraError
(``pip install "pipekit[spark]"``) when it is absent. On AWS Glue, pyspark is the cluster's own.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PII_THRESHOLD",
    "REQUIRED_COLUMNS",
    "CsvOptions",
    "EtlStats",
    "MaskCounts",
    "apply_policy_spark",
    "check_columns",
    "clean_file_spark",
    "clean_frame_spark",
    "detect_pii_columns",
    "local_spark",
    "policy_select_sql",
    "read_customers_csv",
    "rule_sql",
    "run_customers_etl",
]

_HOME = {
    "PII_THRESHOLD": "masking",
    "MaskCounts": "masking",
    "apply_policy_spark": "masking",
    "detect_pii_columns": "masking",
    "REQUIRED_COLUMNS": "etl",
    "CsvOptions": "etl",
    "EtlStats": "etl",
    "check_columns": "etl",
    "local_spark": "etl",
    "read_customers_csv": "etl",
    "run_customers_etl": "etl",
    "clean_file_spark": "clean",
    "clean_frame_spark": "clean",
    "policy_select_sql": "_sql",
    "rule_sql": "_sql",
}


def __getattr__(name: str) -> Any:
    """Load the public names lazily, so ``import pipekit.spark`` stays cheap."""
    if name not in _HOME:
        raise AttributeError(f"module 'pipekit.spark' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"pipekit.spark.{_HOME[name]}"), name)
