"""Ingest: manifest facts, append-only JSON lines, verified backups, duplicates skipped, nothing deleted unsafely."""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipekit.errors import StorageError
from pipekit.io.ingest import (
    Manifest,
    backup_file,
    backup_name,
    complete_ingest,
    count_csv_rows,
    find_landing_files,
    ingest_file,
    reject_file,
    remove_landing_file,
    verify_backup,
)

CSV = 'id,name,email,timestamp\n1,"Smith, Jo",jo@x.com,2024-01-01\n2,"multi\nline",a@b.co,2024-01-02\n'


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    landing = tmp_path / "landing"
    landing.mkdir()
    src = landing / "customers.csv"
    src.write_text(CSV)
    return {"src": src, "manifest": tmp_path / "manifest.jsonl", "backups": tmp_path / "backups"}


def test_manifest_entry_has_the_facts_and_backup_is_verified(layout):
    now = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    result = ingest_file(layout["src"], manifest_path=layout["manifest"], backup_dir=layout["backups"],
                         run_id="run-1", now=now)
    entry = result.entry
    assert result.status == "new"
    assert entry.file_name == "customers.csv"
    assert entry.size_bytes == len(CSV.encode())
    assert entry.sha256 == hashlib.sha256(CSV.encode()).hexdigest()
    assert entry.row_count == 2  # the quoted newline is one record
    assert entry.run_id == "run-1" and entry.ingested_at == "2026-01-02T03:04:05.123456Z"
    assert entry.source_mtime.endswith("Z")
    backup = Path(entry.backup_path)
    assert backup.name == "customers.20260102T030405123456Z.csv"
    assert backup.read_text() == CSV and verify_backup(backup, entry.sha256)
    assert backup.with_name(backup.name + ".sha256").read_text() == f"{entry.sha256}  {backup.name}\n"
    lines = layout["manifest"].read_text().splitlines()
    assert [json.loads(x)["event"] for x in lines] == ["ingested"]
    assert layout["src"].read_text() == CSV, "ingest never modifies the landing file"
    assert json.loads(json.dumps(result.to_dict()))["entry"]["sha256"] == entry.sha256


def test_retry_in_same_run_reuses_entry_and_backup(layout):
    kw = {"manifest_path": layout["manifest"], "backup_dir": layout["backups"], "run_id": "run-1"}
    first = ingest_file(layout["src"], **kw)
    again = ingest_file(layout["src"], **kw)
    assert again.entry == first.entry
    assert len(layout["manifest"].read_text().splitlines()) == 1
    assert len(list(layout["backups"].glob("*.csv"))) == 1


def test_completed_content_is_a_skipped_duplicate_and_only_then_removed(layout):
    kw = {"manifest_path": layout["manifest"], "backup_dir": layout["backups"]}
    first = ingest_file(layout["src"], run_id="run-1", **kw)
    complete_ingest(first.entry, manifest_path=layout["manifest"], outputs={"cleaned_csv": "x.csv"})
    assert not layout["src"].exists(), "removed after a verified backup"
    # The same bytes delivered again under another name are recognised by sha256.
    redelivered = layout["src"].with_name("customers_resent.csv")
    redelivered.write_text(CSV)
    dup = ingest_file(redelivered, run_id="run-2", **kw)
    assert dup.status == "duplicate" and dup.previous.run_id == "run-1"
    assert not redelivered.exists()
    events = [e.event for e in Manifest(layout["manifest"])]
    assert events == ["ingested", "completed", "skipped_duplicate"]
    assert Manifest(layout["manifest"]).completed(first.entry.sha256).outputs["cleaned_csv"] == "x.csv"


def test_duplicate_whose_old_backup_is_gone_gets_a_new_backup_before_removal(layout):
    kw = {"manifest_path": layout["manifest"], "backup_dir": layout["backups"]}
    first = ingest_file(layout["src"], run_id="run-1", **kw)
    complete_ingest(first.entry, manifest_path=layout["manifest"], outputs={})
    Path(first.entry.backup_path).unlink()
    layout["src"].write_text(CSV)
    time.sleep(0.001)
    dup = ingest_file(layout["src"], run_id="run-2", **kw)
    assert dup.status == "duplicate"
    assert verify_backup(dup.entry.backup_path, first.entry.sha256)
    assert not layout["src"].exists()


def test_no_delete_without_a_matching_backup(layout, tmp_path):
    sha = hashlib.sha256(CSV.encode()).hexdigest()
    with pytest.raises(StorageError, match="backup"):
        remove_landing_file(layout["src"], tmp_path / "missing.csv", sha)
    bad = tmp_path / "bad.csv"
    bad.write_text("tampered")
    with pytest.raises(StorageError, match="checksum"):
        remove_landing_file(layout["src"], bad, sha)
    good = backup_file(layout["src"], layout["backups"], sha256=sha)
    layout["src"].write_text(CSV + "3,new,n@x.com,2024-01-03\n")  # a new delivery with the same name
    with pytest.raises(StorageError, match="changed"):
        remove_landing_file(layout["src"], good, sha)
    assert layout["src"].exists()


def test_complete_refuses_when_backup_is_damaged(layout):
    first = ingest_file(layout["src"], manifest_path=layout["manifest"], backup_dir=layout["backups"], run_id="r")
    Path(first.entry.backup_path).write_text("corrupted")
    with pytest.raises(StorageError, match="does not match"):
        complete_ingest(first.entry, manifest_path=layout["manifest"], outputs={})
    assert layout["src"].read_text() == CSV
    assert [e.event for e in Manifest(layout["manifest"])] == ["ingested"]


def test_backup_checksum_mismatch_leaves_no_copy(layout):
    with pytest.raises(StorageError, match="changed while it was copied"):
        backup_file(layout["src"], layout["backups"], sha256="0" * 64)
    assert not any(layout["backups"].iterdir())


def test_manifest_tolerates_torn_lines_and_rejects_foreign_entries(tmp_path, caplog):
    path = tmp_path / "m.jsonl"
    m = Manifest(path)
    src = tmp_path / "a.csv"
    src.write_text(CSV)
    entry = ingest_file(src, manifest_path=path, backup_dir=tmp_path / "b", run_id="r").entry
    with open(path, "a") as fh:
        fh.write('{"event": "ingest')  # crash mid-append
    assert m.entries() == [entry]
    m.append(entry)  # the next append starts on a fresh line
    assert m.entries() == [entry, entry]
    assert "line 2 is a partial write" in caplog.text
    path.write_text(json.dumps({"hello": 1}) + "\n" + json.dumps(entry.to_dict()) + "\n")
    with pytest.raises(StorageError, match="line 1"):
        m.entries()


def test_find_landing_files_oldest_first_skips_hidden_in_flight_and_fresh(tmp_path):
    for name, age in [("b.csv", 100), ("a.csv", 200), (".hidden.csv", 300), ("c.csv.part", 300), ("new.csv", 0)]:
        p = tmp_path / name
        p.write_text("id\n")
        t = time.time() - age
        os.utime(p, (t, t))
    names = [p.name for p in find_landing_files(tmp_path, "*.csv", settle_seconds=10)]
    assert names == ["a.csv", "b.csv"]
    assert "new.csv" in [p.name for p in find_landing_files(tmp_path, "*.csv")]
    assert find_landing_files(tmp_path / "nope") == []


def test_count_rows_and_backup_name(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    assert count_csv_rows(p) == 0
    p.write_text("id\n")
    assert count_csv_rows(p) == 0
    assert backup_name(Path("x/cust.v2.csv"), datetime(2026, 1, 1, tzinfo=UTC)) == "cust.v2.20260101T000000000000Z.csv"


def test_one_content_is_ingested_once_whatever_the_name_run_or_retry(layout):
    kw = {"manifest_path": layout["manifest"], "backup_dir": layout["backups"]}
    twin = layout["src"].with_name("twin.csv")
    twin.write_text(CSV)
    first = ingest_file(layout["src"], run_id="run-1", **kw)
    # A later run (the first failed half-way, the file is still there) reuses the entry and backup.
    assert ingest_file(layout["src"], run_id="run-2", **kw) == first
    # The same bytes under another name while the first waits: a skipped duplicate, removed.
    dup = ingest_file(twin, run_id="run-2", **kw)
    assert dup.status == "duplicate" and dup.previous == first.entry and not twin.exists()
    assert dup.entry.backup_path == first.entry.backup_path
    assert len(list(layout["backups"].glob("*.csv"))) == 1
    assert [e.event for e in Manifest(layout["manifest"])] == ["ingested", "skipped_duplicate"]


def test_rejected_content_is_reported_and_recorded_once(layout, tmp_path):
    kw = {"manifest_path": layout["manifest"], "backup_dir": layout["backups"]}
    first = ingest_file(layout["src"], run_id="run-1", **kw)
    done = reject_file(first.entry, manifest_path=layout["manifest"], rejected_dir=tmp_path / "rejected",
                       reason={"stage": "validate", "reason": "required columns missing: email"},
                       now=datetime(2026, 1, 2, tzinfo=UTC))
    assert done.recorded and done.rejected_path == tmp_path / "rejected" / "customers.csv.20260102T000000000000Z"
    assert done.rejected_path.read_text() == CSV and not layout["src"].exists()
    assert json.loads(done.reason_path.read_text())["reason"] == "required columns missing: email"
    layout["src"].write_text(CSV)
    again = ingest_file(layout["src"], run_id="run-2", **kw)
    assert again.status == "rejected" and again.previous.outputs["reason_path"] == str(done.reason_path)
    assert [e.event for e in Manifest(layout["manifest"])] == ["ingested", "rejected"]
    assert layout["src"].exists(), "ingest decides; the caller moves the file aside"
