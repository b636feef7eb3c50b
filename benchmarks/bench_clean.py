"""Benchmark: pipekit.clean_file vs the same pipeline in Polars, DuckDB SQL and plain pandas.

One run, same seeded file per size, every engine in a fresh process (wall time and peak RSS of that
process via wait4), outputs compared as multisets of rows against pipekit's. Usage:

    .venv/bin/python benchmarks/bench_clean.py --sizes 1M,5M,20M --doc docs/perf/clean.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


ENGINES = ("pipekit", "polars", "duckdb", "pandas")
NOW = "2026-01-01T00:00:00+00:00"


def parse_size(text: str) -> int:
    """'5M' -> 5_000_000, '200k' -> 200_000, '1234' -> 1234."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def compare(reference: str, other: str) -> dict[str, object]:
    """Compare two outputs in a separate process.

    Not in this process: Linux hands a child started with vfork/exec this process's peak RSS as its own
    starting ru_maxrss, so a comparison that grew this process would inflate every later engine's figure.
    """
    out = subprocess.run(
        [sys.executable, str(HERE / "compare_outputs.py"), reference, other, "--examples", "0", "--json"],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def ensure_input(data_dir: Path, rows: int, seed: int) -> Path:
    """The seeded customers CSV for ``rows`` (generated once, then reused)."""
    path = data_dir / f"customers_{rows}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", f"from pipekit.sample import write_customers_csv; write_customers_csv({str(path)!r}, {rows}, seed={seed})"],
            check=True,
        )  # fmt: skip
        print(
            f"  generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
    return path


def run_engine(engine: str, src: Path, out_dir: Path, timeout: float) -> dict[str, object]:
    """Run one engine script in a fresh process; return wall seconds, peak RSS and exit status."""
    cmd = [sys.executable, str(HERE / "engines" / f"{engine}_clean.py"), str(src), str(out_dir), "--now", NOW]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            return {"engine": engine, "error": f"timed out after {timeout:.0f}s"}
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode:
        return {"engine": engine, "error": f"exit {proc.returncode}: {stderr.strip().splitlines()[-1:]}"}
    return {"engine": engine, "seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    """Run the benchmark and print (and optionally write) the results table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1M,5M,20M", help="comma-separated row counts, e.g. 200k,1M")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pandas-max-rows", type=parse_size, default=parse_size("5M"),
                        help="skip pandas above this size (it holds everything in memory: ~2.6 GB at 5M)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per engine run")
    parser.add_argument("--doc", type=Path, help="also write the results as Markdown to this file")
    parser.add_argument("--keep-outputs", action="store_true")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    args.data_dir.mkdir(parents=True, exist_ok=True)

    started = datetime.now(UTC)
    load_before = os.getloadavg()
    results: list[dict[str, object]] = []
    for rows in sizes:
        print(f"== {rows:,} rows", flush=True)
        src = ensure_input(args.data_dir, rows, args.seed)
        outputs: dict[str, Path] = {}
        for engine in engines:
            if engine == "pandas" and rows > args.pandas_max_rows:
                results.append(
                    {
                        "rows": rows,
                        "engine": engine,
                        "skipped": f"above --pandas-max-rows {args.pandas_max_rows:,}",
                    }
                )
                print(f"  {engine:8s} skipped (above --pandas-max-rows)", flush=True)
                continue
            out_dir = args.data_dir / f"out_{engine}_{rows}"
            result = run_engine(engine, src, out_dir, args.timeout)
            result["rows"] = rows
            result["input_mib"] = src.stat().st_size / 2**20
            if "seconds" in result:
                result["rows_per_s"] = rows / float(result["seconds"])  # type: ignore[arg-type]
                outputs[engine] = out_dir / f"{src.stem}_cleaned.parquet"
            results.append(result)
            print(f"  {engine:8s} " + _fmt(result), flush=True)
        if "pipekit" in outputs:
            for engine, parquet in outputs.items():
                if engine == "pipekit":
                    continue
                diff = compare(str(outputs["pipekit"]), str(parquet))
                for r in results:
                    if r["rows"] == rows and r["engine"] == engine:
                        r["same_rows"] = diff["same_rows"]
                        r["diff"] = {k: v for k, v in diff.items() if k != "same_rows"}
                print(
                    f"  {engine:8s} same rows as pipekit: {diff['same_rows']} {'' if diff['same_rows'] else diff}",
                    flush=True,
                )
        if not args.keep_outputs:
            for engine in outputs:
                for f in (args.data_dir / f"out_{engine}_{rows}").glob("*"):
                    f.unlink()
    table = markdown(results, started, load_before, os.getloadavg(), " ".join(sys.argv[1:]))
    print(table)
    if args.doc:
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(_splice(args.doc.read_text() if args.doc.exists() else "", table))
        print(f"wrote {args.doc}")


_START, _END = "<!-- bench_clean:start -->", "<!-- bench_clean:end -->"


def _splice(document: str, table: str) -> str:
    """Replace the generated section of ``document`` (between markers), keeping the prose around it."""
    block = f"{_START}\n{table}{_END}\n"
    if _START in document and _END in document:
        head, rest = document.split(_START, 1)
        return head + block + rest.split(_END, 1)[1].lstrip("\n")
    return document + ("\n" if document else "") + block


def _fmt(r: dict[str, object]) -> str:
    if "error" in r:
        return f"ERROR {r['error']}"
    return f"{r['seconds']:7.2f} s  {r['rows_per_s']:>12,.0f} rows/s  peak RSS {r['peak_rss_mib']:7.0f} MiB"


def markdown(results: list[dict[str, object]], started: datetime, load_before: tuple[float, ...],
             load_after: tuple[float, ...], argv: str) -> str:  # fmt: skip
    """The results as a Markdown table with the command and machine that produced them."""
    lines = [
        "| rows | input MiB | engine | wall s | rows/s | vs pipekit | peak RSS MiB | same rows as pipekit |",
        "|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    by_size: dict[int, dict[str, dict[str, object]]] = {}
    for r in results:
        by_size.setdefault(int(r["rows"]), {})[str(r["engine"])] = r  # type: ignore[call-overload]
    for rows, engines in by_size.items():
        base = engines.get("pipekit", {}).get("rows_per_s")
        for engine, r in engines.items():
            if "skipped" in r or "error" in r:
                lines.append(f"| {rows:,} | | {engine} | {r.get('skipped') or r.get('error')} | | | | |")
                continue
            ratio = f"{float(r['rows_per_s']) / float(base):.2f}x" if base else ""  # type: ignore[arg-type]
            same = (
                "reference"
                if engine == "pipekit"
                else ("yes" if r.get("same_rows") else f"NO {r.get('diff')}")
            )
            lines.append(
                f"| {rows:,} | {float(r['input_mib']):.0f} | {engine} | {float(r['seconds']):.2f} | "  # type: ignore[arg-type]
                f"{float(r['rows_per_s']):,.0f} | {ratio} | {float(r['peak_rss_mib']):.0f} | {same} |"  # type: ignore[arg-type]
            )
    header = (
        f"Command: `.venv/bin/python benchmarks/bench_clean.py {argv}`\n\n"
        f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU(s), {platform.python_implementation()} "
        f"{platform.python_version()}; load average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
        "(the machine was shared with other jobs). Whole processes, fresh per engine; peak RSS from wait4.\n\n"
    )
    return header + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
