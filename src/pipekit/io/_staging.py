"""Staged outputs: temp files in a per-run staging folder beside their targets, renamed into place together
only when a run succeeds; staging folders that dead runs left behind are recognised and removed.

A staging folder is ``<target folder>/.pipekit-staging-<pid>-<start>-<n>/`` (mode 0700) holding the temp
files, where ``<start>`` is the owner's start time from ``/proc/<pid>/stat`` (so a pid the system gave to
another process since is not taken for the owner still running). The owner is read from the folder's *name*,
which ``mkdir`` creates in one step: a run killed right after creating it (before writing anything into it)
still leaves a folder the next run can tell is stale. Being inside the target's folder keeps every rename on
one file system, hence atomic.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from itertools import count
from pathlib import Path

from pipekit.errors import StorageError

#: Mode of a private staged file (and 0o700 for the folder it creates): raw input rows, owner only.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

#: Every staging folder's name starts so; a later run looks for exactly these.
STAGING_PREFIX = ".pipekit-staging-"
_OWNER_NAME = re.compile(r"(?P<pid>\d+)-(?P<start>\d+|-)-\d+")
#: A folder with the staging prefix whose name names no owner (not made by this version of pipekit, or
#: renamed by hand) is stale once this old (seconds).
UNOWNED_STALE_AFTER_S = 24 * 3600

_log = logging.getLogger(__name__)
_serial = count()


def process_start(pid: int) -> str:
    """The process's start time (clock ticks after boot, field 22 of /proc/<pid>/stat), or "-" if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return "-"
    fields = stat.rpartition(")")[2].split()  # the command name (field 2) may hold spaces and ")"
    return fields[19] if len(fields) > 19 else "-"


def _alive(pid: int, start: str) -> bool:
    """Whether process ``pid`` exists and (when both are known) started at ``start``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    now = process_start(pid)
    return start == "-" or now == "-" or now == start


def staging_name(pid: int, start: str, serial: int) -> str:
    """The name of process ``pid``'s ``serial``-th staging folder (``start``: its process start time)."""
    return f"{STAGING_PREFIX}{pid}-{start}-{serial}"


def is_stale(folder: Path, *, now: float | None = None) -> bool:
    """Whether staging ``folder`` belongs to no running process (its owner died or its pid was reused)."""
    owner = _OWNER_NAME.fullmatch(folder.name.removeprefix(STAGING_PREFIX))
    if owner is None:
        try:
            age = (time.time() if now is None else now) - folder.lstat().st_mtime
        except OSError:
            return False  # gone already
        return age > UNOWNED_STALE_AFTER_S
    return not _alive(int(owner["pid"]), owner["start"])


def remove_stale(folder: Path) -> int:
    """Delete the staging folders in ``folder`` that dead runs left; return how many were removed."""
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(STAGING_PREFIX)]
    except OSError:
        return 0  # no such folder yet (or unreadable: writing there fails later, with a clear message)
    removed = 0
    for path in candidates:
        if path.is_dir() and not path.is_symlink() and is_stale(path):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed += 1
    if removed:
        _log.info("removed %d stale staging folder(s) left in %s by interrupted runs", removed, folder)
    return removed


class Staging:
    """Temp files in per-run staging folders, renamed over their targets together on commit; on leaving
    without a commit the staging folders are deleted with everything in them."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path, bool]] = []
        self._remove: list[Path] = []
        self._folders: dict[Path, Path] = {}  # target folder -> its staging folder
        self._committed = False
        self._lock = threading.Lock()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            for tmp, _, _ in self._staged:
                tmp.unlink(missing_ok=True)
        for folder in self._folders.values():
            shutil.rmtree(folder, ignore_errors=True)

    def new(self, target: Path, *, private: bool = False) -> Path:
        """A fresh temp path for ``target``; ``private``: mode 0600 from creation on, in a 0700 folder if new."""
        folder = target.parent
        try:
            if private and not folder.is_dir():
                folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
                os.chmod(folder, PRIVATE_DIR_MODE)
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create output directory {folder}: {exc}") from exc
        with self._lock:  # the reader thread may stage a file while the main thread does
            staging = self._folders.get(folder) or self._make_folder(folder)
            tmp = staging / f"{target.name}.{len(self._staged)}.tmp"
            self._staged.append((tmp, target, private))
        if private:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
        else:
            tmp.touch()
        return tmp

    def _make_folder(self, folder: Path) -> Path:
        """Create this run's staging folder in ``folder``, its name naming this process (under the lock)."""
        pid = os.getpid()
        staging = folder / staging_name(pid, process_start(pid), next(_serial))
        # Recorded before it exists: a stop signal is raised at the first bytecode after mkdir returns
        # (which can wait for the GIL), and __exit__ must still find the folder to delete it.
        self._folders[folder] = staging
        try:
            os.mkdir(staging, PRIVATE_DIR_MODE)
        except OSError:  # not made; anything else (a stop signal) may have come after it was made
            del self._folders[folder]
            raise
        return staging

    def retarget(self, tmp: Path, target: Path) -> None:
        """Rename staged ``tmp`` to ``target`` (same folder as first staged for) on commit, instead."""
        if target.parent != tmp.parent.parent:
            raise ValueError(f"{target} is not in {tmp.parent.parent}")
        self._staged = [(t, target if t == tmp else d, p) for t, d, p in self._staged]

    def remove_on_commit(self, target: Path) -> None:
        """Delete ``target`` (if present) when committing."""
        self._remove.append(target)

    def commit(self) -> None:
        """fsync every temp file, then rename each over its target (report last)."""
        mode = 0o666 & ~_umask()
        for tmp, _, private in self._staged:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, PRIVATE_FILE_MODE if private else mode)
        for tmp, target, _ in self._staged:
            os.replace(tmp, target)
        for target in self._remove:
            target.unlink(missing_ok=True)
        self._committed = True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
