#!/usr/bin/env bash
# Demo 2: run the customer_pipeline DAG once on real Airflow 3 (temporary home, SQLite), offline.
#
# Generates a seeded messy customers CSV and a poison file (no email column) into a landing folder, runs
# the DAG with `airflow dags test` (no scheduler needed): both files in the same run, the poison file is
# moved to rejected/ with a reason while the good one is processed. Prints where the cleaned file, backup,
# manifest and GX report landed, then re-delivers the good file to show it is recognised by sha256 and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PY="$ROOT/.venv/bin/python"
DEMO="$ROOT/.demo/airflow"

export AIRFLOW_HOME="$DEMO/home"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/adapters/airflow/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export GX_ANALYTICS_ENABLED=false
export PATH="$ROOT/.venv/bin:$PATH"
BASE="$DEMO/data"
LOG="$DEMO/airflow-run.log"

# Fresh data each time (the same seeded file would otherwise be skipped as already ingested).
rm -rf "$BASE"
mkdir -p "$AIRFLOW_HOME" "$BASE/landing"

echo "== 1. demo CSV -> $BASE/landing/customers.csv, and a poison file without an email column -> bad_export.csv"
"$PY" -c "from pipekit.sample import write_customers_csv; write_customers_csv('$BASE/landing/customers.csv', 5000, seed=2)"
printf 'id,name,timestamp\n1,"Doe, Jane",2024-01-01\n' > "$BASE/landing/bad_export.csv"

echo "== 2. Airflow metadata DB (SQLite) in $AIRFLOW_HOME"
airflow db migrate > "$DEMO/db-migrate.log" 2>&1 || { tail -20 "$DEMO/db-migrate.log"; exit 1; }

# A fixed "now" for the future-timestamp rule (as demo 1 does), so the counts are the same whatever the date.
CONF="{\"base_dir\": \"$BASE\", \"now\": \"2026-01-01T00:00:00Z\"}"
echo "== 3. airflow dags test customer_pipeline -c '$CONF'   (log: $LOG; the run is 'failed': one file was rejected)"
airflow dags test customer_pipeline -c "$CONF" > "$LOG" 2>&1 || true

"$PY" - "$BASE" <<'PY'
import json, sys
from pathlib import Path
from pipekit.io.ingest import Manifest

base = Path(sys.argv[1])
done = [e for e in Manifest(base / "manifest.jsonl").entries() if e.event == "completed"]
if not done:
    sys.exit("the DAG run did not complete: see .demo/airflow/airflow-run.log")
entry = done[-1]
run = json.loads(Path(entry.outputs["run_report"]).read_text())
print(f"   run {entry.run_id}: {entry.file_name}, {entry.row_count} rows, sha256 {entry.sha256[:16]}...")
print(f"   cleaned CSV     {run['outputs']['cleaned_csv']}")
print(f"   cleaned Parquet {run['outputs']['cleaned_parquet']}")
print(f"   backup          {run['backup']}")
print(f"   manifest        {run['manifest']}")
print(f"   GX report       {run['quality']['gx_html']}  (JSON: {run['quality']['gx_json']})")
print(f"   future ids      {run['outputs']['future_ids']}")
print(f"   counts          {', '.join(f'{k}={v}' for k, v in run['counts'].items())}")
fr = run["future_rows"]
print(f"   future rows     shell script {fr['shell_script']} / core {fr['core']} (agree: {fr['agree']})")
print(f"   landing file still there? {(base / 'landing' / entry.file_name).exists()}")
rejected = [e for e in Manifest(base / "manifest.jsonl").entries() if e.event == "rejected"]
if not rejected:
    sys.exit("expected bad_export.csv to be rejected in the same run: see .demo/airflow/airflow-run.log")
bad = rejected[-1]
if bad.run_id != entry.run_id:
    sys.exit(f"expected one run to take both files, got {bad.run_id} and {entry.run_id}")
reason = json.loads(Path(bad.outputs["reason_path"]).read_text())
print(f"   same run, rejected: {bad.file_name} ({reason['stage']}: gate {reason['gate']}, "
      f"missing {', '.join(reason['missing_columns'])})")
print(f"      moved to     {bad.outputs['rejected_path']}")
print(f"      reason       {bad.outputs['reason_path']}")
print(f"   landing folder now: {sorted(p.name for p in (base / 'landing').iterdir()) or 'empty'}")
PY

echo "== 4. re-deliver the identical file: it must be skipped, not processed twice"
cp "$(ls "$BASE"/backups/customers.*Z.csv | head -1)" "$BASE/landing/customers.csv"
airflow dags test customer_pipeline -c "$CONF" > "$DEMO/airflow-rerun.log" 2>&1 || true
"$PY" - "$BASE" <<'PY'
import sys
from pathlib import Path
from pipekit.io.ingest import Manifest

events = [e.event for e in Manifest(Path(sys.argv[1]) / "manifest.jsonl").entries()]
print(f"   manifest events: {events}")
if events[-1] != "skipped_duplicate":
    sys.exit("expected the re-delivery to be skipped: see .demo/airflow/airflow-rerun.log")
PY
echo "== done (cron entry for teams without a scheduler: .venv/bin/pipekit airflow cron install --dry-run)"
