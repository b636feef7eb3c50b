"""Cost of the keyed hash on Spark: SQL built-ins (key in the plan) vs the Arrow UDF (key in a broadcast).

    .venv/bin/python benchmarks/bench_spark_hash.py                      # 1M rows, local[2], 3 repeats
    .venv/bin/python benchmarks/bench_spark_hash.py --rows 200000 --cores 1 --repeats 1

One column of distinct email-like strings (``user<id>@example.com`` from ``spark.range``: every value
differs, so the kernel's per-batch de-duplication saves nothing), hashed with a 32-byte key and written to
Spark's ``noop`` sink, so the time is the masking and not a file format. Variants:

- ``copy``: the column unmasked (generating and moving the rows);
- ``sql built-ins``: HMAC-SHA256 from ``sha2`` over the RFC 2104 pads, as pipekit built it before
  issue 12. It is kept here only to measure it: its pads are literals of the plan, so the key leaks;
- ``arrow udf``: ``pipekit.spark.apply_policy_spark``'s keyed hash, the core's kernel in a pandas UDF
  with the key in a broadcast (what the Glue job runs).

Before timing, both masked variants are checked to give the same column (sum of ``xxhash64``).
Each variant runs once untimed on 20,000 rows first (code generation, Python worker start-up).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from typing import Any

KEY = b"bench-only-key-0123456789abcdef!"  # 32 bytes; a benchmark key, not a secret


def sql_hmac(column: str, key: bytes) -> str:
    """The pre-issue-12 Spark SQL HMAC-SHA256 (lower-case hex): the key's pads are binary literals."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    ipad, opad = bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
    inner = f"unhex(sha2(concat(X'{ipad.hex()}', encode({column}, 'UTF-8')), 256))"
    return f"sha2(concat(X'{opad.hex()}', {inner}), 256)"


def variants(spark: Any, rows: int) -> dict[str, Any]:
    """The DataFrames to time, by name, over ``rows`` generated values."""
    from pyspark.sql import functions as F

    from pipekit.core import ColumnRule, MaskingPolicy
    from pipekit.spark import apply_policy_spark

    source = spark.range(rows).select(
        F.concat(F.lit("user"), F.col("id").cast("string"), F.lit("@example.com")).alias("v")
    )
    udf, _ = apply_policy_spark(source, MaskingPolicy({"v": ColumnRule("hash")}), key=KEY, detect_pii=False)
    return {
        "copy": source,
        "sql built-ins (old, key in plan)": source.select(F.expr(sql_hmac("v", KEY)).alias("v")),
        "arrow udf (new, key in broadcast)": udf,
    }


def checksum(frame: Any) -> int:
    """Order-independent fingerprint of column ``v``."""
    from pyspark.sql import functions as F

    return int(frame.agg(F.sum(F.xxhash64("v"))).first()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from pipekit.spark import local_spark

    spark = local_spark(args.cores, app_name="bench-spark-hash", memory="2g")
    warm = variants(spark, 20_000)
    _, old, new = warm.values()
    if checksum(old) != checksum(new):
        sys.stderr.write("the SQL and UDF hashes differ: fix that before timing them\n")
        return 1
    for frame in warm.values():
        frame.write.format("noop").mode("overwrite").save()
    results = []
    for name, frame in variants(spark, args.rows).items():
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            frame.write.format("noop").mode("overwrite").save()
            times.append(time.perf_counter() - t0)
        best = min(times)
        results.append({"variant": name, "best_s": round(best, 3), "times_s": [round(t, 3) for t in times],
                        "rows_per_s": round(args.rows / best)})  # fmt: skip
    spark.stop()
    copy = results[0]["best_s"]
    for r in results:
        r["hash_s"] = round(r["best_s"] - copy, 3)
    if args.json:
        print(json.dumps({"rows": args.rows, "cores": args.cores, "load_avg": os.getloadavg()[0],
                          "results": results}, indent=2))  # fmt: skip
        return 0
    print(f"{args.rows:,} distinct values, local[{args.cores}], {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average at end {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| variant | best (s) | all runs (s) | minus copy (s) | rows/s |")
    print("|---|---:|---|---:|---:|")
    for r in results:
        print(f"| {r['variant']} | {r['best_s']:.2f} | {', '.join(map(str, r['times_s']))} | "
              f"{r['hash_s']:.2f} | {r['rows_per_s']:,} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
