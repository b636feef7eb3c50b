#!/usr/bin/env bash
# Run every pipekit benchmark, then rebuild docs/performance.md from the per-area pages in docs/perf/.
# Sizes for the cleaning benchmark: BENCH_SIZES (default 1M,5M,20M; e.g. BENCH_SIZES=200k for a smoke run);
# it runs every peer on both input layouts (standard, narrow). bench_startup adds the CLI start-up and
# 2,000-column peak-RSS figures to the same page (its own markers).
# Pages whose figures are written by hand from a script's output say so, with the command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY benchmarks/bench_clean.py --sizes "${BENCH_SIZES:-1M,5M,20M}" --doc docs/perf/clean.md
$PY benchmarks/bench_startup.py --runs 15 --doc docs/perf/clean.md
$PY benchmarks/bench_spark_clean.py --sizes "${BENCH_SIZES:-1M,5M,20M}" --repeats 3
$PY benchmarks/bench_glue_spark.py --rows 1000000 --repeats 2
$PY benchmarks/bench_aws_twin.py --rows 100000
$PY benchmarks/bench_dag_parse.py --repeat 20
$PY benchmarks/bench_lambda.py --runs 21
$PY benchmarks/bench_ml_dag.py --repeat 3 --parse-repeat 20
$PY benchmarks/assemble_performance_doc.py
