"""Benchmark: ``pipekit clean`` start-up (a 10-row file) and peak RSS on a 2,000-column ~90 MB file.

Every figure is a whole ``pipekit clean`` process, as a user's shell runs it (the console script next
to this Python). Start-up: one ``python -X importtime`` run first (it also warms the page cache; its
slowest imports go in the doc), then ``--runs`` fresh processes timed, median and p90 wall seconds.
Wide file: a seeded file of its own (2,000 columns, ``--wide-mb`` MB), peak RSS from wait4. Usage:

    .venv/bin/python benchmarks/bench_startup.py --doc docs/perf/clean.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_clean import NOW, ROOT, _splice, cli_script, ensure_input, run_process  # noqa: E402

STARTUP_TARGET_S = 0.3
WIDE_TARGET_MIB = 512
WIDE_COLUMNS = 2_000
_START, _END = "<!-- bench_startup:start -->", "<!-- bench_startup:end -->"


def write_wide_csv(path: Path, columns: int, target_bytes: int, seed: int) -> int:
    """A seeded CSV with ``columns`` columns (the four required ones first) of about ``target_bytes``.

    Cells are short tokens (3-12 characters) drawn from a fixed pool; ~1% of rows repeat an earlier row
    exactly and ~1% have a blank required field, so deduplication and the required check have work.
    Returns the number of data rows. Written to a temporary name, then renamed.
    """
    import numpy as np

    rng = np.random.default_rng([seed, columns])
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    pool = np.array(["".join(rng.choice(alphabet, int(k))) for k in rng.integers(3, 13, 1024)], dtype=object)
    header = ",".join(["id", "name", "email", "timestamp", *(f"c{i}" for i in range(4, columns))]) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    written, rows, lines = 0, 0, []
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        written += fh.write(header)
        while written < target_bytes:
            if lines and rng.random() < 0.01:
                line = lines[int(rng.integers(0, len(lines)))]
            else:
                name = (
                    ""
                    if rng.random() < 0.01
                    else f"{pool[rng.integers(0, 1024)]} {pool[rng.integers(0, 1024)]}"
                )
                day = int(rng.integers(1, 29))
                cells = ",".join(pool[rng.integers(0, 1024, columns - 4)])
                line = f"{rows:07d},{name},u{rows}@example.com,2025-02-{day:02d}T10:00:00Z,{cells}\n"
                if len(lines) < 64:
                    lines.append(line)
            written += fh.write(line)
            rows += 1
    tmp.rename(path)
    return rows


def startup(args: argparse.Namespace, work: Path) -> dict[str, object]:
    """Time ``pipekit clean`` on a 10-row narrow file: the importtime run, then ``args.runs`` fresh ones."""
    tiny = ensure_input(args.data_dir, 10, args.seed, "narrow")
    out = work / "out_tiny"
    cli = cli_script()
    argv = ["clean", str(tiny), "--out", str(out), "--quiet", "--now", NOW]
    first = subprocess.run(
        [sys.executable, "-X", "importtime", str(cli), *argv], capture_output=True, text=True, check=True
    )
    imports = parse_importtime(first.stderr)
    times = []
    for _ in range(args.runs):
        r = run_process([str(cli), *argv], timeout=60)
        if "error" in r:
            raise SystemExit(f"pipekit clean failed on {tiny}: {r['error']}")
        times.append(float(r["seconds"]))  # type: ignore[arg-type]
    return {"file": tiny, "times": times, "imports": imports, "argv": argv}


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """``-X importtime`` lines as (module, depth, self us, cumulative us), slowest cumulative first."""
    found = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2  # " top", "   child", "     grandchild"
        found.append((name.strip(), depth, int(self_us), int(cumulative)))
    return sorted(found, key=lambda x: -x[3])


def wide(args: argparse.Namespace, work: Path) -> dict[str, object]:
    """Peak RSS of ``pipekit clean`` on the seeded 2,000-column file (generated once in a child)."""
    path = args.data_dir / f"wide_{WIDE_COLUMNS}cols_{args.wide_mb}mb_seed{args.seed}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--write-wide", str(path), "--wide-mb", str(args.wide_mb),
             "--seed", str(args.seed)],
            check=True,
        )  # fmt: skip
        print(f"  generated {path} in {time.perf_counter() - t0:.1f}s", flush=True)
    out = work / "out_wide"
    cmd = [str(cli_script()), "clean", str(path), "--out", str(out), "--quiet", "--now", NOW]
    result = run_process(cmd, timeout=args.timeout)
    with open(path, "rb") as fh:
        rows = sum(1 for _ in fh) - 1  # no quoted line breaks in this file
    return {"file": path, "mb": path.stat().st_size / 1e6, "rows": rows, **result}


def markdown(s: dict[str, object], w: dict[str, object] | None, started: datetime, argv: str) -> str:
    """The start-up and wide-file figures, with the commands, as Markdown."""
    times = sorted(s["times"])  # type: ignore[type-var]
    median = statistics.median(times)
    p90 = statistics.quantiles(times, n=10, method="inclusive")[-1] if len(times) > 1 else times[0]
    cmd = f"pipekit clean {Path(str(s['file'])).name} --out OUT --quiet --now {NOW}"
    met = "met" if median < STARTUP_TARGET_S else "**NOT met**"
    lines = [
        f"Command: `.venv/bin/python benchmarks/bench_startup.py {argv}`\n",
        f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU(s), {platform.python_implementation()} "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f} (shared machine). Whole "
        "processes; each figure's command is beside it.\n",
        "| measure | command | figure | target | met? |",
        "|---|---|---|---|---|",
        f"| CLI start-up: {len(times)} fresh processes on a 10-row file (narrow layout), after one "
        f"`-X importtime` run | `{cmd}` | median **{median:.3f} s**, p90 {p90:.3f} s "
        f"(min {times[0]:.3f}, max {times[-1]:.3f}) | < {STARTUP_TARGET_S} s (median) | {met} |",
    ]
    if w is not None:
        wcmd = f"pipekit clean {Path(str(w['file'])).name} --out OUT --quiet --now {NOW}"
        what = f"peak RSS, {WIDE_COLUMNS:,} columns x {int(w['rows']):,} rows ({float(w['mb']):.0f} MB)"  # type: ignore[call-overload, arg-type]
        if "error" in w:
            lines.append(
                f"| {what} | `{wcmd}` | ERROR {w['error']} | < {WIDE_TARGET_MIB} MiB | **NOT met** |"
            )
        else:
            rss = float(w["peak_rss_mib"])  # type: ignore[arg-type]
            ok = "met" if rss < WIDE_TARGET_MIB else "**NOT met**"
            lines.append(
                f"| {what} | `{wcmd}` | **{rss:.0f} MiB** (wall {float(w['seconds']):.2f} s) "  # type: ignore[arg-type]
                f"| < {WIDE_TARGET_MIB} MiB | {ok} |"
            )
    imports = s["imports"]
    lines += [
        "",
        f"Slowest imports of the first run, by cumulative time (`.venv/bin/python -X importtime "
        f".venv/bin/pipekit {' '.join(['clean', Path(str(s['file'])).name, '--out', 'OUT', '--quiet', '--now', NOW])}`; "
        "nested modules are counted inside their parents, and `-X importtime` itself slows the run):",
        "",
        "| module | depth | cumulative ms | self ms |",
        "|---|---:|---:|---:|",
    ]
    total = sum(c for _, depth, _, c in imports if depth == 0)  # type: ignore[misc, union-attr]
    for name, depth, self_us, cumulative in imports[:10]:  # type: ignore[index]
        lines.append(f"| `{name}` | {depth} | {cumulative / 1000:.1f} | {self_us / 1000:.1f} |")
    lines.append(f"\nAll imports together (top-level cumulative): {total / 1000:.0f} ms.\n")
    return "\n".join(lines)


def main() -> None:
    """Run both measurements; print (and optionally write) the Markdown."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="fresh start-up processes timed")
    parser.add_argument("--wide-mb", type=int, default=90, help="size of the 2,000-column file, MB (0: skip)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--doc", type=Path, help="also write the results into this file (own markers)")
    parser.add_argument("--write-wide", type=Path, help=argparse.SUPPRESS)  # the generator child
    args = parser.parse_args()
    if args.write_wide:
        write_wide_csv(args.write_wide, WIDE_COLUMNS, args.wide_mb * 10**6, args.seed)
        return
    if not cli_script().exists():
        raise SystemExit(f"no pipekit console script at {cli_script()}")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        s = startup(args, Path(tmp))
        print(
            f"  start-up: median {statistics.median(s['times']):.3f} s over {len(s['times'])} runs",
            flush=True,
        )  # type: ignore[arg-type]
        w = wide(args, Path(tmp)) if args.wide_mb > 0 else None
        if w is not None:
            print(f"  wide file: {w.get('peak_rss_mib', w.get('error'))} MiB peak RSS", flush=True)
    text = markdown(s, w, started, " ".join(sys.argv[1:]))
    print(text)
    if args.doc:
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(_splice(args.doc.read_text() if args.doc.exists() else "", text, _START, _END))
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
