"""The customer DAG on real Airflow 3 (temporary AIRFLOW_HOME, SQLite): parse, happy path, duplicate, bad file."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipekit.core import flag_future
from pipekit.io.ingest import Manifest

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "adapters" / "airflow" / "dags" / "customer_pipeline.py"
SCRIPT = REPO / "adapters" / "airflow" / "scripts" / "flag_future_timestamps.sh"
NOW = "2026-06-15T12:00:00+00:00"
TASKS = {"wait_for_file", "ingest", "validate", "clean", "flag_future_timestamps", "publish"}

_INSPECT = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.get_dag("customer_pipeline")
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}}
if dag is not None:
    sensor = dag.get_task("wait_for_file")
    bash = dag.get_task("flag_future_timestamps")
    out.update(
        schedule=str(dag.timetable.expression), catchup=dag.catchup, max_active_runs=dag.max_active_runs,
        tasks=sorted(dag.task_ids), sensor_mode=sensor.mode, bash_command=bash.bash_command,
        scripts_dir=bash.env["PIPEKIT_SCRIPTS_DIR"], env=bash.env, upstream={t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        params=sorted(dag.params.keys()),
    )
print(json.dumps(out))
"""

_PARSE_TIME = r"""
import importlib.util, json, sys, time
import airflow.sdk, airflow.providers.standard.operators.bash  # the DAG processor has these loaded already
times = []
for i in range(5):
    spec = importlib.util.spec_from_file_location(f"customer_dag_{i}", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    start = time.perf_counter()
    spec.loader.exec_module(module)
    times.append(time.perf_counter() - start)
heavy = sorted(m for m in ("pandas", "pyarrow", "great_expectations", "pipekit", "numpy") if m in sys.modules)
print(json.dumps({"times": times, "heavy": heavy}))
"""


def _py(airflow_home, code: str, *args: str) -> dict:
    done = airflow_home.run([sys.executable, "-c", code, *args], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dagbag_imports_the_dag_without_errors_and_wiring_is_right(airflow_home):
    info = _py(airflow_home, _INSPECT, str(DAG_FILE.parent))
    errors = {k: v for k, v in info["import_errors"].items() if k.endswith("customer_pipeline.py")}
    assert errors == {}
    assert info["schedule"] == "0 * * * *"
    assert info["catchup"] is False and info["max_active_runs"] == 1
    assert set(info["tasks"]) == TASKS
    assert info["sensor_mode"] == "reschedule"
    # Not ending in ".sh": Airflow must not try to load the command as a Jinja template file.
    assert not info["bash_command"].rstrip().endswith(".sh")
    assert Path(info["scripts_dir"]) == SCRIPT.parent
    # env values are templated too: none may end in ".sh" or Airflow looks for a template file.
    assert not [v for v in info["env"].values() if v.rstrip().endswith(".sh")]
    assert info["upstream"]["publish"] == ["clean", "flag_future_timestamps", "ingest", "validate"]
    assert info["upstream"]["flag_future_timestamps"] == ["clean"]
    assert {"landing_dir", "output_dir", "backup_dir", "manifest", "now"} <= set(info["params"])


def test_dag_file_parses_fast_and_imports_nothing_heavy(airflow_home):
    info = _py(airflow_home, _PARSE_TIME, str(DAG_FILE))
    assert info["heavy"] == []
    assert sorted(info["times"])[2] < 0.5, info["times"]


def _write_customers(path: Path) -> None:
    """Messy sample rows plus rows with quoted commas/newlines and future timestamps with offsets."""
    from pipekit.sample import make_customers

    frame = make_customers(300, seed=7)[["id", "name", "email", "timestamp"]]
    extra = pd.DataFrame(
        [
            ["x1", "Smith, John", "John.Smith@Example.com", "2026-06-15T08:00:01-04:00"],
            ["x2", "Line\nBreak O'Neil", "line@example.org", "2030-01-01 00:00:00+05:30"],
            ["x3", 'Quote "Q" Person', "q@example.org", "2026-06-15T13:30:00+02:00"],
            ["x, 4", "comma id", "c@example.org", "2026-06-15T12:00:00.000001Z"],
        ],
        columns=["id", "name", "email", "timestamp"],
    )
    pd.concat([frame, extra]).to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)


@pytest.fixture
def customer_home(airflow_home, tmp_path):
    airflow_home.add_dag(DAG_FILE)
    # The copied DAG is not beside ../scripts any more: point it at the script explicitly.
    airflow_home.extra_env["PIPEKIT_SCRIPTS_DIR"] = str(SCRIPT.parent)
    base = tmp_path / "data"
    (base / "landing").mkdir(parents=True)
    return airflow_home, base


def test_happy_path_then_redelivery_is_skipped(customer_home):
    home, base = customer_home
    landing = base / "landing" / "customers.csv"
    _write_customers(landing)
    original = landing.read_bytes()
    sha = hashlib.sha256(original).hexdigest()
    conf = {"base_dir": str(base), "now": NOW}

    run = home.dag_test("customer_pipeline", conf)
    assert run.state == "success", run.log[-5000:]
    assert run.tasks == dict.fromkeys(TASKS, "success")

    # Backup: UTC-stamped name, same bytes, sha256 sidecar; landing file removed only after that.
    (backup,) = (base / "backups").glob("customers.*Z.csv")
    assert backup.read_bytes() == original
    assert (base / "backups" / f"{backup.name}.sha256").read_text().split()[0] == sha
    assert not landing.exists()

    entries = Manifest(base / "manifest.jsonl").entries()
    assert [e.event for e in entries] == ["ingested", "completed"]
    first = entries[0]
    assert (first.file_name, first.size_bytes, first.sha256) == ("customers.csv", len(original), sha)
    assert first.row_count == 304 and first.run_id.startswith("manual__") and first.ingested_at.endswith("Z")

    work = base / "output" / f"customers_{sha[:12]}"
    for name in ("cleaned.csv", "cleaned.parquet", "report.json", "gx.json", "gx.html", "future_ids.csv", "run.json"):
        assert (work / f"customers_{name}").is_file(), name
    run_report = json.loads((work / "customers_run.json").read_text())
    assert run_report["future_rows"]["agree"] is True
    assert run_report["counts"]["dropped_duplicate"] > 0 and run_report["counts"]["dropped_null"] > 0

    # The shell script's side file equals the core's is_future on the same cleaned CSV.
    cleaned = pd.read_csv(work / "customers_cleaned.csv", dtype=str, keep_default_na=False)
    recomputed, n_future, _ = flag_future(cleaned.drop(columns=["is_future"]), now=pd.Timestamp(NOW).to_pydatetime())
    core_ids = recomputed.loc[recomputed["is_future"].fillna(False).astype(bool), "id"].tolist()
    shell_ids = pd.read_csv(work / "customers_future_ids.csv", dtype=str, keep_default_na=False)["id"].tolist()
    assert shell_ids == core_ids and len(shell_ids) == n_future == run_report["future_rows"]["core"]
    assert {"x1", "x2", "x, 4"} <= set(shell_ids) and "x3" not in shell_ids
    # ...and equals the is_future column the engine wrote into the cleaned CSV.
    assert cleaned.loc[cleaned["is_future"].str.lower() == "true", "id"].tolist() == core_ids
    # Emails are masked in the output; names Title Cased.
    assert not cleaned["email"].str.contains("john.smith@", regex=False).any()
    assert "Smith, John" in set(cleaned["name"])

    # Re-delivery of identical bytes: skipped, not processed twice, landing cleaned up (backup verified).
    landing.write_bytes(original)
    again = home.dag_test("customer_pipeline", conf)
    assert again.state == "success", again.log[-5000:]
    assert again.tasks["wait_for_file"] == "success" and again.tasks["ingest"] == "skipped"
    assert all(again.tasks[t] == "skipped" for t in TASKS - {"wait_for_file", "ingest"})
    assert "was already processed" in again.log
    assert [e.event for e in Manifest(base / "manifest.jsonl").entries()] == ["ingested", "completed", "skipped_duplicate"]
    assert not landing.exists()
    assert len(list((base / "output").iterdir())) == 1


def test_no_file_skips_the_run_instead_of_failing(customer_home):
    home, base = customer_home
    home.extra_env["PIPEKIT_CUSTOMER_WAIT_SECONDS"] = "0"  # what the cron line sets: look once
    run = home.dag_test("customer_pipeline", {"base_dir": str(base)})
    assert run.state == "success", run.log[-3000:]
    assert run.tasks == dict.fromkeys(TASKS, "skipped")
    assert not (base / "manifest.jsonl").exists()


def test_file_missing_email_fails_validate_clearly_then_fixed_file_succeeds(customer_home):
    home, base = customer_home
    landing = base / "landing" / "customers.csv"
    landing.write_text('id,name,timestamp\n1,"Doe, Jane",2024-01-01\n')
    original = landing.read_bytes()
    conf = {"base_dir": str(base), "now": NOW}

    run = home.dag_test("customer_pipeline", conf)
    assert run.state == "failed"
    assert run.tasks["validate"] == "failed"
    assert run.tasks["ingest"] == "success" and run.tasks["clean"] == "upstream_failed"
    assert "required columns missing: email (found: id, name, timestamp)" in run.log
    assert "AirflowFailException" in run.log, "bad data must not be retried"
    assert landing.read_bytes() == original, "the landing file is untouched"
    (work,) = (base / "output").iterdir()
    assert "required columns missing" in (work / "customers_gx.html").read_text()
    assert not list(work.glob("*_cleaned.*"))
    assert [e.event for e in Manifest(base / "manifest.jsonl").entries()] == ["ingested"]

    # The sender fixes the export in place; the next run processes it.
    _write_customers(landing)
    fixed = home.dag_test("customer_pipeline", conf)
    assert fixed.state == "success", fixed.log[-5000:]
    assert not landing.exists()
    assert [e.event for e in Manifest(base / "manifest.jsonl").entries()] == ["ingested", "ingested", "completed"]
    assert len(list((base / "backups").glob("*.csv"))) == 2, "both deliveries are kept as backups"
