"""Fixtures for the offline-twin tests: the shared session twin with the ETL stack provisioned."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _etl_twin import EtlTwin, apply_env, ensure_stack, get_server


@pytest.fixture(scope="session")
def twin_server(tmp_path_factory: pytest.TempPathFactory):
    """The session's twin server (shared with tests/aws)."""
    return get_server(tmp_path_factory.getbasetemp() / "etl-twin")


@pytest.fixture()
def etl_twin(twin_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[EtlTwin]:
    """The twin with the ETL stack provisioned and AWS_* env pointing at it for this test."""
    twin = EtlTwin(twin_server, ensure_stack(twin_server))
    apply_env(monkeypatch, twin)
    yield twin
