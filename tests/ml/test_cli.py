"""`pipekit ml download|train|predict` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipekit.cli import app
from pipekit.ml._standin import KaggleStandIn

runner = CliRunner()


def test_download_train_predict(standin: KaggleStandIn, standin_credentials: None, tmp_path: Path) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    result = runner.invoke(app, ["ml", "download", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "downloaded" in result.output and "validated: 150 rows" in result.output
    result = runner.invoke(app, ["ml", "download", "--data-dir", str(data), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["cached"] is True
    assert standin.stats.archive_downloads == 1

    result = runner.invoke(
        app, ["ml", "train", str(data / "Iris.csv"), "--models-dir", str(models), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["metrics"]["accuracy"] > 0.9 and summary["promotion"]["promoted"]
    assert Path(summary["plot"]).is_file() and Path(summary["model"]).is_file()

    result = runner.invoke(app, ["ml", "train", str(data / "Iris.csv"), "--models-dir", str(models)])
    assert result.exit_code == 0, result.output
    assert "hold-out (30 rows): accuracy" in result.output and "already current" in result.output

    out = tmp_path / "pred.csv"
    result = runner.invoke(app, ["ml", "predict", str(models), str(data / "Iris.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[0].endswith(",prediction")
    assert len(out.read_text().splitlines()) == 151


def test_cli_errors_are_messages_not_tracebacks(kaggle_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ml", "download", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "No Kaggle credentials found" in result.output and "Traceback" not in result.output

    result = runner.invoke(app, ["ml", "download", "--data-dir", str(tmp_path / "d"), "--offline-fallback"])
    assert result.exit_code == 0 and "offline fallback used" in result.output

    bad = tmp_path / "bad.csv"
    bad.write_text("Id,SepalLengthCm\n1,5.1\n")
    result = runner.invoke(app, ["ml", "train", str(bad), "--models-dir", str(tmp_path / "m")])
    assert result.exit_code == 1 and "failed validation" in result.output

    result = runner.invoke(app, ["ml", "predict", str(tmp_path / "nope"), str(bad)])
    assert result.exit_code == 2 and "no such file" in result.output
