"""Fixtures for the AWS ETL tests: the shared session twin (see tests/local/_etl_twin.py) and one pipeline run."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load_helper() -> ModuleType:
    """Import tests/local/_etl_twin.py once under a unique name (no sys.path change: other test
    directories import their own ``conftest`` by name), so tests/aws and tests/local share one twin."""
    name = "pipekit_tests_etl_twin"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "local" / "_etl_twin.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_helper = _load_helper()
EtlTwin, apply_env, ensure_stack, get_server = (_helper.EtlTwin, _helper.apply_env, _helper.ensure_stack,
                                                _helper.get_server)


@pytest.fixture(scope="session")
def twin_server(tmp_path_factory: pytest.TempPathFactory):
    """The session's twin server (shared with tests/local)."""
    return get_server(tmp_path_factory.getbasetemp() / "etl-twin")


@pytest.fixture()
def etl_twin(twin_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[EtlTwin]:
    """The twin with the ETL stack provisioned and AWS_* env pointing at it for this test."""
    twin = EtlTwin(twin_server, ensure_stack(twin_server))
    apply_env(monkeypatch, twin)
    yield twin


@dataclass
class PipelineRun:
    """One `etl deploy` + `etl run` + `etl verify` on the twin, shared by the tests that inspect it."""

    twin: EtlTwin
    data: Path
    sha_before: str
    rows: int
    deploy: Any
    report: Any
    verify: Any
    second_ingest: Any


@pytest.fixture(scope="session")
def pipeline_run(twin_server, tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    """Deploy, run and verify the ETL once per session (the Glue job runs on local Spark: ~30-40 s)."""
    from pipekit import etl
    from pipekit.sample import write_adventureworks_csv

    twin = EtlTwin(twin_server, ensure_stack(twin_server))
    rows = 300
    data = write_adventureworks_csv(tmp_path_factory.mktemp("etl") / "customers.csv", rows, seed=11)
    sha_before = etl.fingerprint(data)
    # The env is patched only while the pipeline runs, so other test directories never see it.
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, twin)
        deploy = etl.deploy()
        report = etl.run(data, poll_s=0.5)
        second = etl.ingest(data)
        verify = etl.verify()
    return PipelineRun(twin, data, sha_before, rows, deploy, report, verify, second)
