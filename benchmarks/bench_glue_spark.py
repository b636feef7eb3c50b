"""Throughput of the Glue customers job on local Spark (1 and 2 cores) beside the pandas path, same input.

    .venv/bin/python benchmarks/bench_glue_spark.py                 # 1M rows, 1 and 2 cores, 2 repeats
    .venv/bin/python benchmarks/bench_glue_spark.py --rows 100000 --repeats 1

Every engine reads the same AdventureWorks-shaped CSV, applies GLUE_CUSTOMER_POLICY plus PII detection on a
1000-row sample, and writes snappy Parquet. Spark runs in a fresh process per core count (a JVM's core
count is fixed at start); the job time excludes JVM start-up and one warm-up run on 2,000 rows, which
are reported separately. Rows/s is
rows / best job time over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
DEFAULT_DIR = HERE.parents[1] / ".bench" / "glue"


def make_input(work: Path, rows: int, seed: int) -> Path:
    """The AdventureWorks CSV for ``rows``/``seed``, generated once and reused."""
    from pipekit.sample import write_adventureworks_csv

    path = work / f"customers_{rows}_{seed}.csv"
    if not path.exists():
        write_adventureworks_csv(path, rows, seed=seed)
    return path


def spark_worker(source: Path, work: Path, cores: int, repeats: int) -> dict:
    """Run the job ``repeats`` times in this process on local[cores]; return timings."""
    from pipekit.spark import local_spark, read_customers_csv, run_customers_etl

    started = time.perf_counter()
    spark = local_spark(cores, app_name=f"bench-glue-{cores}", memory="3g")
    startup = time.perf_counter() - started
    # One untimed run on a small file: class loading and code generation happen once per JVM, and
    # would otherwise be billed to the first timed run.
    warm = make_input(work, 2000, 1)
    run_customers_etl(spark, str(warm), str(work / f"out_warmup_{cores}"))
    shutil.rmtree(work / f"out_warmup_{cores}", ignore_errors=True)
    times, stats = [], None
    for i in range(repeats):
        target = work / f"out_spark_{cores}_{i}"
        shutil.rmtree(target, ignore_errors=True)
        t0 = time.perf_counter()
        stats = run_customers_etl(spark, str(source), str(target))
        times.append(time.perf_counter() - t0)
        shutil.rmtree(target, ignore_errors=True)
    # Baseline: the same read and write with no masking, to show what the policy itself costs.
    copy_times = []
    for i in range(repeats):
        target = work / f"out_copy_{cores}_{i}"
        shutil.rmtree(target, ignore_errors=True)
        t0 = time.perf_counter()
        read_customers_csv(spark, str(source)).write.mode("overwrite").option("compression", "snappy").parquet(
            str(target)
        )
        copy_times.append(time.perf_counter() - t0)
        shutil.rmtree(target, ignore_errors=True)
    spark.stop()
    assert stats is not None
    return {"engine": f"spark local[{cores}]", "rows": stats.rows_out, "startup_s": round(startup, 2),
            "times_s": [round(t, 3) for t in times], "copy_s": round(min(copy_times), 3)}  # fmt: skip


def pandas_path(source: Path, work: Path, repeats: int) -> dict:
    """The same job in pandas: read every value as a string, detect PII on a sample, apply_policy, Parquet."""
    import pandas as pd

    from pipekit.core import GLUE_CUSTOMER_POLICY, ColumnRule, MaskingPolicy, apply_policy, scan_pii

    times, rows = [], 0
    for i in range(repeats):
        target = work / f"out_pandas_{i}.parquet"
        t0 = time.perf_counter()
        frame = pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])
        unruled = [c for c in frame.columns if c not in GLUE_CUSTOMER_POLICY.resolve(list(frame.columns))]
        detected = scan_pii(frame[unruled].head(1000)).findings
        policy = MaskingPolicy(dict(GLUE_CUSTOMER_POLICY.rules) | {c: ColumnRule("redact") for c in detected})
        masked, _ = apply_policy(frame, policy)
        masked.to_parquet(target, compression="snappy", index=False)
        times.append(time.perf_counter() - t0)
        rows = len(masked)
        target.unlink(missing_ok=True)
    return {"engine": "pandas (apply_policy)", "rows": rows, "startup_s": 0.0,
            "times_s": [round(t, 3) for t in times]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cores", default="1,2", help="comma-separated local[N] core counts")
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument("--work", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # internal: one Spark run
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    source = make_input(args.work, args.rows, args.seed)

    if args.worker:
        print(json.dumps(spark_worker(source, args.work, args.worker, args.repeats)))
        return 0

    results = []
    for cores in (int(c) for c in args.cores.split(",") if c):
        # A fresh process per core count: local[N] is fixed when the JVM starts.
        env = {**os.environ, "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}
        proc = subprocess.run(
            [sys.executable, str(HERE), "--rows", str(args.rows), "--seed", str(args.seed), "--repeats",
             str(args.repeats), "--work", str(args.work), "--worker", str(cores)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            return proc.returncode
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if not args.no_pandas:
        results.append(pandas_path(source, args.work, args.repeats))

    size_mb = source.stat().st_size / 1e6
    for r in results:
        r["best_s"] = min(r["times_s"])
        r["rows_per_s"] = round(r["rows"] / r["best_s"])
    if args.json:
        print(json.dumps({"rows": args.rows, "csv_mb": round(size_mb, 1), "load_avg": os.getloadavg()[0],
                          "results": results}, indent=2))  # fmt: skip
        return 0
    print(f"input: {source.name}, {args.rows:,} rows, {size_mb:.0f} MB CSV; "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average at end {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| engine | rows | best job time (s) | all runs (s) | rows/s | JVM start (s) | read+write, no masking (s) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for r in results:
        copy = f"{r['copy_s']:.2f}" if "copy_s" in r else "-"
        print(f"| {r['engine']} | {r['rows']:,} | {r['best_s']:.2f} | {', '.join(map(str, r['times_s']))} | "
              f"{r['rows_per_s']:,} | {r['startup_s']:.1f} | {copy} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
