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
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pipekit.errors import InputError, StorageError
from pipekit.io.atomic import atomic_path, atomic_write_text, sha256_file

log = logging.getLogger(__name__)

Event = Literal["ingested", "completed", "skipped_duplicate", "rejected"]
#: Events that end a content's life in the manifest: processed, or refused.
_TERMINAL: tuple[Event, ...] = ("completed", "rejected")

#: Names never picked up from a landing directory: hidden files and in-flight uploads.
_IN_FLIGHT_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")


def _utc(ts: datetime | None = None) -> datetime:
    ts = ts or datetime.now(UTC)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return _utc(ts).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ManifestEntry:
    """One line of the ingestion manifest."""

    event: Event
    file_name: str
    source_path: str
    size_bytes: int
    sha256: str
    row_count: int
    source_mtime: str
    ingested_at: str
    run_id: str
    backup_path: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, JSON-serialisable (also what the DAG pushes as XCom)."""
        data = asdict(self)
        data["outputs"] = dict(self.outputs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestEntry:
        """Rebuild an entry from ``to_dict`` output; unknown keys are ignored (forward compatible)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class Manifest:
    """Append-only JSON-lines manifest of every landing file seen."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def entries(self) -> list[ManifestEntry]:
        """Every entry in file order; lines torn by a crash mid-append are skipped with a warning."""
        if not self.path.exists():
            return []
        out: list[ManifestEntry] = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                # A crash mid-append leaves a partial line; the append that follows starts a fresh one.
                log.warning("manifest %s line %d is a partial write; ignored", self.path, number)
                continue
            try:
                out.append(ManifestEntry.from_dict(data))
            except TypeError as exc:
                raise StorageError(
                    f"manifest {self.path} line {number} is JSON but not a manifest entry: {exc}",
                    hint="the manifest is append-only: restore it from a backup or remove the foreign line",
                ) from exc
        return out

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries())

    def append(self, entry: ManifestEntry) -> None:
        """Append one entry as a single line, fsynced, under an exclusive lock (safe for concurrent runs)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry.to_dict(), sort_keys=True, default=str) + "\n"
        with open(self.path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                # A torn last line from an earlier crash must not swallow this entry.
                fh.seek(0, os.SEEK_END)
                if fh.tell() > 0:
                    fh.seek(fh.tell() - 1)
                    if fh.read(1) != "\n":
                        fh.write("\n")
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ``<manifest>.lock`` exclusively: a read-decide-append sequence no other task interleaves."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def completed(self, sha256: str) -> ManifestEntry | None:
        """The first ``completed`` entry for ``sha256``, if that content was already processed."""
        return next((e for e in self.entries() if e.event == "completed" and e.sha256 == sha256), None)

    def terminal(self, sha256: str) -> ManifestEntry | None:
        """The first ``completed`` or ``rejected`` entry for ``sha256``: that content's fate is decided."""
        return next((e for e in self.entries() if e.event in _TERMINAL and e.sha256 == sha256), None)

    def in_flight(self, sha256: str) -> ManifestEntry | None:
        """The latest ``ingested`` entry for ``sha256`` when no ``completed``/``rejected`` line followed it."""
        entries = self.entries()
        if any(e.event in _TERMINAL and e.sha256 == sha256 for e in entries):
            return None
        return next((e for e in reversed(entries) if e.event == "ingested" and e.sha256 == sha256), None)


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
    landing_dir: str | os.PathLike[str],
    pattern: str = "*.csv",
    *,
    settle_seconds: float = 0.0,
    now: datetime | None = None,
) -> list[Path]:
    """Files in ``landing_dir`` matching ``pattern``, oldest first; skips hidden, in-flight and too-fresh files."""
    root = Path(landing_dir)
    if not root.is_dir():
        return []
    cutoff = _utc(now).timestamp() - settle_seconds
    found: list[tuple[float, str, Path]] = []
    for path in root.glob(pattern):
        name = path.name
        if name.startswith(".") or name.lower().endswith(_IN_FLIGHT_SUFFIXES) or not path.is_file():
            continue
        mtime = path.stat().st_mtime
        # A file modified in the last few seconds may still be being written by the sender.
        if mtime > cutoff:
            continue
        found.append((mtime, name, path))
    return [p for _, _, p in sorted(found)]


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


def backup_name(source: Path, at: datetime) -> str:
    """``customers.csv`` -> ``customers.20261124T004900123456Z.csv`` (UTC, sortable, no ``:`` for portability)."""
    stamp = _utc(at).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{source.stem}.{stamp}{source.suffix}"


def verify_backup(backup: str | os.PathLike[str], sha256: str) -> bool:
    """True when ``backup`` exists and its sha256 is ``sha256``."""
    path = Path(backup)
    return path.is_file() and sha256_file(path) == sha256


def backup_file(
    source: str | os.PathLike[str],
    backup_dir: str | os.PathLike[str],
    *,
    sha256: str,
    at: datetime | None = None,
) -> Path:
    """Copy ``source`` into ``backup_dir`` with a UTC timestamp in its name, re-read it and check its sha256.

    Also writes ``<backup>.sha256`` in ``sha256sum`` format so operators can run ``sha256sum -c``.
    The copy is atomic (temp name, fsync, rename); a checksum mismatch deletes the copy and raises StorageError.
    """
    src = Path(source)
    target = Path(backup_dir) / backup_name(src, at or datetime.now(UTC))
    with atomic_path(target) as tmp:
        shutil.copyfile(src, tmp)
        got = sha256_file(tmp)
        if got != sha256:
            raise StorageError(
                f"backup of {src} has sha256 {got}, expected {sha256}: the file changed while it was copied",
                hint="wait until the sender has finished writing the file, then re-run",
            )
    shutil.copystat(src, target)
    with atomic_path(target.with_name(target.name + ".sha256")) as tmp:
        tmp.write_text(f"{sha256}  {target.name}\n", encoding="utf-8")
    return target


def remove_landing_file(source: str | os.PathLike[str], backup: str | os.PathLike[str], sha256: str) -> None:
    """Delete ``source`` only if ``backup`` exists with checksum ``sha256`` and ``source`` still has that content."""
    src = Path(source)
    if not src.exists():
        return
    if not verify_backup(backup, sha256):
        raise StorageError(
            f"refusing to delete {src}: its backup {backup} is missing or its checksum does not match {sha256}",
            hint="restore the backup (or re-run the pipeline so it takes a new one) before removing the landing file",
        )
    if sha256_file(src) != sha256:
        raise StorageError(
            f"refusing to delete {src}: its content changed since it was ingested (a new delivery with the same name?)",
            hint="leave it for the next run, which will ingest the new content",
        )
    src.unlink()


def describe_file(
    path: Path, *, run_id: str, encoding: str = "utf-8", now: datetime | None = None, count_rows: bool = True
) -> ManifestEntry:
    """Manifest facts about ``path``: size, sha256, row count (-1 if not counted), mtime, ingestion time (UTC)."""
    if not path.is_file():
        raise InputError(
            f"landing file {path} does not exist", hint="check the landing directory and pattern"
        )
    stat = path.stat()
    return ManifestEntry(
        event="ingested",
        file_name=path.name,
        source_path=str(path.resolve()),
        size_bytes=stat.st_size,
        sha256=sha256_file(path),
        row_count=count_csv_rows(path, encoding=encoding) if count_rows else -1,
        source_mtime=_iso(datetime.fromtimestamp(stat.st_mtime, UTC)),
        ingested_at=_iso(_utc(now)),
        run_id=run_id,
    )


def ingest_file(
    source: str | os.PathLike[str],
    *,
    manifest_path: str | os.PathLike[str],
    backup_dir: str | os.PathLike[str],
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
    (two names, one content) make one backup between them.
    """
    path = Path(source)
    manifest = Manifest(manifest_path)
    facts = describe_file(path, run_id=run_id, encoding=encoding, now=now)

    with manifest.locked():
        decided = manifest.terminal(facts.sha256)
        if decided is not None and decided.event == "rejected":
            return IngestResult("rejected", replace(facts, event="rejected", backup_path=decided.backup_path), decided)
        if decided is not None:
            backup = decided.backup_path
            if not (backup and verify_backup(backup, facts.sha256)):
                # The earlier backup was pruned or damaged: keep this copy instead of losing the content.
                backup = str(backup_file(path, backup_dir, sha256=facts.sha256, at=now))
            entry = replace(facts, event="skipped_duplicate", backup_path=backup)
            manifest.append(entry)
            if remove_duplicates:
                remove_landing_file(path, backup, facts.sha256)
            return IngestResult("duplicate", entry, decided)

        earlier = manifest.in_flight(facts.sha256)
        if earlier is not None and earlier.backup_path and verify_backup(earlier.backup_path, facts.sha256):
            if earlier.source_path == facts.source_path:
                return IngestResult("new", earlier)
            original = Path(earlier.source_path)
            if original.is_file() and sha256_file(original) == facts.sha256:
                # The same bytes under another name, its twin still waiting: that one is processed.
                entry = replace(facts, event="skipped_duplicate", backup_path=earlier.backup_path)
                manifest.append(entry)
                if remove_duplicates:
                    remove_landing_file(path, earlier.backup_path, facts.sha256)
                return IngestResult("duplicate", entry, earlier)
            return IngestResult("new", replace(earlier, file_name=facts.file_name, source_path=facts.source_path))

        new_backup = backup_file(path, backup_dir, sha256=facts.sha256, at=now)
        entry = replace(facts, backup_path=str(new_backup))
        manifest.append(entry)
        return IngestResult("new", entry)


def rejected_name(source: Path, at: datetime) -> str:
    """``customers.csv`` -> ``customers.csv.20261124T004900123456Z``: no longer matches ``*.csv``."""
    return f"{source.name}.{_utc(at).strftime('%Y%m%dT%H%M%S%fZ')}"


@dataclass(frozen=True)
class Rejection:
    """Where a refused delivery went: the moved file (None if it was already gone) and its reason file."""

    rejected_path: Path | None
    reason_path: Path
    recorded: bool

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-able dict."""
        return {"rejected_path": str(self.rejected_path) if self.rejected_path else None,
                "reason_path": str(self.reason_path), "recorded": self.recorded}


def reject_file(
    entry: ManifestEntry | Mapping[str, Any],
    *,
    manifest_path: str | os.PathLike[str],
    rejected_dir: str | os.PathLike[str],
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
    src = Path(ingested.source_path)
    target_dir = Path(rejected_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / rejected_name(src, at)
    reason_path = target.with_name(target.name + ".reason.json")
    manifest = Manifest(manifest_path)
    with manifest.locked():
        moved: Path | None = None
        if src.is_file() and sha256_file(src) == ingested.sha256:
            shutil.move(src, target)
            moved = target
        earlier = manifest.terminal(ingested.sha256)
        if moved is None and earlier is not None and earlier.event == "rejected":
            # A retried task after the move: the rejection stands as recorded, nothing new to write.
            done = earlier.outputs
            return Rejection(Path(done["rejected_path"]) if done.get("rejected_path") else None,
                             Path(done["reason_path"]), recorded=False)
        body = {
            "file_name": ingested.file_name, "source_path": ingested.source_path, "sha256": ingested.sha256,
            "size_bytes": ingested.size_bytes, "row_count": ingested.row_count, "backup_path": ingested.backup_path,
            "rejected_at": _iso(at), "run_id": ingested.run_id, "rejected_path": str(moved) if moved else None,
            **reason,
        }
        atomic_write_text(reason_path, json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
        recorded = earlier is None
        if recorded:
            outputs = {"rejected_path": str(moved) if moved else None, "reason_path": str(reason_path),
                       "reason": reason.get("reason"), "stage": reason.get("stage"), "rejected_at": _iso(at)}
            manifest.append(replace(ingested, event="rejected", outputs=outputs))
    return Rejection(moved, reason_path, recorded)


def complete_ingest(
    entry: ManifestEntry | Mapping[str, Any],
    *,
    manifest_path: str | os.PathLike[str],
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
    done = manifest.completed(ingested.sha256)
    if done is None:
        done = replace(ingested, event="completed", outputs={**outputs, "completed_at": _iso(_utc())})
        manifest.append(done)
    if remove_source:
        remove_landing_file(ingested.source_path, ingested.backup_path, ingested.sha256)
    return done
