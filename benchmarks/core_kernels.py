"""Time pipekit.core's Arrow kernels on a seeded customers CSV (kernels only, CSV read timed apart).

Usage: .venv/bin/python benchmarks/core_kernels.py --rows 1000000 [--batch-rows 262144] [--csv PATH]
Prints one JSON line: rows, seconds per stage, rows/s of the kernels. The CSV is generated (seeded)
next to --csv when it does not exist, so runs are reproducible.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipekit.core import CleaningConfig, finalize_batch, normalize_batch, validate

FIRST = np.array(["ann", "JEAN-LUC", "o'brien", "Élodie", "  mary  ann ", "ZOË", "bob", "li", "", "d'angelo"])
LAST = np.array(["smith", "O'NEIL", "garcía-lópez", "lee", "  van der berg", "MÜLLER", "ng", "x"])
DOMAINS = np.array(["example.com", "Mail.Example.co.uk", "x.org", "adventure-works.com"])


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write a messy customers CSV: mixed case, blanks, duplicates, future and bad timestamps."""
    rng = np.random.default_rng(seed)
    chunk = 500_000
    with pacsv.CSVWriter(path, pa.schema([(c, pa.string()) for c in ("id", "name", "email", "timestamp")])) as w:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = np.arange(start, start + n)
            dup = rng.random(n) < 0.02
            ids[dup] = np.maximum(ids[dup] - 1, 0)
            first = FIRST[rng.integers(0, len(FIRST), n)]
            last = LAST[rng.integers(0, len(LAST), n)]
            names = np.char.add(np.char.add(first, " "), last)
            local = np.char.add(np.char.lower(first.astype(str)), ids.astype(str))
            emails = np.char.add(np.char.add(local, "@"), DOMAINS[rng.integers(0, len(DOMAINS), n)])
            secs = rng.integers(1_500_000_000, 1_900_000_000, n).astype("datetime64[s]")
            stamps = np.datetime_as_string(secs).astype(object)
            stamps[rng.random(n) < 0.01] = "not a date"
            table = pa.table(
                {
                    "id": pa.array(ids.astype(str)),
                    "name": pa.array(names.astype(str)),
                    "email": pa.array(emails.astype(str)),
                    "timestamp": pa.array(stamps.astype(str)),
                }
            )
            w.write_table(table)


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=1 << 18)
    parser.add_argument("--csv", type=Path, default=None)
    parser.add_argument("--validate", action="store_true", help="also time validate() per batch")
    args = parser.parse_args()
    csv_path = args.csv or Path(f"/tmp/pipekit_core_bench_{args.rows}.csv")
    if not csv_path.exists():
        generate(csv_path, args.rows)
    config = CleaningConfig()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    block = 1 << 24
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in ("id", "name", "email", "timestamp")})
    timings = {"read": 0.0, "validate": 0.0, "normalize": 0.0, "finalize": 0.0}
    rows = 0
    t0 = time.perf_counter()
    reader = pacsv.open_csv(csv_path, read_options=pacsv.ReadOptions(block_size=block), convert_options=convert)
    while True:
        t = time.perf_counter()
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        timings["read"] += time.perf_counter() - t
        table = pa.Table.from_batches([batch])
        rows += table.num_rows
        if args.validate:
            t = time.perf_counter()
            validate(table)
            timings["validate"] += time.perf_counter() - t
        t = time.perf_counter()
        table, _ = normalize_batch(table, config)
        timings["normalize"] += time.perf_counter() - t
        t = time.perf_counter()
        table, _ = finalize_batch(table, config, now=now)
        timings["finalize"] += time.perf_counter() - t
    total = time.perf_counter() - t0
    kernels = timings["validate"] + timings["normalize"] + timings["finalize"]
    print(
        json.dumps(
            {
                "rows": rows,
                "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
                "seconds": {k: round(v, 3) for k, v in timings.items()} | {"total": round(total, 3)},
                "kernel_rows_per_s": round(rows / kernels) if kernels else None,
                "arrow_threads": pa.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
