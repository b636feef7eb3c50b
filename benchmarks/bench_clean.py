"""Benchmark: pipekit (library call and CLI) vs the same pipeline in Polars, DuckDB SQL and plain pandas.

The same seeded file per size and layout, every peer run --repeats times (default 3), each run a fresh
process (wall time and peak RSS of that process via wait4). The runs are interleaved round-robin: run 1 of
every peer, then run 2 of every peer, and so on, so a slow spell of the machine hits all peers alike. A
peer's wall time is the median of its runs (min and max beside it), its rows/s, the ratios and the
targets come from that median, and its peak RSS is the largest of its runs; a failed run fails the peer.
Outputs are compared once, after the first round, as multisets of rows against pipekit's (later rounds
start from an empty out dir and write the same files again). Peers:

- ``pipekit``: ``pipekit.clean_file`` from a small script (benchmarks/engines/pipekit_clean.py);
- ``cli``: ``pipekit clean FILE --out DIR --quiet --now ...`` exactly as a user runs it (the console
  script next to this Python, whole process including start-up);
- ``polars``: the faithful Polars translation of pipekit's rules (engines/polars_clean.py);
- ``polars_lean``: the short Polars script issue 13 spells out (engines/polars_lean_clean.py); it does
  less than pipekit on purpose, so its rows differ and the table says by how many;
- ``duckdb``: one SQL statement and two COPYs (engines/duckdb_clean.py);
- ``pandas``: the tutorial script (engines/pandas_clean.py), skipped above --pandas-max-rows.

Layouts: ``standard`` (id,name,email,phone,address,timestamp; ~113 bytes a row) and ``narrow``
(id,name,email,timestamp,phone,country; ~96 bytes a row). Usage:

    .venv/bin/python benchmarks/bench_clean.py --sizes 1M,5M,20M --repeats 3 --doc docs/perf/clean.md
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


ENGINES = ("pipekit", "cli", "polars", "polars_lean", "duckdb", "pandas")
LAYOUTS = ("standard", "narrow")
LAYOUT_COLUMNS = {
    "standard": "id,name,email,phone,address,timestamp",
    "narrow": "id,name,email,timestamp,phone,country",
}
#: Peers whose rows must equal pipekit's; the others are expected to differ (and say by how much).
EXPECTED_DIFFERENT = {"polars_lean": "by design: no trim or blank check, duplicates compared before normalising, empty optional fields read as null, one timestamp format"}  # fmt: skip
NOW = "2026-01-01T00:00:00+00:00"
GIB = 1024  # MiB


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
    )  # fmt: skip
    return json.loads(out.stdout)


def input_path(data_dir: Path, rows: int, layout: str) -> Path:
    """Where the seeded input for (rows, layout) lives; the standard name predates layouts (kept for reuse)."""
    return data_dir / (f"customers_{rows}.csv" if layout == "standard" else f"customers_{layout}_{rows}.csv")


def ensure_input(data_dir: Path, rows: int, seed: int, layout: str = "standard") -> Path:
    """The seeded customers CSV for ``rows`` and ``layout`` (generated once, in a child, then reused)."""
    path = input_path(data_dir, rows, layout)
    if not path.exists():
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", f"from pipekit.sample import write_customers_csv; write_customers_csv({str(path)!r}, {rows}, seed={seed}, layout={layout!r})"],
            check=True,
        )  # fmt: skip
        print(
            f"  generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
    return path


def cli_script() -> Path:
    """The ``pipekit`` console script installed next to this interpreter (as a user's shell finds it)."""
    return Path(sys.executable).parent / "pipekit"


def engine_command(engine: str, src: Path, out_dir: Path) -> list[str]:
    """The command line one peer runs as (a fresh process)."""
    if engine == "cli":
        return [str(cli_script()), "clean", str(src), "--out", str(out_dir), "--quiet", "--now", NOW]
    return [
        sys.executable,
        str(HERE / "engines" / f"{engine}_clean.py"),
        str(src),
        str(out_dir),
        "--now",
        NOW,
    ]


def run_process(cmd: list[str], timeout: float) -> dict[str, object]:
    """Run ``cmd`` in a fresh process; wall seconds, peak RSS (wait4 ru_maxrss) or an error."""
    # stderr to a file, not a pipe: a chatty child must never block on a full pipe.
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return {"error": f"timed out after {timeout:.0f}s"}
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode:
        return {"error": f"exit {proc.returncode}: {stderr.strip().splitlines()[-1:]}"}
    return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def run_engine(engine: str, src: Path, out_dir: Path, timeout: float) -> dict[str, object]:
    """Run one peer in a fresh process; return wall seconds, peak RSS and exit status."""
    if engine == "cli" and not cli_script().exists():
        return {"engine": engine, "error": f"no console script at {cli_script()}"}
    out_dir.mkdir(parents=True, exist_ok=True)
    return {"engine": engine, **run_process(engine_command(engine, src, out_dir), timeout)}


def summarize_runs(engine: str, runs: list[dict[str, object]], repeats: int) -> dict[str, object]:
    """One peer's runs as one result: median wall seconds with min and max, peak RSS the max of the runs.

    A failed run fails the peer (its error, with the run's number): a median of the runs that happened to
    succeed would hide it. ``repeats`` is how many runs were asked for (a peer stops at its first failure).
    """
    for i, run in enumerate(runs, 1):
        if "error" in run:
            return {"engine": engine, "error": f"run {i} of {repeats}: {run['error']}" if repeats > 1 else run["error"]}  # fmt: skip
    seconds = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    return {
        "engine": engine,
        "seconds": statistics.median(seconds),
        "seconds_min": min(seconds),
        "seconds_max": max(seconds),
        "runs_seconds": seconds,
        "peak_rss_mib": max(float(r["peak_rss_mib"]) for r in runs),  # type: ignore[arg-type]
    }


def command_args(argv: list[str], repeats: int) -> str:
    """The command line's arguments as the doc prints them, with ``--repeats`` spelt out if it was defaulted."""
    given = any(a == "--repeats" or a.startswith("--repeats=") for a in argv)
    return " ".join([*argv, *([] if given else ["--repeats", str(repeats)])])


def main() -> None:
    """Run the benchmark and print (and optionally write) the results tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1M,5M,20M", help="comma-separated row counts, e.g. 200k,1M")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="standard, narrow or both")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pandas-max-rows", type=parse_size, default=parse_size("5M"),
                        help="skip pandas above this size (it holds everything in memory: ~2.6 GB at 5M)")  # fmt: skip
    parser.add_argument("--target-rows", type=parse_size, default=parse_size("5M"),
                        help="size the throughput targets are judged at (issue 13: 5M, narrow layout)")  # fmt: skip
    parser.add_argument("--rss-rows", type=parse_size, default=parse_size("20M"),
                        help="size the peak-RSS target is judged at (issue 13: 20M)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of every peer per size and layout, interleaved round-robin (run 1 of every "
                             "peer, then run 2, ...); wall time = median of the runs (min-max shown), peak RSS "
                             "= max; outputs compared once, on the first run's (default: 3)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per engine run")
    parser.add_argument("--doc", type=Path, help="also write the results as Markdown to this file")
    parser.add_argument("--keep-outputs", action="store_true")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, not {args.repeats}")
    for name, given, known in (("engine", engines, ENGINES), ("layout", layouts, LAYOUTS)):
        if unknown := [g for g in given if g not in known]:
            parser.error(f"unknown {name}(s) {unknown}; choose from {', '.join(known)}")
    args.data_dir.mkdir(parents=True, exist_ok=True)

    started = datetime.now(UTC)
    load_before = os.getloadavg()
    results: list[dict[str, object]] = []
    for rows in sizes:
        for layout in layouts:
            print(f"== {rows:,} rows, {layout} layout", flush=True)
            results += run_size(args, rows, layout, engines)
    argv = command_args(sys.argv[1:], args.repeats)
    table = markdown(
        results, started, load_before, os.getloadavg(), argv, args.target_rows, args.rss_rows, args.repeats
    )
    print(table)
    if args.doc:
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(_splice(args.doc.read_text() if args.doc.exists() else "", table))
        print(f"wrote {args.doc}")


def run_size(args: argparse.Namespace, rows: int, layout: str, engines: list[str]) -> list[dict[str, object]]:
    """Every peer on one input, ``--repeats`` rounds of one run each, outputs compared after the first round.

    Round k runs every peer once before round k + 1 starts (round-robin), so a slow spell of the machine
    lands on all peers rather than on one peer's runs. Every run starts from an empty out dir; a peer that
    fails is not run again. Each peer's first-round output is compared with pipekit's, once: later rounds
    write the same rows over the same dir.
    """
    src = ensure_input(args.data_dir, rows, args.seed, layout)
    skipped: dict[str, dict[str, object]] = {}
    for engine in engines:
        if engine == "pandas" and rows > args.pandas_max_rows:
            skipped[engine] = {
                "engine": engine,
                "skipped": f"above --pandas-max-rows {args.pandas_max_rows:,}",
            }
            print(f"  {engine:11s} skipped (above --pandas-max-rows)", flush=True)
    active = [e for e in engines if e not in skipped]
    runs: dict[str, list[dict[str, object]]] = {engine: [] for engine in active}
    checks: dict[str, dict[str, object]] = {}  # engine -> same_rows and diff, from the first round
    for round_no in range(1, args.repeats + 1):
        label = f" run {round_no}/{args.repeats}" if args.repeats > 1 else ""
        outputs: dict[str, Path] = {}
        for engine in active:
            if any("error" in r for r in runs[engine]):
                continue
            out_dir = _out_dir(args.data_dir, layout, engine, rows)
            _clear(out_dir)
            run = run_engine(engine, src, out_dir, args.timeout)
            if "seconds" in run:
                run["rows_per_s"] = rows / float(run["seconds"])  # type: ignore[arg-type]
            runs[engine].append(run)
            print(f"  {engine:11s}{label} " + _fmt(run), flush=True)
            if round_no == 1 and "seconds" in run:
                parquet = out_dir / f"{src.stem}_cleaned.parquet"
                if parquet.exists():
                    outputs[engine] = parquet
                else:
                    checks[engine] = {"same_rows": False, "diff": {"error": f"no {parquet.name} written"}}
        if round_no == 1:
            checks.update(compare_with_pipekit(outputs))
    results: list[dict[str, object]] = []
    for engine in engines:
        if engine in skipped:
            results.append({"rows": rows, "layout": layout, **skipped[engine]})
            continue
        result = summarize_runs(engine, runs[engine], args.repeats)
        result.update(rows=rows, layout=layout, input_mib=src.stat().st_size / 2**20)
        result["bytes_per_row"] = src.stat().st_size / max(rows, 1)
        if "seconds" in result:
            result["rows_per_s"] = rows / float(result["seconds"])  # type: ignore[arg-type]
            result.update(checks.get(engine, {}))
        results.append(result)
        if args.repeats > 1:
            median = f"median of {args.repeats}: " if "seconds" in result else ""
            print(f"  {engine:11s} {median}" + _fmt(result), flush=True)
    if not args.keep_outputs:
        for engine in active:
            _clear(_out_dir(args.data_dir, layout, engine, rows))
    return results


def compare_with_pipekit(outputs: dict[str, Path]) -> dict[str, dict[str, object]]:
    """Every other peer's Parquet output compared with pipekit's: engine -> same_rows and diff (none without pipekit)."""
    checks: dict[str, dict[str, object]] = {}
    if "pipekit" not in outputs:
        return checks
    for engine, parquet in outputs.items():
        if engine == "pipekit":
            continue
        diff = compare(str(outputs["pipekit"]), str(parquet))
        checks[engine] = {
            "same_rows": diff["same_rows"],
            "diff": {k: v for k, v in diff.items() if k != "same_rows"},
        }
        print(
            f"  {engine:11s} same rows as pipekit: {_same({'engine': engine, **checks[engine]})}", flush=True
        )
    return checks


def _out_dir(data_dir: Path, layout: str, engine: str, rows: int) -> Path:
    """Where one peer writes its output for (layout, rows); every run of it reuses the dir."""
    return data_dir / f"out_{layout}_{engine}_{rows}"


def _clear(out_dir: Path) -> None:
    """Empty ``out_dir`` (if it exists), so a run writes into an empty dir like the first one did."""
    for f in out_dir.glob("*"):
        if f.is_dir():
            shutil.rmtree(f)
        else:
            f.unlink()


_START, _END = "<!-- bench_clean:start -->", "<!-- bench_clean:end -->"


def _splice(document: str, table: str, start: str = _START, end: str = _END) -> str:
    """Replace the generated section of ``document`` (between markers), keeping the prose around it."""
    block = f"{start}\n{table}{end}\n"
    if start in document and end in document:
        head, rest = document.split(start, 1)
        tail = rest.split(end, 1)[1]
        return head + block + (tail[1:] if tail.startswith("\n") else tail)  # keep the blank line after
    return document + ("\n" if document else "") + block


def _fmt(r: dict[str, object]) -> str:
    """One run (or a peer's summary of its runs) as a progress line."""
    if "error" in r:
        return f"ERROR {r['error']}"
    spread = f" ({r['seconds_min']:.2f}-{r['seconds_max']:.2f})" if "seconds_min" in r else ""
    return f"{r['seconds']:7.2f} s{spread}  {r['rows_per_s']:>12,.0f} rows/s  peak RSS {r['peak_rss_mib']:7.0f} MiB"


def _wall(r: dict[str, object]) -> str:
    """The wall-seconds cell: the median, then (min-max) when the peer ran more than once."""
    text = f"{float(r['seconds']):.2f}"  # type: ignore[arg-type]
    if len(r.get("runs_seconds") or ()) > 1:  # type: ignore[arg-type]
        text += f" ({float(r['seconds_min']):.2f}-{float(r['seconds_max']):.2f})"  # type: ignore[arg-type]
    return text


def _same(r: dict[str, object]) -> str:
    """The "same rows as pipekit" cell: yes, or how many rows differ and in which columns."""
    if r["engine"] == "pipekit":
        return "reference"
    if "same_rows" not in r:
        return "not compared"
    if r["same_rows"]:
        return "yes"
    d: dict[str, object] = r.get("diff") or {}  # type: ignore[assignment]
    if "error" in d:
        return f"NO: {d['error']}"
    tag = "NO (by design)" if r["engine"] in EXPECTED_DIFFERENT else "NO"
    text = (
        f"{tag}: {int(d['only_reference']):,} of pipekit's {int(d['rows_reference']):,} rows unmatched, "  # type: ignore[call-overload]
        f"{int(d['only_other']):,} of its {int(d['rows_other']):,}"  # type: ignore[call-overload]
    )
    if cols := d.get("differing_columns"):
        text += " (by column: " + ", ".join(f"{c} {n:,}" for c, n in cols.items()) + ")"  # type: ignore[attr-defined]
    if d.get("missing_columns") or d.get("extra_columns"):
        text += f"; columns missing {d.get('missing_columns')}, extra {d.get('extra_columns')}"
    return text


def _layout_table(results: list[dict[str, object]], repeats: int = 1) -> list[str]:
    """One layout's results table; with ``repeats`` > 1 the wall cell is "median (min-max)", RSS the max."""
    wall, rss = (
        ("wall s, median (min-max)", "peak RSS MiB (max)") if repeats > 1 else ("wall s", "peak RSS MiB")
    )
    lines = [
        f"| rows | input MiB | engine | {wall} | rows/s | vs pipekit | vs cli | {rss} | same rows as pipekit |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    by_size: dict[int, dict[str, dict[str, object]]] = {}
    for r in results:
        by_size.setdefault(int(r["rows"]), {})[str(r["engine"])] = r  # type: ignore[call-overload]
    for rows, engines in by_size.items():
        base = engines.get("pipekit", {}).get("rows_per_s")
        cli = engines.get("cli", {}).get("rows_per_s")
        for engine, r in engines.items():
            if "skipped" in r or "error" in r:
                lines.append(f"| {rows:,} | | {engine} | {r.get('skipped') or r.get('error')} | | | | | |")
                continue
            speed = float(r["rows_per_s"])  # type: ignore[arg-type]
            ratio = f"{speed / float(base):.2f}x" if base else ""  # type: ignore[arg-type]
            vs_cli = f"{speed / float(cli):.2f}x" if cli else ""  # type: ignore[arg-type]
            lines.append(
                f"| {rows:,} | {float(r['input_mib']):.0f} | {engine} | {_wall(r)} | "  # type: ignore[arg-type]
                f"{speed:,.0f} | {ratio} | {vs_cli} | {float(r['peak_rss_mib']):.0f} | {_same(r)} |"  # type: ignore[arg-type]
            )
    return lines


def _find(results: list[dict[str, object]], rows: int, layout: str, engine: str) -> dict[str, object] | None:
    for r in results:
        if r["rows"] == rows and r["layout"] == layout and r["engine"] == engine and "rows_per_s" in r:
            return r
    return None


def targets(results: list[dict[str, object]], target_rows: int, rss_rows: int) -> list[str]:
    """The issue-13 targets, judged from this run's figures only (never hand-written)."""
    lines = ["| target (issue 13) | measured in this run | met? |", "|---|---|---|"]
    at = f"{target_rows:,} rows, narrow" + ("" if target_rows == 5_000_000 else " (issue target: 5M)")
    cli = _find(results, target_rows, "narrow", "cli")
    for peer, factor, label in (
        ("polars_lean", 0.9, "the lean Polars script"),
        ("polars", 1.2, "the faithful Polars engine"),
        ("duckdb", 2.0, "DuckDB"),
        ("pandas", 5.0, "plain pandas"),
    ):
        other = _find(results, target_rows, "narrow", peer)
        target = f"`pipekit clean` (CLI) >= {factor:g}x {label}, {at}"
        if cli is None or other is None:
            missing = " and ".join(p for p, r in (("cli", cli), (peer, other)) if r is None)
            lines.append(
                f"| {target} | not measured ({missing} not in this run at {target_rows:,} narrow) | not measured |"
            )
            continue
        a, b = float(cli["rows_per_s"]), float(other["rows_per_s"])  # type: ignore[arg-type]
        ok = a >= factor * b
        lines.append(
            f"| {target} | {a:,.0f} vs {b:,.0f} rows/s = **{a / b:.2f}x** | {'met' if ok else '**NOT met**'} |"
        )
    rss_at = f"{rss_rows:,} rows" + ("" if rss_rows == 20_000_000 else " (issue target: 20M)")
    found = [
        r
        for layout in LAYOUTS
        for engine in ("pipekit", "cli")
        if (r := _find(results, rss_rows, layout, engine)) is not None
    ]
    target = f"peak RSS < 1 GiB at {rss_at} (pipekit library and CLI, every layout run)"
    if not found:
        lines.append(f"| {target} | not measured (no pipekit/cli run at {rss_rows:,} rows) | not measured |")
    else:
        figures = ", ".join(f"{r['engine']} {r['layout']} {float(r['peak_rss_mib']):.0f} MiB" for r in found)  # type: ignore[arg-type]
        ok = all(float(r["peak_rss_mib"]) < GIB for r in found)  # type: ignore[arg-type]
        lines.append(f"| {target} | {figures} | {'met' if ok else '**NOT met**'} |")
    return lines


def markdown(results: list[dict[str, object]], started: datetime, load_before: tuple[float, ...],
             load_after: tuple[float, ...], argv: str, target_rows: int = 5_000_000,
             rss_rows: int = 20_000_000, repeats: int = 1) -> str:  # fmt: skip
    """The results as Markdown (one table per layout, then the targets) with the command and machine."""
    how = (
        f"Every peer ran {repeats} times per size and layout, interleaved round-robin (run 1 of every peer, "
        f"then run 2, ...); wall s is the median of the {repeats} runs (min-max beside it), rows/s, the "
        f"ratios and the targets come from the medians, peak RSS is the largest of the {repeats}; rows "
        "compared once, on the first run's outputs."
        if repeats > 1
        else "One run of every peer."
    )
    parts = [
        f"Command: `.venv/bin/python benchmarks/bench_clean.py {argv}`\n\n"
        f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU(s), {platform.python_implementation()} "
        f"{platform.python_version()}; load average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
        f"(the machine was shared with other jobs). Whole processes, fresh per run; peak RSS from wait4. {how}\n"
    ]
    for layout in LAYOUTS:
        rows = [r for r in results if r["layout"] == layout]
        if not rows:
            continue
        sizes = [float(r["bytes_per_row"]) for r in rows if "bytes_per_row" in r]  # type: ignore[arg-type]
        per_row = f"; {sizes[-1]:.0f} bytes a row" if sizes else ""
        parts.append(
            f"### {layout.capitalize()} layout ({LAYOUT_COLUMNS[layout]}{per_row})\n\n"
            + "\n".join(_layout_table(rows, repeats))
            + "\n"
            + "".join(
                f"\n{engine}: rows differ {why}.\n"
                for engine, why in EXPECTED_DIFFERENT.items()
                if any(r["engine"] == engine for r in rows)
            )
        )
    parts.append(
        "### Targets, judged from this run"
        + (f" (medians of {repeats} runs; peak RSS the max)" if repeats > 1 else "")
        + "\n\n"
        + "\n".join(targets(results, target_rows, rss_rows))
        + "\n"
    )
    return "\n".join(parts)


if __name__ == "__main__":
    main()
