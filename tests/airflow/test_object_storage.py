"""The customer job with ``base_dir=s3://bucket/prefix``, against the offline twin's S3 (a moto server process).

Same guarantees as a local base folder: one manifest record per event, backup-then-delete (sha256
checked), outputs published whole (run report last), same content -> same ingest, poison files to
``rejected/`` with a reason, and a crash between backup and delete loses nothing and duplicates nothing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pipekit.customer_pipeline import CustomerPipelineConfig, run_once
from pipekit.errors import StorageError, ValidationError
from pipekit.io import manifest as manifest_mod
from pipekit.io import storage
from pipekit.io.manifest import Manifest, ManifestConflict, ManifestEntry
from pipekit.io.storage import S3Location

pytest.importorskip("great_expectations")
pytest.importorskip("moto")

REPO = Path(__file__).resolve().parents[2]
PIPEKIT = Path(sys.executable).parent / "pipekit"
CSV = (
    "id,name,email,timestamp\n"
    '1,"smith, john",John.Smith@Example.com,2030-01-01T00:00:00+02:00\n'
    '2,"ann\nmarie",ann@example.org,2020-01-01\n'
    '2,"ann\nmarie",ann@example.org,2020-01-01\n'
    "3,,nobody@example.org,2020-01-01\n"
)
BAD = 'id,name,timestamp,contact\n1,"Doe, Jane",2024-01-01,jane.secret@example.com\n'
NOW = "2026-06-15T12:00:00Z"


def _twin_helper() -> ModuleType:
    """tests/local/_etl_twin.py under the name tests/aws's conftest uses, so one session shares one twin."""
    name = "pipekit_tests_etl_twin"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "local" / "_etl_twin.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def s3_twin(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The session's twin server (only its S3 is used here; no stack is provisioned)."""
    return _twin_helper().get_server(tmp_path_factory.getbasetemp() / "etl-twin")


@pytest.fixture()
def base(s3_twin: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Location]:
    """``s3://<fresh bucket>/customers`` with boto3 (and subprocesses) pointed at the twin."""
    helper = _twin_helper()
    helper.apply_env(monkeypatch, helper.EtlTwin(s3_twin, {}))
    bucket = f"pipekit-os-{uuid.uuid4().hex[:12]}"
    storage._s3().create_bucket(Bucket=bucket)
    yield S3Location(bucket, "customers")


def _config(base: S3Location, **extra: Any) -> CustomerPipelineConfig:
    return CustomerPipelineConfig.resolve({"base_dir": str(base), "now": NOW, **extra}, env={})


def _keys(where: S3Location) -> list[str]:
    return [k[len(where.prefix):] for k in storage.list_keys(where)]


def _events(cfg: CustomerPipelineConfig) -> list[str]:
    return [e.event for e in Manifest(cfg.manifest_path)]


def _drop(cfg: CustomerPipelineConfig, name: str, text: str) -> S3Location:
    where = cfg.landing_dir / name
    assert isinstance(where, S3Location)
    storage._s3().put_object(Bucket=where.bucket, Key=where.key, Body=text.encode())
    return where


def test_config_keeps_s3_urls_and_puts_the_manifest_under_a_prefix(base: S3Location) -> None:
    cfg = _config(base)
    assert str(cfg.landing_dir) == f"{base}/landing" and str(cfg.manifest_path) == f"{base}/manifest"
    assert json.loads(json.dumps(cfg.to_dict()))["backup_dir"] == f"{base}/backups"


def test_good_file_is_processed_then_redelivery_is_skipped_without_a_second_backup(base: S3Location) -> None:
    cfg = _config(base)
    assert run_once(cfg)["status"] == "no_file"
    landing = _drop(cfg, "customers.csv", CSV)
    sha = storage.sha256(landing)

    run = run_once(cfg)

    assert run["status"] == "completed" and run["sha256"] == sha
    assert not storage.is_file(landing)  # removed once the backup was verified
    backup = storage.location(run["backup"])
    assert isinstance(backup, S3Location) and backup.key.startswith(f"{base.key}/backups/customers.")
    assert storage.sha256(backup) == sha
    assert storage.read_bytes(backup.with_name(backup.name + ".sha256")).decode() == f"{sha}  {backup.name}\n"
    work = f"output/customers_{sha[:12]}/"
    assert set(_keys(base)) >= {work + n for n in (
        "customers_cleaned.csv", "customers_cleaned.parquet", "customers_report.json", "customers_gx.json",
        "customers_gx.html", "customers_future_ids.csv", "customers_run.json")}
    report = json.loads(storage.read_bytes(storage.location(run["run_report"])))
    assert report["outputs"]["cleaned_csv"] == f"{base}/{work}customers_cleaned.csv"
    assert report["future_rows"] == {"shell_script": 1, "core": 1, "agree": True}
    cleaned = storage.read_bytes(storage.location(run["outputs"]["cleaned_csv"])).decode()
    assert '"Smith, John","j***@example.com"' in cleaned and cleaned.count("\n") == 3  # header + 2 rows
    # One object per manifest record, numbered in order.
    assert _keys(cfg.manifest_path) == ["00000000000000000000.json", "00000000000000000001.json"]
    assert _events(cfg) == ["ingested", "completed"]

    again = _drop(cfg, "again.csv", CSV)
    skipped = run_once(cfg)

    assert skipped["status"] == "duplicate" and not storage.is_file(again)
    assert _events(cfg) == ["ingested", "completed", "skipped_duplicate"]
    assert [k for k in _keys(cfg.backup_dir) if k.endswith(".csv")] == [backup.name]


def test_bad_file_is_rejected_with_a_reason_and_a_redelivery_adds_nothing(base: S3Location) -> None:
    cfg = _config(base)
    landing = _drop(cfg, "bad.csv", BAD)

    with pytest.raises(ValidationError, match="required columns missing: email"):
        run_once(cfg)

    assert not storage.is_file(landing)
    names = _keys(cfg.rejected_dir)
    (moved,) = [n for n in names if not n.endswith(".reason.json")]
    assert moved.startswith("bad.csv.") and f"{moved}.reason.json" in names
    assert storage.read_bytes(cfg.rejected_dir / moved).decode() == BAD
    reason_text = storage.read_bytes(cfg.rejected_dir / f"{moved}.reason.json").decode()
    reason = json.loads(reason_text)
    assert (reason["gate"], reason["missing_columns"], reason["stage"]) == ("FAIL", ["email"], "validate")
    assert "jane.secret" not in reason_text and "Doe" not in reason_text
    assert _events(cfg) == ["ingested", "rejected"]

    _drop(cfg, "bad.csv", BAD)
    with pytest.raises(ValidationError, match="was rejected before"):
        run_once(cfg)
    assert _events(cfg) == ["ingested", "rejected"]
    assert len([k for k in _keys(cfg.backup_dir) if k.endswith(".csv")]) == 1


def test_crash_between_backup_and_delete_loses_nothing_and_duplicates_nothing(
    base: S3Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(base)
    landing = _drop(cfg, "customers.csv", CSV)
    real_delete = storage.delete

    def dies_on_landing(where: storage.Location) -> None:
        if where == landing:
            raise SystemExit("killed between the verified backup and the delete")
        real_delete(where)

    monkeypatch.setattr(storage, "delete", dies_on_landing)
    with pytest.raises(SystemExit):
        run_once(cfg)
    monkeypatch.setattr(storage, "delete", real_delete)
    assert storage.is_file(landing) and _events(cfg) == ["ingested", "completed"]

    rerun = run_once(cfg)

    assert rerun["status"] == "duplicate" and not storage.is_file(landing)
    assert _events(cfg) == ["ingested", "completed", "skipped_duplicate"]
    backups = [k for k in _keys(cfg.backup_dir) if k.endswith(".csv")]
    assert len(backups) == 1 and storage.sha256(cfg.backup_dir / backups[0]) == rerun["entry"]["sha256"]


def test_crash_after_the_backup_reuses_it_on_the_rerun(base: S3Location, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipekit import customer_pipeline

    cfg = _config(base)
    landing = _drop(cfg, "customers.csv", CSV)

    def dies(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("worker lost during clean")

    with monkeypatch.context() as patched:
        patched.setattr(customer_pipeline, "clean", dies)
        with pytest.raises(SystemExit):
            run_once(cfg)
    assert storage.is_file(landing) and _events(cfg) == ["ingested"]

    assert run_once(cfg)["status"] == "completed"
    assert _events(cfg) == ["ingested", "completed"] and not storage.is_file(landing)
    assert len([k for k in _keys(cfg.backup_dir) if k.endswith(".csv")]) == 1


def _entry(n: int) -> ManifestEntry:
    return ManifestEntry(event="ingested", file_name=f"f{n}.csv", source_path=f"s3://x/f{n}.csv", size_bytes=n,
                         sha256=f"{n:064x}", row_count=n, source_mtime="t", ingested_at="t", run_id="r")


def test_two_writers_appending_at_once_lose_and_duplicate_no_record(base: S3Location) -> None:
    where = base / "manifest"
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            manifest = Manifest(str(where))  # its own instance, as another worker would have
            for n in range(offset, offset + 15):
                manifest.append(_entry(n))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    manifest_mod._RECORDS.clear()  # read every record back from S3, not from this process's cache
    names = [e.file_name for e in Manifest(str(where))]
    assert sorted(names) == sorted(f"f{n}.csv" for k in range(2) for n in range(k * 100, k * 100 + 15))
    assert _keys(where) == [f"{n:020d}.json" for n in range(30)]


def test_a_decision_on_a_stale_manifest_is_taken_again(base: S3Location) -> None:
    where = base / "manifest"
    manifest, other = Manifest(str(where)), Manifest(str(where))
    with pytest.raises(ManifestConflict), manifest.locked():
        other.append(_entry(1))  # another worker appends after this one read the manifest
        manifest.append(_entry(2))
    assert [e.file_name for e in Manifest(str(where))] == ["f1.csv"]


def test_an_unreadable_record_is_skipped_and_its_number_stays_taken(base: S3Location) -> None:
    where = base / "manifest"
    storage.write_bytes(where / f"{0:020d}.json", b'{"event": "ingest')  # torn by hand
    Manifest(str(where)).append(_entry(1))
    assert _keys(where) == [f"{0:020d}.json", f"{1:020d}.json"]
    assert [e.file_name for e in Manifest(str(where))] == ["f1.csv"]


def test_two_workers_ingesting_one_content_at_once_make_one_backup(base: S3Location) -> None:
    from pipekit.io.ingest import ingest_file

    cfg = _config(base)
    sources = [_drop(cfg, name, CSV) for name in ("a.csv", "b.csv")]
    start, results, errors = threading.Barrier(2), [], []

    def worker(source: S3Location) -> None:
        try:
            start.wait()
            results.append(ingest_file(str(source), manifest_path=str(cfg.manifest_path),
                                       backup_dir=str(cfg.backup_dir), run_id="r").status)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors and sorted(results) == ["duplicate", "new"]
    assert sorted(_events(cfg)) == ["ingested", "skipped_duplicate"]
    # A worker whose append was refused (the other wrote first) dropped the backup it had made.
    assert len([k for k in _keys(cfg.backup_dir) if k.endswith(".csv")]) == 1


def test_cli_run_customer_on_s3(base: S3Location, tmp_path: Path) -> None:
    cfg = _config(base)
    landing = _drop(cfg, "customers.csv", CSV)
    cmd = [str(PIPEKIT), "airflow", "run-customer", "--base-dir", str(base), "--now", NOW, "--json"]

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "completed" and report["run_report"].startswith(f"{base}/output/customers_")
    assert not storage.is_file(landing) and _events(cfg) == ["ingested", "completed"]
    assert not any(tmp_path.iterdir())  # nothing was written locally

    _drop(cfg, "customers.csv", BAD)
    refused = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert refused.returncode == 1 and "required columns missing: email" in refused.stderr
    assert _events(cfg) == ["ingested", "completed", "ingested", "rejected"]


def test_unreachable_bucket_is_a_storage_error(base: S3Location) -> None:
    cfg = _config(S3Location(f"{base.bucket}-missing", "customers"))
    with pytest.raises(StorageError, match="listing s3://"):
        run_once(cfg)


def test_quarantined_rows_go_to_the_private_prefix_not_output(base: S3Location) -> None:
    cfg = _config(base, bad_rows="quarantine")
    _drop(cfg, "customers.csv", CSV + "4,short,x@y.z\n")  # one field short

    run = run_once(cfg)

    assert run["counts"]["quarantined"] == 1
    (private,) = _keys(cfg.quarantine_dir)
    assert private.endswith("_quarantine.csv") and "4,short,x@y.z" in storage.read_bytes(cfg.quarantine_dir / private).decode()
    assert not [k for k in _keys(cfg.output_dir) if "quarantine" in k]


# --- the DAG -------------------------------------------------------------------------------------------

DAG_FILE = REPO / "adapters" / "airflow" / "dags" / "customer_pipeline.py"
SCRIPT = REPO / "adapters" / "airflow" / "scripts" / "flag_future_timestamps.sh"
@pytest.mark.airflow
def test_dag_maps_files_on_s3(base: S3Location, airflow_home: Any) -> None:
    airflow_home.dags_folder.mkdir(parents=True, exist_ok=True)
    (airflow_home.dags_folder / DAG_FILE.name).write_text(DAG_FILE.read_text())  # the DAG as shipped
    airflow_home.extra_env["PIPEKIT_SCRIPTS_DIR"] = str(SCRIPT.parent)
    cfg = _config(base)
    good, bad = _drop(cfg, "customers.csv", CSV), _drop(cfg, "zz_bad.csv", BAD)

    run = airflow_home.dag_test("customer_pipeline", {"base_dir": str(base), "now": NOW})

    steps = ("ingest", "validate", "clean", "flag_future_timestamps", "publish")
    assert run.tasks["list_files"] == "success", run.log[-5000:]
    assert {run.tasks[f"process_file.{s}[0]"] for s in steps} == {"success"}, run.log[-5000:]
    assert run.tasks["process_file.validate[1]"] == "failed" and run.state == "failed"
    assert not storage.is_file(good) and not storage.is_file(bad)
    assert sorted(_events(cfg)) == ["completed", "ingested", "ingested", "rejected"]
    assert any(k.endswith("customers_run.json") for k in _keys(cfg.output_dir))
    assert any(k.endswith(".reason.json") for k in _keys(cfg.rejected_dir))
