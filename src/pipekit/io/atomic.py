"""Atomic file writes and checksums: a failure never leaves a partial file behind."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipekit.errors import StorageError

_CHUNK = 1 << 20

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_NOT_A_FOLDER = {errno.ENOTDIR, errno.EEXIST}


def storage_error(exc: OSError, folder: str | os.PathLike[str], *, option: str = "--out") -> StorageError:
    """StorageError for an OS error while writing into ``folder``: one line naming the path, and what to do.

    The path is the one the OS named when it did (the destination ``exc.filename2`` of a copy or rename,
    else ``exc.filename``), else ``folder``; ``option`` is the
    setting the hint tells the user to change (``--out`` for ``clean``).
    """
    # A copy or rename names its destination second: that is where the write failed.
    path = exc.filename2 or (exc.filename if exc.filename is not None else folder)
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code in _FULL:
        hint = f"free some space (or raise the quota) on that disk, or choose another {option}"
    elif code in _DENIED:
        hint = f"choose a folder you can write to ({option}), or fix its permissions or mount"
    elif code in _NOT_A_FOLDER:
        hint = f"a file is where a folder is expected: remove or rename it, or choose another {option}"
    else:
        hint = "check the folder exists and is writable, then run again"
    return StorageError(f"cannot write {path}: {reason}; nothing was published", hint=hint)


def _default_mode() -> int:
    # mkstemp creates 0600 files; a finished output should get the usual 0666 & ~umask like open() would.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success fsync and rename it over ``target``, else delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, _default_mode())
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically."""
    return atomic_write_bytes(target, text.encode(encoding))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
