"""Time pipekit.core's Arrow kernels on a seeded customers CSV (kernels only, CSV read timed apart).

Usage: .venv/bin/python benchmarks/core_kernels.py --rows 1000000 [--threads 2] [--validate] [--csv PATH]
       .venv/bin/python benchmarks/core_kernels.py --rows 1000000 --formula-guard
Reads the whole CSV into Arrow batches first (timed apart), then runs validate (optional),
normalize_batch and finalize_batch on each batch. Prints one JSON line: rows, seconds per stage,
rows/s of the kernels. The CSV is generated (seeded)
next to --csv when it does not exist, so runs are reproducible.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
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
    with pacsv.CSVWriter(
        path, pa.schema([(c, pa.string()) for c in ("id", "name", "email", "timestamp")])
    ) as w:
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


def per_kernel(csv_path: Path, config: CleaningConfig, now: datetime) -> None:
    """Best-of-3 process CPU seconds of each kernel over the whole file as one table."""
    import pyarrow.compute as pc

    from pipekit.core import (
        EMAIL_PARTIAL_PATTERN,
        dedup_batch,
        email_kernel,
        emails_kernel,
        hash_kernel,
        names_kernel,
        parse_timestamps,
        scan_pii,
    )

    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ("id", "name", "email", "timestamp")}
    )
    table = pacsv.read_csv(csv_path, convert_options=convert).combine_chunks()
    normalized, _ = normalize_batch(table, config)
    cleaned, _ = finalize_batch(normalized, config, now=now)
    cases = {
        "validate": lambda: validate(table),
        "normalize_batch": lambda: normalize_batch(table, config),
        "  names_kernel": lambda: names_kernel(table.column("name")),
        "  emails_kernel": lambda: emails_kernel(table.column("email")),
        "dedup_batch (exact rows)": lambda: dedup_batch(normalized, config),
        "finalize_batch": lambda: finalize_batch(normalized, config, now=now),
        "  email_kernel (partial mask)": lambda: email_kernel(normalized.column("email")),
        "  parse_timestamps": lambda: parse_timestamps(normalized.column("timestamp")),
        "  hash_kernel (keyed HMAC, ~all values distinct)": lambda: hash_kernel(
            normalized.column("email"), b"bench-key-0123456789"
        ),
        "scan_pii (raw input, 4 columns)": lambda: scan_pii(table),
        "scan_pii (cleaned output, 5 columns)": lambda: scan_pii(cleaned),
        "  (reference) partial mask as one RE2 replace": lambda: pc.replace_substring_regex(
            normalized.column("email"), EMAIL_PARTIAL_PATTERN, r"\1***\2"
        ),
    }
    out = {}
    for label, run in cases.items():
        best = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            run()
            best = min(best, time.process_time() - c0)
        out[label] = round(best, 3)
    print(json.dumps({"rows": table.num_rows, "cpu_seconds_best_of_3": out}, indent=1))


def formula_guard_bench(csv_path: Path, config: CleaningConfig, now: datetime) -> None:
    """Best-of-5 wall milliseconds (and CPU) of the CSV formula guard alone, on the cleaned table and worse."""
    from pipekit.core import formula_guard_kernel, guard_formulas
    from pipekit.sample import write_customers_csv

    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ("id", "name", "email", "timestamp")}
    )
    table = pacsv.read_csv(csv_path, convert_options=convert).combine_chunks()
    cleaned, _ = finalize_batch(normalize_batch(table, config)[0], config, now=now)
    # The tour's sample data (docs/cli.md): phone numbers such as "+1 (960) 886-3921" are guarded.
    sample_path = csv_path.with_name(f"{csv_path.stem}_sample_customers.csv")
    if not sample_path.exists():
        write_customers_csv(sample_path, table.num_rows, seed=42)
    sample = pacsv.read_csv(sample_path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                            convert_options=pacsv.ConvertOptions(column_types={"id": pa.string()},
                                                                 strings_can_be_null=False)).combine_chunks()  # fmt: skip
    sample = sample.cast(pa.schema([(name, pa.string()) for name in sample.column_names]))
    sample_cleaned, _ = finalize_batch(normalize_batch(sample, config)[0], config, now=now)
    rng = np.random.default_rng(3)
    # Worst realistic case: every value starts with a trigger character (the buffer pre-check always
    # hits), half are negative numbers (left alone) and half formulas (guarded).
    pool = np.array(["-12.5", "-3", "+1", "-0.25e3", "=HYPERLINK(x)", "@SUM(A1)", "-2+3+cmd", "+1 555 0100"])
    hostile = pa.array(pool[rng.integers(0, len(pool), table.num_rows)].astype(str))
    cases = {
        f"guard_formulas, cleaned table ({cleaned.num_columns} columns, none formula-like)": lambda: guard_formulas(
            cleaned
        ),
        "formula_guard_kernel, 1 column, all start with = + - @ (half numbers)": lambda: formula_guard_kernel(
            hostile
        ),
        f"guard_formulas, cleaned pipekit.sample customers ({sample_cleaned.num_columns} columns)": lambda: (
            guard_formulas(sample_cleaned)
        ),
    }
    out = {}
    for label, run in cases.items():
        wall, cpu = float("inf"), float("inf")
        for _ in range(5):
            t, c = time.perf_counter(), time.process_time()
            result = run()
            wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
        guarded = result[1] if isinstance(result[1], int) else sum(result[1].values())
        out[label] = {"wall_ms": round(wall * 1000, 1), "cpu_ms": round(cpu * 1000, 1), "guarded": guarded}
    print(json.dumps({"rows": table.num_rows, "best_of_5": out}, indent=1))


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--csv", type=Path, default=None)
    parser.add_argument("--validate", action="store_true", help="also time validate() per batch")
    parser.add_argument(
        "--per-kernel",
        action="store_true",
        help="print best-of-3 CPU seconds of each kernel on the whole file",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="batches processed in parallel (kernels release the GIL)"
    )
    parser.add_argument(
        "--formula-guard", action="store_true", help="time the CSV formula guard alone (best of 5, ms)"
    )
    args = parser.parse_args()
    csv_path = args.csv or Path(f"/tmp/pipekit_core_bench_{args.rows}.csv")
    if not csv_path.exists():
        generate(csv_path, args.rows)
    config = CleaningConfig()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    if args.per_kernel:
        per_kernel(csv_path, config, now)
        return
    if args.formula_guard:
        formula_guard_bench(csv_path, config, now)
        return
    block = 1 << 24
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ("id", "name", "email", "timestamp")}
    )
    rows = 0
    timings = {"validate": 0.0, "normalize": 0.0, "finalize": 0.0}

    def process(batch: pa.RecordBatch) -> dict[str, float]:
        spent = {}
        table = pa.Table.from_batches([batch])
        if args.validate:
            t = time.perf_counter()
            validate(table)
            spent["validate"] = time.perf_counter() - t
        t = time.perf_counter()
        table, _ = normalize_batch(table, config)
        spent["normalize"] = time.perf_counter() - t
        t = time.perf_counter()
        finalize_batch(table, config, now=now)
        spent["finalize"] = time.perf_counter() - t
        return spent

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    reader = pacsv.open_csv(
        csv_path, read_options=pacsv.ReadOptions(block_size=block), convert_options=convert
    )
    batches = list(reader)
    read_s = time.perf_counter() - t0
    rows = sum(b.num_rows for b in batches)
    t1 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for spent in pool.map(process, batches):
            for k, v in spent.items():
                timings[k] += v
    kernels_wall = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "rows": rows,
                "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
                "threads": args.threads,
                "read_s": round(read_s, 3),
                "kernel_seconds_summed_over_batches": {k: round(v, 3) for k, v in timings.items()},
                "kernels_wall_s": round(kernels_wall, 3),
                "kernel_rows_per_s": round(rows / kernels_wall) if kernels_wall else None,
                "process_cpu_s": round(time.process_time() - cpu0, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
