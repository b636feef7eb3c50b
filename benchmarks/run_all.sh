#!/usr/bin/env bash
# Run pipekit's benchmarks. Sizes: BENCH_SIZES (default 1M,5M,20M; e.g. BENCH_SIZES=200k for a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/bench_clean.py --sizes "${BENCH_SIZES:-1M,5M,20M}" ${BENCH_DOC:+--doc "$BENCH_DOC"}
