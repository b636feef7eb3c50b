"""pipekit on Spark: the masking policy (Spark SQL, keyed hashes in an Arrow UDF) and the customers ETL.

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
    "policy_select_sql": "_sql",
    "rule_sql": "_sql",
}


def __getattr__(name: str) -> Any:
    """Load the public names lazily, so ``import pipekit.spark`` stays cheap."""
    if name not in _HOME:
        raise AttributeError(f"module 'pipekit.spark' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"pipekit.spark.{_HOME[name]}"), name)
