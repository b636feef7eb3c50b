"""Staged outputs: temp files beside their targets, renamed into place together only when a run succeeds."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pipekit.errors import StorageError

#: Mode of a private staged file (and 0o700 for the folder it creates): raw input rows, owner only.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


class Staging:
    """Temp files beside their targets, renamed into place together on commit, deleted otherwise."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path, bool]] = []
        self._remove: list[Path] = []
        self._committed = False
        self._lock = threading.Lock()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            for tmp, _, _ in self._staged:
                tmp.unlink(missing_ok=True)

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
            tmp = folder / f".{target.name}.{os.getpid()}.{threading.get_ident()}.{len(self._staged)}.tmp"
            self._staged.append((tmp, target, private))
        tmp.unlink(missing_ok=True)
        if private:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
        else:
            tmp.touch()
        return tmp

    def retarget(self, tmp: Path, target: Path) -> None:
        """Rename staged ``tmp`` to ``target`` (same folder) on commit, instead of the target it was staged for."""
        if target.parent != tmp.parent:
            raise ValueError(f"{target} is not in {tmp.parent}")
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
