"""Fixtures for the offline-twin tests: the shared session twin with the ETL stack provisioned."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def _load_helper() -> ModuleType:
    """Import tests/local/_etl_twin.py once under a unique name (no sys.path change: other test
    directories import their own ``conftest`` by name), so tests/aws and tests/local share one twin."""
    name = "pipekit_tests_etl_twin"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "_etl_twin.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_helper = _load_helper()
EtlTwin, apply_env, ensure_stack, get_server, private_twin = (
    _helper.EtlTwin, _helper.apply_env, _helper.ensure_stack, _helper.get_server, _helper.private_twin)


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


@pytest.fixture()
def private_etl_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EtlTwin]:
    """A twin process of this test's own with the ETL stack provisioned, AWS_* env pointing at it: for
    tests that change the stack (the shared twin holds the session's deployed and run pipeline)."""
    with private_twin(tmp_path / "twin") as twin:
        apply_env(monkeypatch, twin)
        yield twin
