"""Smoke run of benchmarks/bench_clean.py at a tiny size: --repeats rounds, rows compared, tables written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_clean.py"


def test_bench_clean_runs_the_cli_and_the_lean_polars_peer(tmp_path: Path) -> None:
    pytest.importorskip("polars")
    pytest.importorskip("duckdb")  # benchmarks/compare_outputs.py
    if not (Path(sys.executable).parent / "pipekit").exists():
        pytest.skip("no pipekit console script next to this Python")
    doc = tmp_path / "clean.md"
    doc.write_text("# prose\n\n<!-- bench_clean:start -->\nold\n<!-- bench_clean:end -->\nafter\n")
    out = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "2k", "--layouts", "narrow",
         "--engines", "pipekit,cli,polars_lean", "--repeats", "2", "--target-rows", "2k",
         "--data-dir", str(tmp_path / "data"), "--doc", str(doc)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = doc.read_text()
    assert text.startswith("# prose\n") and text.endswith("<!-- bench_clean:end -->\nafter\n")
    assert "old" not in text and "### Narrow layout" in text and "### Standard layout" not in text
    command = next(line for line in text.splitlines() if line.startswith("Command: "))
    assert " --repeats 2 " in command and command.count("--repeats") == 1
    assert "Every peer ran 2 times per size and layout, interleaved round-robin" in text
    assert "| wall s, median (min-max) |" in text and "| peak RSS MiB (max) |" in text
    rows = {line.split(" | ")[2]: line for line in text.splitlines() if line.startswith("| 2,000 |")}
    assert set(rows) == {"pipekit", "cli", "polars_lean"}
    assert rows["pipekit"].endswith("| reference |")
    assert rows["cli"].endswith("| yes |")  # the CLI is the library call: identical rows
    assert "NO (by design): " in rows["polars_lean"] and "rows unmatched" in rows["polars_lean"]
    speeds = {}
    for engine, line in rows.items():
        cells = line.split(" | ")
        wall = re.fullmatch(r"(\d+\.\d\d) \((\d+\.\d\d)-(\d+\.\d\d)\)", cells[3])
        assert wall, f"{engine}: wall cell {cells[3]!r} is not 'median (min-max)'"
        median, low, high = (float(g) for g in wall.groups())
        assert low <= median <= high
        speeds[engine] = float(cells[4].replace(",", ""))
        assert abs(2_000 / speeds[engine] - median) < 0.006  # rows/s is the median's
    # The targets are judged from the medians (here at 2k rows; the 20M peak-RSS target is not measured).
    lean = next(line for line in text.splitlines() if "the lean Polars script, 2,000 rows" in line)
    judged = re.search(r"= \*\*(\d+\.\d\d)x\*\*", lean)
    assert judged and abs(float(judged.group(1)) - speeds["cli"] / speeds["polars_lean"]) < 0.006
    assert "not measured" in text
    # Round-robin: run 1 of every peer, the comparisons (once per peer, on run 1's outputs), then run 2.
    progress = [line.split()[:3] for line in out.stdout.splitlines() if line.startswith("  ")]
    runs = [(engine, run) for engine, word, run in progress if word == "run"]
    assert runs == [(e, f"{k}/2") for k in (1, 2) for e in ("pipekit", "cli", "polars_lean")]
    compared = [i for i, line in enumerate(progress) if line[1:3] == ["same", "rows"]]
    assert [progress[i][0] for i in compared] == ["cli", "polars_lean"]
    assert progress.index(["pipekit", "run", "2/2"]) > max(compared)


def test_bench_clean_help_and_repeats_validation() -> None:
    helped = subprocess.run(
        [sys.executable, str(BENCH), "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0 and "--repeats" in helped.stdout and "round-robin" in helped.stdout
    assert "(default: 3)" in " ".join(helped.stdout.split())
    bad = subprocess.run(
        [sys.executable, str(BENCH), "--repeats", "0"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "--repeats must be at least 1" in bad.stderr
