"""The customer DAG on real Airflow 3 (temporary AIRFLOW_HOME, SQLite): parse, happy path, duplicate, several
files in one run with a poison file rejected while the others are processed."""

from __future__ import annotations

import collections
import csv
import hashlib
import json
import os
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
STEPS = ("ingest", "validate", "clean", "flag_future_timestamps", "publish")
MAPPED = {f"process_file.{step}" for step in STEPS}
TASKS = {"list_files", *MAPPED}


def _file_tasks(index: int, state: str) -> dict[str, str]:
    """Every task of the ``index``-th mapped file in ``state``."""
    return {f"{task}[{index}]": state for task in MAPPED}

_INSPECT = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.get_dag("customer_pipeline")
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}}
if dag is not None:
    from airflow.sdk.bases.sensor import BaseSensorOperator
    import runpy
    dag_module = runpy.run_path(sys.argv[1] + "/customer_pipeline.py")
    out.update(
        schedule=str(dag.timetable.expression), catchup=dag.catchup, max_active_runs=dag.max_active_runs,
        tasks=sorted(dag.task_ids), mapped=sorted(t.task_id for t in dag.tasks if t.get_needs_expansion()),
        sensors=[t.task_id for t in dag.tasks if isinstance(t, BaseSensorOperator) or getattr(t, "deferrable", False)],
        scripts_dir=dag_module["_scripts_dir"](),
        upstream={t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        parallel={t.task_id: t.max_active_tis_per_dagrun for t in dag.tasks},
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
    # No waiting task holds the run (and so the only run slot): the run looks once, the schedule is the poll.
    assert info["sensors"] == []
    assert set(info["mapped"]) == MAPPED, "every file is its own mapped task instance"
    assert Path(info["scripts_dir"]) == SCRIPT.parent
    group = "process_file."
    assert info["upstream"][group + "ingest"] == ["list_files"]
    assert info["upstream"][group + "publish"] == [group + s for s in ("clean", "flag_future_timestamps", "ingest", "validate")]
    assert info["upstream"][group + "flag_future_timestamps"] == [group + "clean"]
    assert info["parallel"][group + "validate"] == info["parallel"][group + "clean"] == 2
    assert {"landing_dir", "output_dir", "backup_dir", "manifest", "rejected_dir", "quarantine_dir", "bad_rows",
            "now"} <= set(info["params"])


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
    assert run.tasks == {"list_files": "success", **_file_tasks(0, "success")}

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
    # Honest reports: the gate passed (raw-file problems are a profile), the source is the verified backup.
    assert run_report["quality"]["gate"] == "PASS"
    page = (work / "customers_gx.html").read_text()
    assert "Gate (required columns): PASSED" in page and f"Source: <code>{backup}</code>" in page
    assert "great_expectations._docs_decorators" not in run.log, "GX registration noise stays out of task logs"
    # Every output (the shell script's side file too) gets the mode the umask gives.
    modes = {f.name: f.stat().st_mode & 0o777 for f in work.iterdir() if f.is_file()}
    assert len(set(modes.values())) == 1, modes
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
    assert again.tasks == {"list_files": "success", **_file_tasks(0, "skipped")}
    assert "is the content of customers.csv" in again.log
    assert [e.event for e in Manifest(base / "manifest.jsonl").entries()] == ["ingested", "completed", "skipped_duplicate"]
    assert not landing.exists()
    assert len(list((base / "output").iterdir())) == 1


def test_no_file_skips_the_run_instead_of_failing(customer_home):
    home, base = customer_home
    run = home.dag_test("customer_pipeline", {"base_dir": str(base)})
    assert run.state == "success", run.log[-3000:]
    assert run.tasks == dict.fromkeys(TASKS, "skipped")
    assert "no settled file matching *.csv in" in run.log
    assert not (base / "manifest.jsonl").exists()


BAD = (  # no email column; raw PII in other columns must not reach the reason file
    "id,name,e_mail_backup,timestamp\n"
    '1,"Doe, Jane",jane.secret@example.com,2024-01-01\n'
    "2,,bob.hidden@example.org,not a date\n"
)
SMALL = (
    "id,name,email,timestamp\n"
    '1,"smith, john",John.Smith@Example.com,2030-01-01T00:00:00+02:00\n'
    "2,ann,ann@example.org,2020-01-01\n"
)


def test_one_run_takes_every_settled_file_and_a_poison_file_is_rejected_without_blocking(customer_home):
    home, base = customer_home
    landing = base / "landing"
    # d's name is a Jinja expression: the bash step's command is a template, so data must never reach it.
    good, copy, bad, other = (landing / n for n in ("a_good.csv", "b_copy.csv", "c_bad.csv", "d_{{ 6 }}.csv"))
    _write_customers(good)
    copy.write_bytes(good.read_bytes())
    bad.write_text(BAD)
    other.write_text(SMALL)
    for age, path in enumerate((good, copy, bad, other)):  # arrival order = mtime order: a, b, c, d
        os.utime(path, (1_700_000_000 + age, 1_700_000_000 + age))
    sha = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in (good, bad, other)}
    conf = {"base_dir": str(base), "now": NOW}

    run = home.dag_test("customer_pipeline", conf)
    # Red, for the bad file only: its validate failed (no retry), its later steps never ran; the others went on.
    assert run.state == "failed"
    # a_good.csv and b_copy.csv hold the same bytes: whichever instance ingests first is processed, the other
    # is skipped (instances of one run need not run in map-index order).
    winner = 0 if run.tasks.get("process_file.publish[0]") == "success" else 1
    assert run.tasks == {
        "list_files": "success",
        **_file_tasks(winner, "success"),
        **_file_tasks(1 - winner, "skipped"),
        **_file_tasks(2, "upstream_failed"), "process_file.ingest[2]": "success", "process_file.validate[2]": "failed",
        **_file_tasks(3, "success"),
    }, run.log[-5000:]
    assert "required columns missing: email (found: id, name, e_mail_backup, timestamp)" in run.log
    assert "AirflowFailException" in run.log, "bad data must not be retried"
    assert list(landing.iterdir()) == []

    (rejected,) = (base / "rejected").glob("c_bad.csv.*Z")
    assert rejected.read_text() == BAD
    reason_file = rejected.with_name(rejected.name + ".reason.json")
    text = reason_file.read_text()
    reason = json.loads(text)
    assert (reason["stage"], reason["gate"], reason["missing_columns"], reason["rows"]) == ("validate", "FAIL", ["email"], 2)
    assert reason["sha256"] == sha["c_bad"] and reason["rejected_path"] == str(rejected)
    for raw in ("jane.secret", "bob.hidden", "Doe", "Jane"):
        assert raw not in text, raw

    # One ingest (one backup, one "ingested" line) per content; each content ends completed or rejected.
    entries = Manifest(base / "manifest.jsonl").entries()
    events = collections.defaultdict(list)
    for e in entries:
        events[e.sha256].append(e.event)
    assert sorted(events[sha["a_good"]]) == ["completed", "ingested", "skipped_duplicate"]
    assert events[sha["c_bad"]] == ["ingested", "rejected"]
    assert events[sha["d_{{ 6 }}"]] == ["ingested", "completed"]
    assert len(list((base / "backups").glob("*.csv"))) == 3
    for name in (("a_good", "b_copy")[winner], "d_{{ 6 }}"):
        (work,) = (base / "output").glob(f"{name}_*")
        assert json.loads((work / f"{name}_run.json").read_text())["future_rows"]["agree"] is True

    # The same bad bytes again (the sender retries): rejected again at ingest, no new backup or manifest line.
    lines = (base / "manifest.jsonl").read_text()
    (landing / "c_bad_again.csv").write_text(BAD)
    again = home.dag_test("customer_pipeline", conf)
    assert again.state == "failed"
    assert again.tasks == {"list_files": "success", **_file_tasks(0, "upstream_failed"),
                           "process_file.ingest[0]": "failed"}, again.log[-5000:]
    assert "was rejected before" in again.log
    assert (base / "manifest.jsonl").read_text() == lines
    assert len(list((base / "backups").glob("*.csv"))) == 3
    (second,) = (base / "rejected").glob("c_bad_again.csv.*Z")
    assert json.loads(second.with_name(second.name + ".reason.json").read_text())["previously_rejected"]["run_id"]
    assert list(landing.iterdir()) == []
