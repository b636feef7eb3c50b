#!/usr/bin/env bash
# Demo step 1: clean a seeded, realistic, messy customers CSV with `pipekit clean` (offline, seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PIPEKIT=.venv/bin/pipekit
DIR=.demo/clean
ROWS=${DEMO_ROWS:-20000}
mkdir -p "$DIR"

echo "== 1. generate $ROWS messy customers (seed 42) -> $DIR/customers.csv"
$PY -c "from pipekit.sample import write_customers_csv; write_customers_csv('$DIR/customers.csv', $ROWS, seed=42)"

echo "== 2. pipekit validate (exit 1 = problems found, listed with row numbers)"
$PIPEKIT validate "$DIR/customers.csv" || true

echo "== 3. pipekit scan-pii on the raw file (exit 1 = PII found)"
$PIPEKIT scan-pii "$DIR/customers.csv" || true

echo "== 4. pipekit clean (fixed --now so the demo is reproducible)"
$PIPEKIT clean "$DIR/customers.csv" --out "$DIR/out" --now 2026-01-01T00:00:00Z

echo "== 5. the masked email column of the output holds no PII"
$PIPEKIT scan-pii "$DIR/out/customers_cleaned.parquet" --columns email

echo "== 6. a few rows before and after"
$PY - "$DIR" <<'PYEOF'
import sys
import pandas as pd
from rich.console import Console
from rich.table import Table

d = sys.argv[1]
raw = pd.read_csv(f"{d}/customers.csv", dtype=str, keep_default_na=False)
out = pd.read_parquet(f"{d}/out/customers_cleaned.parquet")
# Rows that show each rule: messy names, an upper-case email, a future and an unparsable timestamp.
picks = []
for mask in (raw["name"].str.contains(r"^\s|\s\s"), raw["email"].str.isupper(), raw["timestamp"].str.startswith("203"),
             raw["timestamp"].str.contains("[a-z/]", regex=True)):
    picks += raw.index[mask & ~raw.index.isin(picks)][:2].tolist()
ids = raw.loc[picks, "id"].tolist()
console = Console()
for title, frame in (("before", raw[raw["id"].isin(ids)].drop_duplicates("id")),
                     ("after", out[out["id"].isin(ids)].drop_duplicates("id"))):
    frame = frame[[c for c in ("id", "name", "email", "timestamp", "is_future") if c in frame.columns]]
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(col, overflow="fold")
    for row in frame.head(8).itertuples(index=False):
        table.add_row(*[repr(v) if isinstance(v, str) else str(v) for v in row])
    console.print(table)
PYEOF

echo "== report: $DIR/out/customers_report.json"
$PY -c "import json; r = json.load(open('$DIR/out/customers_report.json')); print(json.dumps({k: r[k] for k in ('rows_read', 'rows_written', 'counts')}, indent=2))"
