"""`pipekit clean --engine spark` as a user runs it: a subprocess, local Spark, the file engine's outputs."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipekit.cli import app
from pipekit.sample import write_customers_csv

NOW = "2026-01-01T00:00:00Z"
PIPEKIT = Path(sys.executable).with_name("pipekit")


def _have_spark() -> bool:
    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


@pytest.mark.spark
@pytest.mark.skipif(not _have_spark(), reason="pyspark and Java are needed for the Spark tests")
def test_engine_spark_writes_what_the_file_engine_writes(tmp_path: Path) -> None:
    src = write_customers_csv(tmp_path / "customers.csv", 3000, seed=12, layout="narrow")
    runs = {}
    for engine in ("file", "spark"):
        extra = ["--engine", "spark", "--master", "local[2]"] if engine == "spark" else []
        done = subprocess.run(
            [str(PIPEKIT), "clean", str(src), "--out", str(tmp_path / engine), "--now", NOW, "--json", *extra],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        runs[engine] = json.loads(done.stdout)
    file_run, spark_run = runs["file"], runs["spark"]
    assert spark_run["settings"]["engine"] == "spark" and spark_run["settings"]["master"] == "local[2]"
    for field in ("rows_read", "rows_written", "counts", "validation", "csv_formula_guard", "input"):
        assert spark_run[field] == file_run[field], field
    for name in ("customers_cleaned.csv", "customers_cleaned.parquet", "customers_report.json"):
        assert (tmp_path / "spark" / name).is_file()
    assert (tmp_path / "spark/customers_cleaned.csv").read_bytes() == (
        tmp_path / "file/customers_cleaned.csv"
    ).read_bytes()
    got = pq.read_table(tmp_path / "spark/customers_cleaned.parquet")
    assert got.to_pylist() == pq.read_table(tmp_path / "file/customers_cleaned.parquet").to_pylist()


@pytest.mark.spark
@pytest.mark.skipif(not _have_spark(), reason="pyspark and Java are needed for the Spark tests")
def test_engine_spark_quiet_prints_nothing_not_even_the_jvm_banner(tmp_path: Path) -> None:
    """--quiet: no Spark start-up banner (loopback address, "Setting default log level", native-hadoop)."""
    src = write_customers_csv(tmp_path / "customers.csv", 1000, seed=3, layout="narrow")
    unset = ("PIPEKIT_SPARK_LOG_LEVEL", "LOG4J_CONFIGURATION_FILE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [str(PIPEKIT), "clean", str(src), "--out", str(tmp_path / "out"), "--engine", "spark",
         "--master", "local[1]", "--now", NOW, "--quiet"],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert (tmp_path / "out/customers_cleaned.csv").is_file()


def test_master_without_engine_spark_is_a_usage_error(tmp_path: Path) -> None:
    src = write_customers_csv(tmp_path / "c.csv", 10, seed=1)
    result = CliRunner().invoke(
        app, ["clean", str(src), "--out", str(tmp_path / "o"), "--master", "local[2]"]
    )
    assert result.exit_code == 2
    assert "--master applies only to --engine spark" in result.output
    assert not (tmp_path / "o").exists()


def test_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    src = write_customers_csv(tmp_path / "c.csv", 10, seed=1)
    result = CliRunner().invoke(app, ["clean", str(src), "--out", str(tmp_path / "o"), "--engine", "dask"])
    assert result.exit_code == 2 and "--engine must be 'file' or 'spark'" in result.output


def test_clean_does_not_import_pyspark_for_the_file_engine(tmp_path: Path) -> None:
    src = write_customers_csv(tmp_path / "c.csv", 10, seed=1)
    code = (
        "import sys; from typer.testing import CliRunner; from pipekit.cli import app; "
        f"r = CliRunner().invoke(app, ['clean', {str(src)!r}, '--out', {str(tmp_path / 'o')!r}, '-q']); "
        "assert r.exit_code == 0, r.output; print(sorted(m for m in sys.modules if m.startswith(('pyspark', 'pipekit.spark'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
