"""pipekit: customer-data cleaning and masking, AWS ETL with an offline twin, Glue CI/CD, Airflow DAGs.

The public surface for notebooks is re-exported here::

    import pipekit
    cleaned, report = pipekit.clean(df, now=...)          # whole pipeline on a DataFrame
    pipekit.clean_file("customers.csv", "out/")           # streaming, CSV + Parquet + JSON report

``import pipekit`` loads only pandas, pyarrow and numpy; the file API loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipekit.core import (
    CUSTOMER_POLICY,
    DEFAULT_REQUIRED,
    GLUE_CUSTOMER_POLICY,
    CleaningConfig,
    CleanReport,
    ColumnRule,
    MaskingPolicy,
    PiiReport,
    Problem,
    ValidationReport,
    apply_policy,
    clean_dataframe,
    drop_duplicates,
    drop_nulls,
    finalize_batch,
    flag_future,
    mask_email,
    normalize_batch,
    normalize_emails,
    normalize_names,
    parse_timestamps,
    scan_pii,
    title_case_name,
    validate,
)
from pipekit.errors import (
    AwsError,
    ConfigError,
    DatasetError,
    DeployError,
    InputError,
    JobRunError,
    MissingExtraError,
    ModelError,
    PipekitError,
    StorageError,
    ThrottledError,
    ValidationError,
)

if TYPE_CHECKING:
    from pipekit.api import CleanFileReport, clean, clean_file, scan_file, validate_file

__version__ = "0.1.0"

# Loaded on first use so `import pipekit` stays light (no CSV/Parquet readers, no threads).
_LAZY = {"clean": "pipekit.api", "clean_file": "pipekit.api", "validate_file": "pipekit.api",
         "scan_file": "pipekit.api", "CleanFileReport": "pipekit.api"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "sample":
        import importlib

        return importlib.import_module("pipekit.sample")
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipekit' has no attribute {name!r}")


__all__ = [
    "CUSTOMER_POLICY",
    "DEFAULT_REQUIRED",
    "GLUE_CUSTOMER_POLICY",
    "AwsError",
    "CleanFileReport",
    "CleanReport",
    "CleaningConfig",
    "ColumnRule",
    "ConfigError",
    "DatasetError",
    "DeployError",
    "InputError",
    "JobRunError",
    "MaskingPolicy",
    "MissingExtraError",
    "ModelError",
    "PiiReport",
    "PipekitError",
    "Problem",
    "StorageError",
    "ThrottledError",
    "ValidationError",
    "ValidationReport",
    "__version__",
    "apply_policy",
    "clean",
    "clean_dataframe",
    "clean_file",
    "drop_duplicates",
    "drop_nulls",
    "finalize_batch",
    "flag_future",
    "mask_email",
    "normalize_batch",
    "normalize_emails",
    "normalize_names",
    "parse_timestamps",
    "scan_file",
    "scan_pii",
    "title_case_name",
    "validate",
    "validate_file",
]
