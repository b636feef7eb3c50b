"""Timings of `pipekit clean --engine spark` (local[1], local[2]) beside the file engine, measured two ways.

--modes process: each run is a fresh `pipekit clean` process (JVM start, Python workers and all).
--modes session: "in a running session", what a notebook user with a SparkSession sees (and how Spark
scaling is usually reported): per Spark master, one Python process (local[1] and local[2] never share a
JVM) starts `pipekit.spark.local_spark(N)` with the settings pipekit gives its own sessions, cleans a small
warm-up file once (Python workers started), then times `clean_file_spark(src, out, spark=session)`
--repeats times; it also reports the median of each step of the report's `timings`, to show what is serial.
Both run on the same narrow customers CSV (`pipekit.sample.write_customers_csv(path, N, seed=0,
layout="narrow")`, generated once into .bench/customers_narrow_N.csv, the file bench_clean.py uses too).
Reports the median wall time of --repeats runs, rows/s and µs per row as N grows, the local[2]/local[1]
speed-up, and whether the target "local[2] >= 1.7x local[1] at 5M" is met (judged on the whole process;
the session figure is printed beside it); writes a Markdown block into docs/perf/spark_clean.md between
its markers.

    .venv/bin/python benchmarks/bench_spark_clean.py --sizes 1M,5M,20M --repeats 3
    .venv/bin/python benchmarks/bench_spark_clean.py --sizes 200k --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_clean import ensure_input

ROOT = Path(__file__).resolve().parents[1]
PIPEKIT = Path(sys.executable).with_name("pipekit")
DOC = ROOT / "docs" / "perf" / "spark_clean.md"
START, END = "<!-- bench_spark_clean:start -->", "<!-- bench_spark_clean:end -->"
NOW = "2026-01-01T00:00:00Z"
TARGET_ROWS = 5_000_000
TARGET_SPEEDUP = 1.7
MODES = ("process", "session")
#: The report's `timings` steps shown for the session mode (python-split plan: read, duplicates, finish).
STEPS = ("scan_s", "read_s", "duplicates_s", "finish_s", "spark_s", "publish_s")
#: The line a session child prints its results on (stdout), after this prefix.
RESULT = "bench_spark_clean:session "


def parse_size(text: str) -> int:
    """'200k' -> 200000, '5M' -> 5000000."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def ensure_warmup(data_dir: Path, rows: int) -> Path:
    """The session mode's warm-up file: a small narrow sample (seed 1), generated once, in a folder of its
    own so bench_clean.py's seed-0 file of the same size is never this one."""
    return ensure_input(data_dir / "warmup-seed1", rows, 1, "narrow")


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


def session_child(master: str, src: Path, warmup: Path, repeats: int) -> None:
    """In the child process of one master: a running session, one warm-up clean, ``repeats`` timed cleans of
    ``src``; prints the seconds, the report's timings and settings as one JSON line after ``RESULT``."""
    from pipekit.spark import clean_file_spark, local_spark
    from pipekit.spark._clean_input import ARROW_BATCH_ROWS, _cores

    session = local_spark(
        _cores(master),
        app_name="bench-spark-clean-session",
        memory=os.environ.get("PIPEKIT_SPARK_MEMORY", "2g"),
    )
    # What pipekit.spark._clean_input.session sets on the sessions pipekit creates.
    session.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    now = datetime.fromisoformat(NOW)

    def clean(path: Path) -> tuple[float, Any]:
        out = Path(tempfile.mkdtemp(prefix="bench-spark-session-", dir=src.parent))
        try:
            started = time.perf_counter()
            report = clean_file_spark(path, out, spark=session, now=now)
            return time.perf_counter() - started, report
        finally:
            shutil.rmtree(out, ignore_errors=True)

    try:
        clean(warmup)  # the JVM's first jobs and the Python workers' start and imports
        runs, timings, settings = [], [], {}
        for _ in range(repeats):
            seconds, report = clean(src)
            runs.append(seconds)
            timings.append({k: float(v) for k, v in report.timings.items()})
            settings = {k: report.settings.get(k) for k in ("plan", "scan_partitions")}
    finally:
        session.stop()
    print(
        RESULT + json.dumps({"master": master, "runs": runs, "timings": timings, "settings": settings}),
        flush=True,
    )


def run_session(src: Path, warmup: Path, master: str, repeats: int, timeout: float) -> dict[str, Any]:
    """Run ``session_child`` for ``master`` in a fresh Python process; its parsed results."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--session-child", master, "--child-src", str(src),
           "--child-warmup", str(warmup), "--repeats", str(repeats)]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout * (repeats + 1) + 300, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        raise SystemExit(
            f"session run of {master} on {src} failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT) :])
    return result


def speedups(results: dict[tuple[int, str], list[float]], sizes: list[int], label: str) -> list[str]:
    """The local[2]/local[1] lines per size, then the target's verdict at 5M, labelled with ``label``."""
    lines = []
    for rows in sizes:
        one, two = results.get((rows, "local[1]")), results.get((rows, "local[2]"))
        if one and two:
            lines.append(
                f"- {rows:,} rows, {label}: local[2] is "
                f"{statistics.median(one) / statistics.median(two):.2f}x local[1]"
            )
    one, two = results.get((TARGET_ROWS, "local[1]")), results.get((TARGET_ROWS, "local[2]"))
    target = f'- Target "local[2] >= {TARGET_SPEEDUP}x local[1] at 5M", {label}'
    if one and two:
        speedup = statistics.median(one) / statistics.median(two)
        verdict = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
        lines.append(f"{target}: {verdict} ({speedup:.2f}x)")
    else:
        lines.append(f"{target}: not measured in this run (no 5M size)")
    return lines


def markdown(
    results: dict[tuple[int, str], list[float]],
    sessions: dict[tuple[int, str], dict[str, Any]],
    engines: list[str],
    command: str,
    repeats: int,
    warmup_rows: int,
) -> str:
    load = os.getloadavg()
    lines = [
        START,
        f"Command: `{command}`",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU(s), Python {platform.python_version()}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.",
    ]
    if results:
        lines += process_table(results, engines, repeats)
    if sessions:
        lines += session_table(sessions, engines, repeats, warmup_rows)
    lines.append(END)
    return "\n".join(lines)


def process_table(results: dict[tuple[int, str], list[float]], engines: list[str], repeats: int) -> list[str]:
    lines = [
        "",
        f"**Whole process (JVM start included).** Wall time = the median of {repeats} `pipekit clean` "
        "processes, each started afresh.",
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
    return lines + speedups(results, sizes, "whole process (JVM start included)")


def session_table(
    sessions: dict[tuple[int, str], dict[str, Any]], engines: list[str], repeats: int, warmup_rows: int
) -> list[str]:
    lines = [
        "",
        f"**In a running session.** One Python process per master holds a `local_spark(N)` session (the "
        f"settings pipekit gives its own sessions), cleans a {warmup_rows:,}-row warm-up file once, then "
        f"times `clean_file_spark(src, out, spark=session)`: wall time = the median of {repeats} runs, each "
        "step the median of the report's `timings` (s). `scan_s` (the hash pass) and `publish_s` (the driver "
        "joining the parts) are serial; `spark_s` holds `read_s`, `duplicates_s` and `finish_s`. parts = the "
        "byte ranges of the run (a whole number per core, at least 1 MiB each, in a caller's session too).",
        "",
        "| rows | engine | wall s | rows/s | µs/row | parts | " + " | ".join(STEPS) + " | runs (s) |",
        "|---:|---|---:|---:|---:|---:|" + "---:|" * len(STEPS) + "---|",
    ]
    sizes = sorted({rows for rows, _ in sessions})
    for rows in sizes:
        for engine in engines:
            result = sessions.get((rows, engine))
            if not result:
                continue
            runs = result["runs"]
            wall = statistics.median(runs)
            steps = []
            for step in STEPS:
                values = [t[step] for t in result["timings"] if step in t]
                steps.append(f"{statistics.median(values):.2f}" if values else "-")
            lines.append(
                f"| {rows:,} | spark {engine} | {wall:.2f} | {rows / wall:,.0f} | {wall / rows * 1e6:.2f} | "
                f"{result['settings'].get('scan_partitions', '-')} | "
                + " | ".join(steps)
                + " | "
                + ", ".join(f"{r:.2f}" for r in runs)
                + " |"
            )
    lines.append("")
    walls = {key: result["runs"] for key, result in sessions.items()}
    return lines + speedups(walls, sizes, "in a running session")


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
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="process (whole `pipekit clean` processes) and/or session (timed in a running SparkSession)",
    )
    parser.add_argument("--warmup-rows", type=parse_size, default=20_000, help="session mode's warm-up file")
    # The session mode's child process (internal).
    parser.add_argument("--session-child", help=argparse.SUPPRESS)
    parser.add_argument("--child-src", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-warmup", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.session_child:
        session_child(args.session_child, args.child_src, args.child_warmup, args.repeats)
        return
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes must name process and/or session, got {args.modes!r}")
    results: dict[tuple[int, str], list[float]] = {}
    sessions: dict[tuple[int, str], dict[str, Any]] = {}
    warmup = ensure_warmup(args.data_dir, args.warmup_rows) if "session" in modes else None
    for rows in sizes:
        src = ensure_input(args.data_dir, rows, 0, "narrow")  # bench_clean.py's narrow file of that size
        if "process" in modes:
            for engine in engines:
                runs = [run_once(src, engine, args.timeout) for _ in range(args.repeats)]
                results[(rows, engine)] = runs
                print(
                    f"{rows:>11,} {engine:9} median {statistics.median(runs):7.2f} s  runs {runs}", flush=True
                )
        if warmup is not None:
            for engine in (e for e in engines if e != "file"):
                result = run_session(src, warmup, engine, args.repeats, args.timeout)
                sessions[(rows, engine)] = result
                runs = result["runs"]
                median = statistics.median(runs)
                print(f"{rows:>11,} {engine:9} in a session median {median:7.2f} s  runs {runs}", flush=True)
    command = ".venv/bin/python benchmarks/bench_spark_clean.py " + " ".join(
        a if " " not in a else repr(a) for a in sys.argv[1:]
    )
    block = markdown(results, sessions, engines, command.strip(), args.repeats, args.warmup_rows)
    print(block)
    page = args.doc.read_text(encoding="utf-8") if args.doc.exists() else ""
    args.doc.write_text(splice(page, block), encoding="utf-8")


if __name__ == "__main__":
    main()
