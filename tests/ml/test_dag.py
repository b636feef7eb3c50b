"""The iris_training DAG end to end on real Airflow 3 (dag.test, SQLite), with the real kaggle client."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from pipekit.ml import load_model, read_current, read_manifest
from pipekit.ml._standin import DEFAULT_KEY, DEFAULT_USERNAME, KaggleStandIn
from pipekit.ml.train import rows_by_id

pytestmark = pytest.mark.airflow

ALL_TASKS = ("download", "validate", "train", "evaluate", "promote")


def _conn_env(username: str = DEFAULT_USERNAME, key: str = DEFAULT_KEY) -> dict[str, str]:
    """The Airflow connection kaggle_default, defined the Airflow way: an AIRFLOW_CONN_* variable."""
    return {
        "AIRFLOW_CONN_KAGGLE_DEFAULT": json.dumps(
            {"conn_type": "generic", "login": username, "password": key}
        )
    }


def test_dag_downloads_through_kaggle_client_trains_and_reuses_cache(
    airflow_home, standin: KaggleStandIn
) -> None:
    """First run downloads via the stand-in; second run downloads nothing; the promoted model predicts well."""
    data_dir = airflow_home.dags / "data"
    models_dir = airflow_home.dags / "models"

    summary, output = airflow_home.run(extra_env=_conn_env())
    assert summary["state"] == "success", output[-3000:]
    assert summary["tasks"] == dict.fromkeys(ALL_TASKS, "success") | summary["tasks"]
    assert set(summary["tasks"]) == set(ALL_TASKS)
    assert standin.stats.api_calls == 1 and standin.stats.archive_downloads == 1

    # Default locations: data/ and models/ beside the DAG file.
    manifest = read_manifest(data_dir)
    assert manifest is not None and not manifest.fallback
    assert manifest.source == "kaggle:saurabh00007/iriscsv"
    assert [f.name for f in manifest.files] == ["Iris.csv"]
    assert manifest.credential_source == "explicit (e.g. Airflow connection)"
    assert DEFAULT_KEY not in (data_dir / "manifest.json").read_text()
    assert DEFAULT_KEY not in output  # the key never reaches the task logs

    current = read_current(models_dir)
    assert current is not None and current["previous"] is None
    loaded = load_model(models_dir)
    iris = pd.read_csv(data_dir / "Iris.csv")
    x_test, y_test = rows_by_id(iris, loaded.metadata["test_ids"])
    accuracy = float((loaded.model.predict(x_test) == y_test).mean())
    assert accuracy > 0.9
    assert loaded.metadata["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert (loaded.path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_mtime = (data_dir / "Iris.csv").stat().st_mtime_ns

    # Second run, with NO credentials at all: the checksummed copy is reused, nothing is downloaded.
    time.sleep(0.01)
    summary, output = airflow_home.run()
    assert summary["state"] == "success", output[-3000:]
    assert standin.stats.api_calls == 1 and standin.stats.archive_downloads == 1
    assert "cached=True" in output
    assert (data_dir / "Iris.csv").stat().st_mtime_ns == csv_mtime
    assert read_current(models_dir)["version"] == current["version"]  # same data+config -> same version
    assert len(list((models_dir / "versions").iterdir())) == 1


def test_dag_without_credentials_fails_saying_what_to_set(
    airflow_home, standin: KaggleStandIn, tmp_path: Path
) -> None:
    """No env vars, no kaggle.json, no connection: download fails with the fix; nothing downstream runs."""
    summary, output = airflow_home.run(
        conf={"data_dir": str(tmp_path / "data"), "models_dir": str(tmp_path / "models")}
    )
    assert summary["state"] == "failed"
    assert summary["tasks"]["download"] == "failed"
    assert {summary["tasks"][t] for t in ALL_TASKS[1:]} == {"upstream_failed"}
    assert "No Kaggle credentials found." in output
    assert "KAGGLE_USERNAME and KAGGLE_KEY" in output and "offline_fallback" in output
    assert standin.stats.archive_downloads == 0
    assert not (tmp_path / "models").exists()
    assert not any(p.name != "manifest.json" and p.is_file() for p in (tmp_path / "data").rglob("*"))


def test_dag_offline_fallback_is_opt_in_and_recorded(
    airflow_home, standin: KaggleStandIn, tmp_path: Path
) -> None:
    """With offline_fallback=True and no credentials, the run trains on scikit-learn's Iris and says so."""
    data_dir, models_dir = tmp_path / "data", tmp_path / "models"
    summary, output = airflow_home.run(
        conf={"data_dir": str(data_dir), "models_dir": str(models_dir), "offline_fallback": True}
    )
    assert summary["state"] == "success", output[-3000:]
    manifest = read_manifest(data_dir)
    assert manifest is not None and manifest.fallback
    assert "scikit-learn" in manifest.source
    assert manifest.fallback_reason == "No Kaggle credentials found."
    assert standin.stats.archive_downloads == 0
    loaded = load_model(models_dir)
    assert loaded.metadata["metrics"]["accuracy"] > 0.9


def test_dag_file_imports_nothing_heavy(airflow_home) -> None:
    """Parsing the DAG file must not import kaggle (it authenticates on import), sklearn, pandas or pipekit.ml."""
    import subprocess
    import sys

    code = (
        "import runpy, sys, json; runpy.run_path(sys.argv[1]); "
        "print(json.dumps(sorted(m for m in ('kaggle', 'kagglesdk', 'sklearn', 'pandas', 'pipekit.ml', 'matplotlib') "
        "if m in sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(airflow_home.dags / "iris_training.py")],
        env=airflow_home.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
