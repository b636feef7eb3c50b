"""pipekit: customer-data cleaning and masking, AWS ETL with an offline twin, Glue CI/CD, Airflow DAGs.

The public surface for notebooks is re-exported here; see README.md for a tour.
"""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "AwsError",
    "ConfigError",
    "DatasetError",
    "DeployError",
    "InputError",
    "JobRunError",
    "MissingExtraError",
    "ModelError",
    "PipekitError",
    "StorageError",
    "ThrottledError",
    "ValidationError",
    "__version__",
]
