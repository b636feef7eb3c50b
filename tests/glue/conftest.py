"""Shared fixtures for the Glue job tests: one local SparkSession per test session."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "adapters" / "glue" / "customers_etl.py"


def _have_spark() -> bool:
    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A quiet local[2] SparkSession (UI off, 2 shuffle partitions), shared by every Spark test."""
    if not _have_spark():
        pytest.skip("pyspark and Java are needed for the Spark tests")
    from pipekit.spark import local_spark

    session = local_spark(2, app_name="pipekit-tests", memory="1g")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def entrypoint() -> ModuleType:
    """The real Glue entrypoint module, loaded from adapters/glue/customers_etl.py."""
    spec = importlib.util.spec_from_file_location("customers_etl", ENTRYPOINT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
