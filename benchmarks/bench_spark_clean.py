"""Whole-process timings of `pipekit clean --engine spark` (local[1], local[2]) beside the file engine.

Each run is a fresh `pipekit clean` process (JVM start, Python workers and all) on the same narrow customers
CSV (`pipekit.sample.write_customers_csv(path, N, seed=0, layout="narrow")`, generated once into
.bench/customers_narrow_N.csv, the file bench_clean.py uses too).
Reports the median wall time of --repeats runs, rows/s and µs per row as N grows, the local[2]/local[1]
speed-up, and whether the target "local[2] >= 1.7x local[1] at 5M" is met; writes a Markdown block into
docs/perf/spark_clean.md between its markers.

    .venv/bin/python benchmarks/bench_spark_clean.py --sizes 1M,5M,20M --repeats 3
    .venv/bin/python benchmarks/bench_spark_clean.py --sizes 200k --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPEKIT = Path(sys.executable).with_name("pipekit")
DOC = ROOT / "docs" / "perf" / "spark_clean.md"
START, END = "<!-- bench_spark_clean:start -->", "<!-- bench_spark_clean:end -->"
NOW = "2026-01-01T00:00:00Z"
TARGET_ROWS = 5_000_000
TARGET_SPEEDUP = 1.7


def parse_size(text: str) -> int:
    """'200k' -> 200000, '5M' -> 5000000."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def ensure_input(data_dir: Path, rows: int) -> Path:
    """The narrow sample with ``rows`` rows (seed 0), generated once; bench_clean.py's file of that name is it."""
    path = data_dir / f"customers_narrow_{rows}.csv"
    if not path.exists():
        from pipekit.sample import write_customers_csv

        data_dir.mkdir(parents=True, exist_ok=True)
        write_customers_csv(path, rows, seed=0, layout="narrow")
    return path


def run_once(src: Path, engine: str, timeout: float) -> float:
    """Wall seconds of one `pipekit clean` process (outputs to a fresh temp folder, then removed)."""
    out = Path(tempfile.mkdtemp(prefix="bench-spark-clean-", dir=src.parent))
    cmd = [str(PIPEKIT), "clean", str(src), "--out", str(out), "--now", NOW, "--quiet"]
    if engine != "file":
        cmd += ["--engine", "spark", "--master", engine]
    try:
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return seconds
    finally:
        shutil.rmtree(out, ignore_errors=True)


def markdown(results: dict[tuple[int, str], list[float]], engines: list[str], command: str) -> str:
    load = os.getloadavg()
    lines = [
        START,
        f"Command: `{command}`",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU(s), Python {platform.python_version()}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. Wall time = the median of "
        f"{len(next(iter(results.values())))} whole `pipekit clean` processes (JVM start included).",
        "",
        "| rows | engine | wall s | rows/s | µs/row | runs (s) |",
        "|---:|---|---:|---:|---:|---|",
    ]
    sizes = sorted({rows for rows, _ in results})
    for rows in sizes:
        for engine in engines:
            runs = results.get((rows, engine))
            if not runs:
                continue
            wall = statistics.median(runs)
            name = "file" if engine == "file" else f"spark {engine}"
            lines.append(
                f"| {rows:,} | {name} | {wall:.2f} | {rows / wall:,.0f} | {wall / rows * 1e6:.2f} | "
                + ", ".join(f"{r:.2f}" for r in runs)
                + " |"
            )
    lines.append("")
    for rows in sizes:
        one, two = results.get((rows, "local[1]")), results.get((rows, "local[2]"))
        if one and two:
            lines.append(
                f"- {rows:,} rows: local[2] is {statistics.median(one) / statistics.median(two):.2f}x local[1]"
            )
    one, two = results.get((TARGET_ROWS, "local[1]")), results.get((TARGET_ROWS, "local[2]"))
    if one and two:
        speedup = statistics.median(one) / statistics.median(two)
        verdict = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
        lines.append(f'- Target "local[2] >= {TARGET_SPEEDUP}x local[1] at 5M": {verdict} ({speedup:.2f}x)')
    else:
        lines.append(
            f'- Target "local[2] >= {TARGET_SPEEDUP}x local[1] at 5M": not measured in this run (no 5M size)'
        )
    lines.append(END)
    return "\n".join(lines)


def splice(document: str, block: str) -> str:
    """Replace the generated block of ``document`` (or append it), keeping the prose around it."""
    if START in document and END in document:
        head, rest = document.split(START, 1)
        return head + block + rest.split(END, 1)[1]
    return document.rstrip() + "\n\n" + block + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1M,5M,20M", help="comma-separated row counts, e.g. 200k,1M")
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine and size (median reported)")
    parser.add_argument("--engines", default="file,local[1],local[2]", help="file and/or Spark local masters")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--doc", type=Path, default=DOC, help="Markdown page to write the block into")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    results: dict[tuple[int, str], list[float]] = {}
    for rows in sizes:
        src = ensure_input(args.data_dir, rows)
        for engine in engines:
            runs = [run_once(src, engine, args.timeout) for _ in range(args.repeats)]
            results[(rows, engine)] = runs
            print(f"{rows:>11,} {engine:9} median {statistics.median(runs):7.2f} s  runs {runs}", flush=True)
    command = ".venv/bin/python benchmarks/bench_spark_clean.py " + " ".join(
        a if " " not in a else repr(a) for a in sys.argv[1:]
    )
    block = markdown(results, engines, command.strip())
    print(block)
    page = args.doc.read_text(encoding="utf-8") if args.doc.exists() else ""
    args.doc.write_text(splice(page, block), encoding="utf-8")


if __name__ == "__main__":
    main()
