"""`pipekit clean --control-chars` and `--max-row-bytes` as a user runs them (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

PIPEKIT = Path(sys.executable).parent / "pipekit"
NOW = "2026-01-01T00:00:00Z"


def _clean(src: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PIPEKIT), "clean", str(src), "--out", str(out), "--now", NOW, *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def nuls(tmp_path: Path) -> Path:
    src = tmp_path / "nuls.csv"
    src.write_bytes(b"id,name,email,timestamp\n1,ann,a@x.io,2025-01-01\n2,b\x00ob,b@x.io,2025-01-01\n")
    return src


def test_strip_is_the_default_and_is_counted(nuls: Path, tmp_path: Path) -> None:
    proc = _clean(nuls, tmp_path / "out", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["counts"]["control_chars"] == 1 and report["settings"]["control_chars"] == "strip"
    assert b"\x00" not in Path(report["outputs"]["csv"]).read_bytes()
    names = pq.read_table(report["outputs"]["parquet"]).column("name").to_pylist()
    assert names == ["Ann", "Bob"]


def test_reject_names_row_line_and_column_and_publishes_nothing(nuls: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _clean(nuls, out, "--control-chars", "reject")
    assert proc.returncode == 2
    assert "data row 2 (line 3), column 'name' holds a control character (U+0000)" in proc.stderr
    assert "b\x00ob" not in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("value", ["lots", "-1", "4XB"])
def test_a_bad_size_or_mode_is_a_usage_error(nuls: Path, tmp_path: Path, value: str) -> None:
    proc = _clean(nuls, tmp_path / "out", "--max-row-bytes", value)
    assert proc.returncode == 2 and "--max-row-bytes" in proc.stderr and "Traceback" not in proc.stderr
    proc = _clean(nuls, tmp_path / "out", "--control-chars", "drop")
    assert proc.returncode == 2 and "--control-chars" in proc.stderr
