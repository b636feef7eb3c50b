"""Smoke run of benchmarks/bench_spark_clean.py at a tiny size: both modes, both tables, numbers that parse."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_spark_clean.py"
ROWS = "| 5,000 |"
STEPS = ["scan_s", "read_s", "duplicates_s", "finish_s", "spark_s", "publish_s"]
PROCESS, SESSION = "whole process (JVM start included)", "in a running session"


def _have_spark() -> bool:
    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


def _rows(text: str) -> dict[str, list[str]]:
    """The 5,000-row lines of the table in ``text``, as their cells by engine."""
    rows = {}
    for line in text.splitlines():
        if line.startswith(ROWS):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[1]] = cells
    return rows


def _check_speedup(text: str, label: str, walls: dict[str, float]) -> None:
    """The local[2]/local[1] line agrees with the table's walls (rounded to 0.01 s), and the 5M target
    line says it was not measured; both labelled."""
    line = rf"^- 5,000 rows, {re.escape(label)}: local\[2\] is (\d+\.\d\d)x local\[1\]$"
    found = re.search(line, text, re.M)
    assert found, f"no speed-up line for {label}"
    one, two = walls["spark local[1]"], walls["spark local[2]"]
    assert (
        (one - 0.005) / (two + 0.005) - 0.005
        <= float(found.group(1))
        <= (one + 0.005) / (two - 0.005) + 0.005
    )
    target = f'- Target "local[2] >= 1.7x local[1] at 5M", {label}: not measured in this run (no 5M size)'
    assert target in text.splitlines()


def _consistent(wall: float, speed: float, rows: int = 5_000) -> bool:
    """rows/s (printed to the row) agrees with the wall seconds (printed to 0.01 s) within their roundings:
    half a hundredth of the wall, and what half a row per second moves ``rows / speed``."""
    return abs(rows / speed - wall) <= 0.0051 + rows * 0.51 / speed**2


@pytest.mark.spark
@pytest.mark.skipif(not _have_spark(), reason="pyspark and Java are needed for the Spark tests")
def test_bench_spark_clean_writes_the_process_and_the_session_tables(tmp_path: Path) -> None:
    if not (Path(sys.executable).parent / "pipekit").exists():
        pytest.skip("no pipekit console script next to this Python")
    doc = tmp_path / "spark_clean.md"
    doc.write_text(
        "# prose\n\n<!-- bench_spark_clean:start -->\nold\n<!-- bench_spark_clean:end -->\nafter\n"
    )
    out = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "5k", "--repeats", "1", "--engines", "local[1],local[2]",
         "--modes", "process,session", "--warmup-rows", "2k", "--data-dir", str(tmp_path / "data"),
         "--doc", str(doc)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    text = doc.read_text()
    assert text.startswith("# prose\n") and text.endswith("<!-- bench_spark_clean:end -->\nafter\n")
    assert "\nold\n" not in text
    command = next(line for line in text.splitlines() if line.startswith("Command: "))
    assert " --modes process,session " in command and " --repeats 1 " in command
    session = text.index("**In a running session.**")
    assert 0 < text.index("**Whole process (JVM start included).**") < session
    head, tail = text[:session], text[session:]

    # The whole-process table, as before: wall, rows/s, µs/row, the runs.
    assert "| rows | engine | wall s | rows/s | µs/row | runs (s) |" in head
    rows = _rows(head)
    assert set(rows) == {"spark local[1]", "spark local[2]"}
    walls = {}
    for engine, cells in rows.items():
        wall, speed, per_row = float(cells[2]), float(cells[3].replace(",", "")), float(cells[4])
        assert wall > 0 and _consistent(wall, speed) and abs(per_row - wall / 5_000 * 1e6) < 1.0
        assert float(cells[5]) == wall  # one run: the median is that run
        walls[engine] = wall
    _check_speedup(head, PROCESS, walls)

    # The session table: the same, plus the scan partitions and the median of every timing step.
    assert (
        "| rows | engine | wall s | rows/s | µs/row | parts | " + " | ".join(STEPS) + " | runs (s) |" in tail
    )
    rows = _rows(tail)
    assert set(rows) == {"spark local[1]", "spark local[2]"}
    walls = {}
    for engine, cells in rows.items():
        wall, speed = float(cells[2]), float(cells[3].replace(",", ""))
        assert wall > 0 and _consistent(wall, speed) and int(cells[5]) >= 1
        steps = dict(zip(STEPS, (float(c) for c in cells[6:12]), strict=True))
        assert min(steps.values()) >= 0
        assert steps["spark_s"] + 0.02 >= steps["read_s"] + steps["duplicates_s"] + steps["finish_s"]
        assert steps["scan_s"] + steps["spark_s"] + steps["publish_s"] <= wall + 0.02
        assert float(cells[12]) == wall
        walls[engine] = wall
    _check_speedup(tail, SESSION, walls)
    progress = [line.split() for line in out.stdout.splitlines() if line.startswith("      5,000 ")]
    assert [p[1] for p in progress] == ["local[1]", "local[2]", "local[1]", "local[2]"]
    assert [p[2] for p in progress] == ["median", "median", "in", "in"]


def test_bench_spark_clean_rejects_an_unknown_mode(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, str(BENCH), "--modes", "process,notebook", "--doc", str(tmp_path / "d.md")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--modes must name process and/or session" in bad.stderr
    assert not (tmp_path / "d.md").exists()


def test_the_target_is_judged_on_each_figure_and_labelled() -> None:
    spec = importlib.util.spec_from_file_location("bench_spark_clean", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    big = bench.TARGET_ROWS
    process = {(big, "local[1]"): [30.0, 31.0, 29.0], (big, "local[2]"): [20.0, 21.0, 22.0]}  # 1.43x
    timings = {
        "scan_s": 1.0,
        "read_s": 5.0,
        "duplicates_s": 1.0,
        "finish_s": 3.0,
        "spark_s": 9.5,
        "publish_s": 2.0,
    }
    sessions = {
        (big, "local[1]"): {
            "runs": [18.0, 18.0, 18.0],
            "timings": [timings] * 3,
            "settings": {"scan_partitions": 4},
        },
        (big, "local[2]"): {
            "runs": [10.0, 10.0, 10.0],
            "timings": [timings] * 3,
            "settings": {"scan_partitions": 4},
        },
    }
    block = bench.markdown(process, sessions, ["local[1]", "local[2]"], "cmd", 3, 20_000)
    lines = block.splitlines()
    assert f'- Target "local[2] >= 1.7x local[1] at 5M", {PROCESS}: NOT met (1.43x)' in lines
    assert f'- Target "local[2] >= 1.7x local[1] at 5M", {SESSION}: met (1.80x)' in lines
    assert f"- 5,000,000 rows, {SESSION}: local[2] is 1.80x local[1]" in lines
    assert (
        "| 5,000,000 | spark local[2] | 10.00 | 500,000 | 2.00 | 4 | 1.00 | 5.00 | 1.00 | 3.00 | 9.50 | 2.00 | "
        in block
    )
    only = bench.markdown({}, sessions, ["local[1]", "local[2]"], "cmd", 3, 20_000)
    assert "**In a running session.**" in only and "Whole process" not in only
