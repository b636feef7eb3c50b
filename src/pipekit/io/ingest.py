"""Landing-file pickup: sha256 manifest (append-only JSON lines), verified backups, safe removal.

The contract that keeps re-runs safe:

* a landing file is backed up (copy + sha256 re-check) before anything else touches it;
* nothing in the landing directory is deleted unless its backup exists and its checksum matches;
* a file whose sha256 already has a ``completed`` manifest entry is a re-delivery: it is skipped;
* one content (sha256) is ingested once: a retry, a later run or a second copy landing beside it reuses
  the first ``ingested`` entry and its verified backup, never a second copy;
* a file that cannot be processed is moved to ``rejected/`` with a ``.reason.json``; its content gets one
  ``rejected`` line, and a re-delivery of that content is moved there again without another line;
* the manifest is only ever appended to, one JSON object per line, under an exclusive lock.

Every folder may also be an S3 prefix (``s3://bucket/prefix``, see :mod:`pipekit.io.storage`): a landing
object is read through a private scratch copy on this worker, backups are uploaded whole and re-read to
check their sha256, and the manifest is one object per record (see :mod:`pipekit.io.manifest`). Its
read-decide-append is optimistic there: if another writer appended since the manifest was read, the
decision is thrown away (with any backup it made) and taken again.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pipekit.errors import InputError, StorageError
from pipekit.io import storage
from pipekit.io.atomic import atomic_path, sha256_file
from pipekit.io.manifest import (
    ATTEMPTS,
    Event,
    Manifest,
    ManifestConflict,
    ManifestEntry,
    PathLike,
    _iso,
    _utc,
    gave_up,
)
from pipekit.io.storage import Location

__all__ = [
    "Event", "IngestResult", "Manifest", "ManifestEntry", "Rejection", "backup_file", "backup_name", "complete_ingest",
    "count_csv_rows", "describe_file", "find_landing_files", "ingest_file", "reject_file", "rejected_name",
    "remove_landing_file", "verify_backup",
]

log = logging.getLogger(__name__)

#: Names never picked up from a landing directory: hidden files and in-flight uploads.
_IN_FLIGHT_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")

@dataclass(frozen=True)
class IngestResult:
    """What ``ingest_file`` decided: ``new`` (process it), ``duplicate`` (done or in flight: skipped) or
    ``rejected`` (this content was refused before: ``previous`` is that ``rejected`` entry; nothing appended)."""

    status: Literal["new", "duplicate", "rejected"]
    entry: ManifestEntry
    previous: ManifestEntry | None = None

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-able dict (XCom-sized)."""
        return {
            "status": self.status,
            "entry": self.entry.to_dict(),
            "previous": self.previous.to_dict() if self.previous else None,
        }


def find_landing_files(
    landing_dir: PathLike,
    pattern: str = "*.csv",
    *,
    settle_seconds: float = 0.0,
    now: datetime | None = None,
) -> list[Location]:
    """Files in ``landing_dir`` matching ``pattern``, oldest first; skips hidden, in-flight and too-fresh files."""
    cutoff = _utc(now).timestamp() - settle_seconds
    found: list[tuple[float, str, Location]] = []
    for item in storage.list_files(storage.location(landing_dir), pattern):
        name = item.name
        if name.startswith(".") or name.lower().endswith(_IN_FLIGHT_SUFFIXES):
            continue
        mtime = item.mtime.timestamp()
        # A file modified in the last few seconds may still be being written by the sender.
        if mtime > cutoff:
            continue
        found.append((mtime, name, item.location))
    return [p for _, _, p in sorted(found, key=lambda t: (t[0], t[1]))]


def count_csv_rows(path: str | os.PathLike[str], encoding: str = "utf-8") -> int:
    """Data rows in a CSV (header excluded), counting quoted newlines correctly; 0 for an empty file."""
    try:
        with open(path, encoding=encoding, errors="replace", newline="") as fh:
            rows = sum(1 for _ in csv.reader(fh))
    except csv.Error as exc:
        raise InputError(
            f"{path}: not readable as CSV: {exc}", hint="check the file is a CSV export"
        ) from exc
    return max(rows - 1, 0)


def backup_name(source: Location, at: datetime) -> str:
    """``customers.csv`` -> ``customers.20261124T004900123456Z.csv`` (UTC, sortable, no ``:`` for portability)."""
    stamp = _utc(at).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{source.stem}.{stamp}{source.suffix}"


def verify_backup(backup: PathLike, sha256: str) -> bool:
    """True when ``backup`` exists and its sha256 is ``sha256`` (an S3 backup is re-read in full)."""
    return storage.has_sha256(storage.location(backup), sha256)


@contextlib.contextmanager
def _local(source: Location) -> Iterator[Path]:
    """``source`` as a local file: itself, or (S3) a private scratch download, one consistent version of it."""
    if isinstance(source, Path):
        yield source
        return
    with storage.scratch_dir("landing") as tmp:
        yield storage.download(source, tmp / source.name)


def backup_file(
    source: PathLike,
    backup_dir: PathLike,
    *,
    sha256: str,
    at: datetime | None = None,
) -> Location:
    """Copy ``source`` into ``backup_dir`` with a UTC timestamp in its name, re-read it and check its sha256.

    Also writes ``<backup>.sha256`` in ``sha256sum`` format so operators can run ``sha256sum -c``.
    The copy is atomic (temp name, fsync, rename; one PutObject on S3); a checksum mismatch deletes the
    copy and raises StorageError.
    """
    src = storage.location(source)
    with _local(src) as local:
        return _backup(local, src, storage.location(backup_dir), sha256=sha256, at=at)


def _backup(local: Path, src: Location, backup_dir: Location, *, sha256: str, at: datetime | None) -> Location:
    """Back up the local copy ``local`` of ``src`` (see :func:`backup_file`)."""
    changed = StorageError(
        f"backup of {src} does not have the sha256 {sha256} it was ingested with: the file changed while it was copied",
        hint="wait until the sender has finished writing the file, then re-run",
    )
    target = backup_dir / backup_name(src, at or datetime.now(UTC))
    sidecar = target.with_name(target.name + ".sha256")
    if isinstance(target, Path):
        with atomic_path(target) as tmp:
            shutil.copyfile(local, tmp)
            if sha256_file(tmp) != sha256:
                raise changed
        shutil.copystat(local, target)
    else:
        if sha256_file(local) != sha256:
            raise changed
        storage.upload(local, target, sha256_hex=sha256)
        if not storage.has_sha256(target, sha256):  # re-read what S3 holds, as the local copy is re-read
            storage.delete(target)
            raise changed
    storage.write_text(sidecar, f"{sha256}  {target.name}\n")
    return target


def _drop_backup(backup: Location) -> None:
    """Remove a backup this process made but could not record (a lost S3 manifest race)."""
    storage.delete(backup)
    storage.delete(backup.with_name(backup.name + ".sha256"))


def remove_landing_file(source: PathLike, backup: PathLike, sha256: str) -> None:
    """Delete ``source`` only if ``backup`` exists with checksum ``sha256`` and ``source`` still has that content."""
    src = storage.location(source)
    if not storage.is_file(src):
        return
    if not verify_backup(backup, sha256):
        raise StorageError(
            f"refusing to delete {src}: its backup {backup} is missing or its checksum does not match {sha256}",
            hint="restore the backup (or re-run the pipeline so it takes a new one) before removing the landing file",
        )
    if not storage.has_sha256(src, sha256):
        raise StorageError(
            f"refusing to delete {src}: its content changed since it was ingested (a new delivery with the same name?)",
            hint="leave it for the next run, which will ingest the new content",
        )
    storage.delete(src)


def _facts(
    local: Path, source: Location, *, run_id: str, encoding: str, now: datetime | None, count_rows: bool
) -> ManifestEntry:
    """Manifest facts about ``source`` read from its local copy ``local`` (the same file when local)."""
    found = storage.info(local if isinstance(source, Path) else source)
    if found is None or not local.is_file():
        raise InputError(
            f"landing file {source} does not exist", hint="check the landing directory and pattern"
        )
    return ManifestEntry(
        event="ingested",
        file_name=source.name,
        source_path=str(source.resolve()) if isinstance(source, Path) else str(source),
        size_bytes=local.stat().st_size,
        sha256=sha256_file(local),
        row_count=count_csv_rows(local, encoding=encoding) if count_rows else -1,
        source_mtime=_iso(found.mtime),
        ingested_at=_iso(_utc(now)),
        run_id=run_id,
    )


def describe_file(
    path: PathLike, *, run_id: str, encoding: str = "utf-8", now: datetime | None = None, count_rows: bool = True
) -> ManifestEntry:
    """Manifest facts about ``path``: size, sha256, row count (-1 if not counted), mtime, ingestion time (UTC)."""
    source = storage.location(path)
    if not storage.is_file(source):
        raise InputError(
            f"landing file {source} does not exist", hint="check the landing directory and pattern"
        )
    with _local(source) as local:
        return _facts(local, source, run_id=run_id, encoding=encoding, now=now, count_rows=count_rows)


def ingest_file(
    source: PathLike,
    *,
    manifest_path: PathLike,
    backup_dir: PathLike,
    run_id: str,
    encoding: str = "utf-8",
    now: datetime | None = None,
    remove_duplicates: bool = True,
) -> IngestResult:
    """Record ``source`` in the manifest and back it up, once per content (sha256).

    * content already ``completed``: a skipped duplicate (``skipped_duplicate`` line, landing file removed);
    * content already ``rejected``: status ``rejected``, nothing written (the caller moves the file aside);
    * content ingested earlier and not finished: the same delivery (same path) is a retry and reuses that
      entry and its verified backup; another copy whose original is still waiting is a skipped duplicate;
      a copy whose original has gone takes the entry over (same backup, this path);
    * otherwise: a new verified backup and an ``ingested`` line.

    The whole decision runs under the manifest lock, so two tasks ingesting the same bytes at once
    (two names, one content) make one backup between them. An S3 landing object is read once into a
    private scratch folder; its backup is uploaded from that copy and re-read to check the sha256.
    """
    path = storage.location(source)
    manifest = Manifest(manifest_path)
    if not storage.is_file(path):
        raise InputError(f"landing file {path} does not exist", hint="check the landing directory and pattern")
    with _local(path) as local:
        facts = _facts(local, path, run_id=run_id, encoding=encoding, now=now, count_rows=True)
        made_backups: list[Location] = []
        for _ in range(ATTEMPTS):
            try:
                with manifest.locked():
                    return _decide(manifest, facts, local, path, storage.location(backup_dir), now=now,
                                   remove_duplicates=remove_duplicates, made=made_backups.append)
            except ManifestConflict:
                for made in made_backups:
                    _drop_backup(made)  # this decision was not recorded: its backup is nobody's
                made_backups.clear()
            except (StorageError, OSError):
                # The manifest could not record the backup made (disk full, quota, ...): a backup no
                # record names would only be copied again by the retry, so it goes; the landing file stays.
                for made in made_backups:
                    with contextlib.suppress(OSError, StorageError):
                        _drop_backup(made)
                raise
        raise gave_up(manifest)


def _decide(
    manifest: Manifest, facts: ManifestEntry, local: Path, path: Location, backup_dir: Location, *,
    now: datetime | None, remove_duplicates: bool, made: Callable[[Location], None],
) -> IngestResult:
    """The decision of :func:`ingest_file`, under the manifest lock; ``made(backup)`` is told of each new backup."""
    def new_backup() -> str:
        backup = _backup(local, path, backup_dir, sha256=facts.sha256, at=now)
        made(backup)
        return str(backup)

    decided = manifest.terminal(facts.sha256)
    if decided is not None and decided.event == "rejected":
        return IngestResult("rejected", replace(facts, event="rejected", backup_path=decided.backup_path), decided)
    if decided is not None:
        backup = decided.backup_path
        if not (backup and verify_backup(backup, facts.sha256)):
            # The earlier backup was pruned or damaged: keep this copy instead of losing the content.
            backup = new_backup()
        entry = replace(facts, event="skipped_duplicate", backup_path=backup)
        manifest.append(entry)
        if remove_duplicates:
            remove_landing_file(path, backup, facts.sha256)
        return IngestResult("duplicate", entry, decided)

    earlier = manifest.in_flight(facts.sha256)
    if earlier is not None and earlier.backup_path and verify_backup(earlier.backup_path, facts.sha256):
        if earlier.source_path == facts.source_path:
            return IngestResult("new", earlier)
        if storage.has_sha256(storage.location(earlier.source_path), facts.sha256):
            # The same bytes under another name, its twin still waiting: that one is processed.
            entry = replace(facts, event="skipped_duplicate", backup_path=earlier.backup_path)
            manifest.append(entry)
            if remove_duplicates:
                remove_landing_file(path, earlier.backup_path, facts.sha256)
            return IngestResult("duplicate", entry, earlier)
        return IngestResult("new", replace(earlier, file_name=facts.file_name, source_path=facts.source_path))

    entry = replace(facts, backup_path=new_backup())
    manifest.append(entry)
    return IngestResult("new", entry)


def rejected_name(source: Location, at: datetime) -> str:
    """``customers.csv`` -> ``customers.csv.20261124T004900123456Z``: no longer matches ``*.csv``."""
    return f"{source.name}.{_utc(at).strftime('%Y%m%dT%H%M%S%fZ')}"


@dataclass(frozen=True)
class Rejection:
    """Where a refused delivery went: the moved file (None if it was already gone) and its reason file."""

    rejected_path: Location | None
    reason_path: Location
    recorded: bool

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-able dict."""
        return {"rejected_path": str(self.rejected_path) if self.rejected_path else None,
                "reason_path": str(self.reason_path), "recorded": self.recorded}


def reject_file(
    entry: ManifestEntry | Mapping[str, Any],
    *,
    manifest_path: PathLike,
    rejected_dir: PathLike,
    reason: Mapping[str, Any],
    now: datetime | None = None,
) -> Rejection:
    """Move the landing file of ``entry`` to ``rejected/<name>.<UTC stamp>``, write ``.reason.json`` beside it,
    and append one ``rejected`` line for its content unless the content already has one.

    ``reason`` must already be safe to store (counts, column names, masked samples: never raw values).
    The file is moved only if it still holds the rejected content (a new delivery under the same name stays).
    """
    ingested = entry if isinstance(entry, ManifestEntry) else ManifestEntry.from_dict(entry)
    at = _utc(now)
    src = storage.location(ingested.source_path)
    target_dir = storage.location(rejected_dir)
    if isinstance(target_dir, Path):
        target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / rejected_name(src, at)
    reason_path = target.with_name(target.name + ".reason.json")
    manifest = Manifest(manifest_path)
    moved: Location | None = None
    for _ in range(ATTEMPTS):
        try:
            with manifest.locked():
                if moved is None and storage.has_sha256(src, ingested.sha256):
                    storage.move(src, target, sha256_hex=ingested.sha256)
                    moved = target
                earlier = manifest.terminal(ingested.sha256)
                if moved is None and earlier is not None and earlier.event == "rejected":
                    # A retried task after the move: the rejection stands as recorded, nothing new to write.
                    done = earlier.outputs
                    return Rejection(storage.location(done["rejected_path"]) if done.get("rejected_path") else None,
                                     storage.location(done["reason_path"]), recorded=False)
                body = {
                    "file_name": ingested.file_name, "source_path": ingested.source_path, "sha256": ingested.sha256,
                    "size_bytes": ingested.size_bytes, "row_count": ingested.row_count,
                    "backup_path": ingested.backup_path, "rejected_at": _iso(at), "run_id": ingested.run_id,
                    "rejected_path": str(moved) if moved else None, **reason,
                }
                storage.write_text(reason_path, json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
                recorded = earlier is None
                if recorded:
                    outputs = {"rejected_path": str(moved) if moved else None, "reason_path": str(reason_path),
                               "reason": reason.get("reason"), "stage": reason.get("stage"), "rejected_at": _iso(at)}
                    manifest.append(replace(ingested, event="rejected", outputs=outputs))
                return Rejection(moved, reason_path, recorded)
        except ManifestConflict:
            continue  # the move (if any) stands; decide again whether this content still needs its line
    raise gave_up(manifest)


def complete_ingest(
    entry: ManifestEntry | Mapping[str, Any],
    *,
    manifest_path: PathLike,
    outputs: Mapping[str, Any],
    remove_source: bool = True,
) -> ManifestEntry:
    """Mark ``entry`` done (``completed`` line with its outputs), then remove the landing file if its backup checks out.

    The ``completed`` line is written before the delete: if the process dies in between, the next run
    sees the same content as a duplicate and removes it then, so nothing is processed twice.
    """
    ingested = entry if isinstance(entry, ManifestEntry) else ManifestEntry.from_dict(entry)
    if not ingested.backup_path or not verify_backup(ingested.backup_path, ingested.sha256):
        raise StorageError(
            f"backup {ingested.backup_path} of {ingested.file_name} is missing or does not match sha256 {ingested.sha256}",
            hint="re-run the ingest step to take a fresh backup; the landing file was left in place",
        )
    manifest = Manifest(manifest_path)
    for _ in range(ATTEMPTS):
        try:
            with manifest.locked():
                done = manifest.completed(ingested.sha256)
                if done is None:
                    done = replace(ingested, event="completed", outputs={**outputs, "completed_at": _iso(_utc())})
                    manifest.append(done)
            break
        except ManifestConflict:
            continue
    else:
        raise gave_up(manifest)
    if remove_source:
        remove_landing_file(ingested.source_path, ingested.backup_path, ingested.sha256)
    return done
