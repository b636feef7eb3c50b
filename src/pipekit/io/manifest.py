"""The ingestion manifest: one record per event (ingested, completed, skipped_duplicate, rejected).

Locally it is a JSON-lines file, appended under ``flock`` (one line per record, fsynced; a line torn by a
crash is skipped). On S3, which has no append, it is a prefix of one object per record,
``<prefix>/<20-digit seq>.json``, each created with a conditional PUT (``If-None-Match: *``):

* two writers never take the same number: the loser gets 412 and takes the next one (no record lost);
* a PUT that botocore retried after a lost reply finds its own ``record_id`` there (no record doubled);
* :meth:`Manifest.locked` (read, decide, append) holds no lock object a killed worker could leave behind:
  it decides on a snapshot, and its append must take the very next number; if another writer took it,
  :class:`ManifestConflict` tells the caller to undo and decide again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pipekit.errors import StorageError
from pipekit.io import storage
from pipekit.io.atomic import storage_error
from pipekit.io.storage import Location, S3Location

#: What the hint of a failed manifest write tells the user to change.
_OPTION = "--manifest (or --base-dir)"

log = logging.getLogger(__name__)

Event = Literal["ingested", "completed", "skipped_duplicate", "rejected"]
#: Events that end a content's life in the manifest: processed, or refused.
_TERMINAL: tuple[Event, ...] = ("completed", "rejected")

#: An S3 manifest record's key under the manifest prefix: a zero-padded sequence number (sorts as it counts).
_RECORD = re.compile(r"^(\d{20})\.json$")
#: How often a read-decide-append is retried when other writers keep appending in between (S3 only).
ATTEMPTS = 50

PathLike = str | os.PathLike[str] | S3Location


class ManifestConflict(Exception):
    """Another writer appended to the S3 manifest after this decision read it: decide again."""


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
    """Append-only manifest of every landing file seen: a JSON-lines file, or one object per record on S3."""

    def __init__(self, path: PathLike) -> None:
        self.path: Location = storage.location(path)
        # S3 only: the snapshot a locked() block decides on, and the sequence number its next append takes.
        self._snapshot: list[ManifestEntry] | None = None
        self._next: int | None = None

    def entries(self) -> list[ManifestEntry]:
        """Every entry in order; lines torn by a crash mid-append are skipped with a warning."""
        if isinstance(self.path, S3Location):
            if self._snapshot is not None:
                return list(self._snapshot)
            return self._s3_scan()[0]
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
            out.append(self._entry(data, f"line {number}"))
        return out

    def _entry(self, data: Any, where: str) -> ManifestEntry:
        try:
            return ManifestEntry.from_dict(data)
        except TypeError as exc:
            raise StorageError(
                f"manifest {self.path} {where} is JSON but not a manifest entry: {exc}",
                hint="the manifest is append-only: restore it from a backup or remove the foreign record",
            ) from exc

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries())

    def append(self, entry: ManifestEntry) -> None:
        """Append one entry as a single line, fsynced, under an exclusive lock (safe for concurrent runs).

        On S3: one new object at the next free sequence number (conditional PUT, so never overwriting).
        """
        if isinstance(self.path, S3Location):
            self._s3_append(entry)
            return
        line = (json.dumps(entry.to_dict(), sort_keys=True, default=str) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as exc:
            raise storage_error(exc, self.path, option=_OPTION) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            end = os.lseek(fd, 0, os.SEEK_END)
            # A torn last line from an earlier crash must not swallow this entry.
            data = line if end == 0 or os.pread(fd, 1, end - 1) == b"\n" else b"\n" + line
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except OSError as exc:
                # Disk full (or quota) part-way: take the partial line back, so the manifest ends as it did.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, end)
                raise storage_error(exc, self.path, option=_OPTION) from exc
        finally:
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ``<manifest>.lock`` exclusively: a read-decide-append sequence no other task interleaves.

        On S3 there is no lock to hold (a crashed worker would leave it held): the block decides on a
        snapshot, and an append that finds its sequence number taken raises ``ManifestConflict`` (see
        :func:`_transaction`), so a decision made on stale facts is never recorded.
        """
        if isinstance(self.path, S3Location):
            self._snapshot, self._next = self._s3_scan()
            try:
                yield
            finally:
                self._snapshot = self._next = None
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # --- S3: one object per record ---------------------------------------------------------------------

    def _s3_scan(self) -> tuple[list[ManifestEntry], int]:
        """Every record in key (= event) order, and the next free sequence number."""
        assert isinstance(self.path, S3Location)
        out: list[ManifestEntry] = []
        free = 0
        for key in storage.list_keys(self.path):
            match = _RECORD.match(key[len(self.path.prefix):])
            if not match:
                continue
            # Counted even when unreadable: that number is taken all the same.
            free = max(free, int(match.group(1)) + 1)
            data = _record(self.path.bucket, key)
            if data is not None:
                out.append(self._entry(data, f"record {key}"))
        return out, free

    def _s3_key(self, seq: int) -> S3Location:
        assert isinstance(self.path, S3Location)
        return self.path / f"{seq:020d}.json"

    def _s3_append(self, entry: ManifestEntry) -> None:
        assert isinstance(self.path, S3Location)
        record_id = uuid.uuid4().hex
        body = json.dumps({**entry.to_dict(), "record_id": record_id}, sort_keys=True, default=str).encode()
        in_block = self._next is not None
        seq = self._next if self._next is not None else self._s3_scan()[1]
        for _ in range(ATTEMPTS):
            where = self._s3_key(seq)
            if storage.put_if_absent(where, body):
                _RECORDS[str(where)] = json.loads(body)
                break
            # Taken: by another writer, or by this very PUT when botocore retried it after a lost reply.
            if (_record(where.bucket, where.key) or {}).get("record_id") == record_id:
                break
            if in_block:
                raise ManifestConflict(str(where))
            seq = self._s3_scan()[1]
        else:
            raise StorageError(f"manifest {self.path}: no free record number after {ATTEMPTS} tries",
                               hint="many writers are appending at once: re-run the task")
        if in_block and self._snapshot is not None:
            self._next = seq + 1
            self._snapshot.append(entry)

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


#: S3 manifest records already read (they never change once written): ``s3://bucket/key`` -> JSON.
_RECORDS: dict[str, Any] = {}


def _record(bucket: str, key: str) -> Any:
    """One S3 manifest record (cached), or None when it is not JSON (logged, skipped like a torn line)."""
    uri = f"s3://{bucket}/{key}"
    if uri not in _RECORDS:
        raw = storage.read_bytes(S3Location(bucket, key))
        try:
            _RECORDS[uri] = json.loads(raw)
        except ValueError:
            log.warning("manifest record %s is not JSON; ignored", uri)
            return None
    return _RECORDS[uri]


def gave_up(manifest: Manifest) -> StorageError:
    """The error when a read-decide-append lost the race to other writers ``ATTEMPTS`` times."""
    return StorageError(f"manifest {manifest.path}: other writers kept appending; gave up after {ATTEMPTS} tries",
                        hint="re-run the task")
