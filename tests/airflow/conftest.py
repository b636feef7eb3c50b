"""Real-Airflow test harness: a temporary AIRFLOW_HOME with a migrated SQLite metadata DB.

Generic on purpose (other DAG tests reuse it): the DB is migrated once per session into a template
home, and each test gets a fresh copy, so tests never share state and never touch ~/airflow.
Airflow runs in subprocesses (``AirflowHome.run`` / ``AirflowHome.dag_test``) so its global config
and ORM setup cannot leak between tests or into the pytest process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow", reason='needs pipekit[airflow]: pip install "pipekit[airflow]"')

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("_dag_runner.py")


def airflow_env(home: Path, dags_folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for an isolated Airflow: its own home, SQLite DB and DAG folder, no examples, no network."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PIPEKIT_"))}
    base.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "GX_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # The venv's bin first, so `airflow`, `pipekit` and the venv python are the ones used by tasks.
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    base.update(extra or {})
    return base


@dataclass
class AirflowHome:
    """A private Airflow installation state for one test."""

    path: Path
    dags_folder: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Environment to run Airflow (or anything that reads AIRFLOW_HOME) against this home."""
        return airflow_env(self.path, self.dags_folder, self.extra_env)

    def add_dag(self, source: Path) -> Path:
        """Copy a DAG file into this home's DAG folder."""
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(source, self.dags_folder / source.name))

    def run(self, args: Sequence[str], *, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a command (e.g. ``[sys.executable, "-m", "airflow", ...]``) with this home's environment."""
        return subprocess.run(
            list(args), env=self.env, cwd=self.path, capture_output=True, text=True, timeout=timeout, check=check
        )

    def dag_test(self, dag_id: str, conf: Mapping[str, Any] | None = None, *, timeout: float = 300) -> DagTestResult:
        """Run ``dag.test(run_conf=conf)`` for ``dag_id`` from this home's DAG folder in a fresh interpreter."""
        out = self.path / f"dag_test_{dag_id}.json"
        out.unlink(missing_ok=True)
        done = self.run(
            [sys.executable, str(RUNNER), str(self.dags_folder), dag_id, json.dumps(conf or {}), str(out)],
            timeout=timeout,
        )
        if not out.exists():
            raise AssertionError(f"dag.test did not finish (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        data = json.loads(out.read_text())
        return DagTestResult(state=data["state"], tasks=data["tasks"], log=done.stdout + done.stderr)


@dataclass(frozen=True)
class DagTestResult:
    """Outcome of one ``dag.test()`` run: DAG run state, task id -> state, and the combined log."""

    state: str
    tasks: dict[str, str]
    log: str


@pytest.fixture(scope="session")
def airflow_home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIRFLOW_HOME whose SQLite DB is migrated once per session (copied by ``airflow_home``)."""
    home = tmp_path_factory.mktemp("airflow_home_template")
    dags = home / "dags"
    dags.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=airflow_env(home, dags), capture_output=True,
        text=True, timeout=600,
    )
    assert done.returncode == 0, f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return home


@pytest.fixture
def airflow_home(airflow_home_template: Path, tmp_path: Path) -> AirflowHome:
    """A fresh AIRFLOW_HOME with a migrated SQLite DB and an empty DAG folder (add DAGs with ``add_dag``)."""
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copy2(airflow_home_template / "airflow.db", home / "airflow.db")
    if (airflow_home_template / "airflow.cfg").exists():
        shutil.copy2(airflow_home_template / "airflow.cfg", home / "airflow.cfg")
    dags = home / "dags"
    dags.mkdir()
    return AirflowHome(path=home, dags_folder=dags)
