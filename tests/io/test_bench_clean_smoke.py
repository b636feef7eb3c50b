"""Smoke run of benchmarks/bench_clean.py at a tiny size: peers run, outputs compared, tables written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_clean_runs_the_cli_and_the_lean_polars_peer(tmp_path: Path) -> None:
    pytest.importorskip("polars")
    pytest.importorskip("duckdb")  # benchmarks/compare_outputs.py
    if not (Path(sys.executable).parent / "pipekit").exists():
        pytest.skip("no pipekit console script next to this Python")
    doc = tmp_path / "clean.md"
    doc.write_text("# prose\n\n<!-- bench_clean:start -->\nold\n<!-- bench_clean:end -->\nafter\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_clean.py"), "--sizes", "2k", "--layouts", "narrow",
         "--engines", "pipekit,cli,polars_lean", "--data-dir", str(tmp_path / "data"), "--doc", str(doc)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = doc.read_text()
    assert text.startswith("# prose\n") and text.endswith("<!-- bench_clean:end -->\nafter\n")
    assert "old" not in text and "### Narrow layout" in text and "### Standard layout" not in text
    rows = {line.split(" | ")[2]: line for line in text.splitlines() if line.startswith("| 2,000 |")}
    assert set(rows) == {"pipekit", "cli", "polars_lean"}
    assert rows["pipekit"].endswith("| reference |")
    assert rows["cli"].endswith("| yes |")  # the CLI is the library call: identical rows
    assert "NO (by design): " in rows["polars_lean"] and "rows unmatched" in rows["polars_lean"]
    assert "not measured" in text  # targets are judged at 5M / 20M only
