"""Fixtures for pipekit.ml: the Kaggle API stand-in, an isolated kaggle config, Airflow home.

The kaggle client's TEST environment addresses http://localhost:7777. The stand-in listens on a port the OS
picks and is reached as an HTTP proxy (the HTTP_PROXY setting every client honours), so no test needs port
7777 to be free and two runs of the suite can share a machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipekit.ml._standin import DEFAULT_KEY, DEFAULT_USERNAME, KaggleStandIn, StandInStats

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "adapters" / "airflow" / "dags" / "iris_training.py"
RUNNER = Path(__file__).resolve().parent / "run_dag.py"
KAGGLE_VARS = (
    "KAGGLE_USERNAME",
    "KAGGLE_KEY",
    "KAGGLE_API_TOKEN",
    "KAGGLE_CONFIG_DIR",
    "KAGGLE_API_ENVIRONMENT",
)
# Proxy settings a developer's shell may carry; the tests set their own.
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")


def proxy_env(standin: KaggleStandIn) -> dict[str, str]:
    """The environment that sends the kaggle client's http://localhost:7777 traffic to ``standin``."""
    return {"HTTP_PROXY": standin.proxy_url, "http_proxy": standin.proxy_url}


@pytest.fixture(scope="session")
def standin_server() -> Iterator[KaggleStandIn]:
    """One stand-in for the session, on a free port (see the module docstring)."""
    with KaggleStandIn(port=0) as server:
        yield server


@pytest.fixture
def standin(standin_server: KaggleStandIn) -> KaggleStandIn:
    """The session stand-in with fresh request counters."""
    standin_server.stats = StandInStats()
    return standin_server


@pytest.fixture
def kaggle_env(standin_server: KaggleStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ambient Kaggle credentials; the client talks to the stand-in; returns the empty kaggle config dir."""
    for name in KAGGLE_VARS + PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in proxy_env(standin_server).items():
        monkeypatch.setenv(name, value)
    config_dir = tmp_path / "kaggle-config"
    config_dir.mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    # The client also looks for ~/.kaggle/access_token; an empty HOME keeps the developer's real one out.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return config_dir


@pytest.fixture
def standin_credentials(kaggle_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials the stand-in accepts, in the environment variables the kaggle client reads."""
    monkeypatch.setenv("KAGGLE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", DEFAULT_KEY)


@dataclass
class AirflowHome:
    """A temporary AIRFLOW_HOME with a migrated SQLite DB and a dags folder holding only iris_training.py."""

    home: Path
    dags: Path
    env: dict[str, str]

    def run(
        self, conf: dict[str, object] | None = None, extra_env: dict[str, str] | None = None
    ) -> tuple[dict, str]:
        """Run the DAG once with dag.test() in a fresh process; return its summary and full output."""
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run(
            [sys.executable, str(RUNNER), str(self.dags / DAG_FILE.name), "--conf", json.dumps(conf or {})],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise AssertionError(f"DAG runner exited {proc.returncode}:\n{output[-4000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1]), output


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, standin_server: KaggleStandIn) -> AirflowHome:
    """Temporary AIRFLOW_HOME + SQLite, migrated once per session; Airflow runs only in child processes."""
    root = tmp_path_factory.mktemp("ml-airflow")
    home, dags = root / "airflow", root / "dags"
    dags.mkdir()
    shutil.copy2(DAG_FILE, dags / DAG_FILE.name)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "KAGGLE_", "PIPEKIT_ML_")) and k not in PROXY_VARS
    }
    env.update(proxy_env(standin_server))
    kaggle_dir = root / "kaggle-config"
    kaggle_dir.mkdir()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "KAGGLE_API_ENVIRONMENT": "TEST",
            "KAGGLE_CONFIG_DIR": str(kaggle_dir),
            "HOME": str(root / "home"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
        }
    )
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"airflow db migrate failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return AirflowHome(home, dags, env)
