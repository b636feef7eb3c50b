"""What clean_file reads is what it checked; every OS error is a StorageError; callbacks never raise."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import pipekit
from pipekit.api import scan_file, validate_file
from pipekit.errors import InputError, StorageError
from pipekit.io import _read, _run, _staging
from pipekit.io.engine import clean_file, iter_batches

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _customers(tmp_path: Path, n: int = 20_000) -> Path:
    return pipekit.sample.write_customers_csv(tmp_path / "c.csv", n, seed=5)


def _line_boundary(path: Path, fraction: float) -> int:
    data = path.read_bytes()
    return data.index(b"\n", int(len(data) * fraction)) + 1


def _truncate(src: Path) -> None:
    os.truncate(src, _line_boundary(src, 0.5))


def _append(src: Path) -> None:
    with open(src, "ab") as fh:
        fh.write(b"99999,late,late@example.com,2020-01-01T00:00:00Z\n")


def _replace(src: Path) -> None:
    other = src.with_name("other.csv")
    other.write_bytes(src.read_bytes())
    os.replace(other, src)


def _rewrite_same_size(src: Path) -> None:
    with open(src, "r+b") as fh:
        fh.seek(-2, os.SEEK_END)
        fh.write(b"X\n")
    st = os.stat(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (_truncate, "truncated"),
        (_append, "appended"),
        (_replace, "replaced"),
        (_rewrite_same_size, "rewritten"),
    ],
)
@pytest.mark.parametrize("bad_rows", ["error", "quarantine"])
def test_a_file_changed_while_read_is_an_input_error_and_nothing_is_published(
    tmp_path: Path, change: Callable[[Path], None], said: str, bad_rows: str
) -> None:
    src = _customers(tmp_path)
    out, private = tmp_path / "out", tmp_path / "private"
    changed = {"done": False}

    def progress(done: int, total: int) -> None:  # called by the reader as it reads: change the file once
        if not changed["done"]:
            changed["done"] = True
            change(src)

    with pytest.raises(InputError) as caught:
        clean_file(src, out, now=NOW, batch_rows=500, progress=progress, bad_rows=bad_rows,  # type: ignore[arg-type]
                   quarantine_dir=private)  # fmt: skip
    assert changed["done"]
    assert str(src) in caught.value.message and said in caught.value.message
    assert "copy" in (caught.value.hint or "")
    assert list(out.iterdir()) == []  # no outputs, no temp files
    assert not private.exists() or list(private.iterdir()) == []


def test_the_report_hashes_and_counts_the_bytes_cleaned(tmp_path: Path) -> None:
    src = _customers(tmp_path, 3000)
    report = clean_file(src, tmp_path / "out", now=NOW, batch_rows=700)
    data = src.read_bytes()
    assert report.input["bytes"] == len(data)
    assert report.input["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("read", ["iter_batches", "validate_file", "scan_file"])
def test_the_other_readers_catch_a_file_changed_while_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    src = _customers(tmp_path)
    real = _read.rebatch

    def truncating(reader: Any, batch_rows: int, batch_bytes: int) -> Any:
        for i, table in enumerate(real(reader, batch_rows, batch_bytes)):
            if i == 0:
                _truncate(src)
            yield table

    monkeypatch.setattr(_read, "rebatch", truncating)
    with pytest.raises(InputError, match="truncated"):
        if read == "iter_batches":
            list(iter_batches(src, batch_rows=500))
        elif read == "validate_file":
            validate_file(src, batch_rows=500)
        else:
            scan_file(src)


def test_a_fifo_or_folder_is_refused_clearly(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(InputError, match="not a regular file"):
            clean_file(path, tmp_path / "out", now=NOW)
        with pytest.raises(InputError, match="not a regular file"):
            list(iter_batches(path))
    assert not (tmp_path / "out").exists()


# --- callbacks never raise -------------------------------------------------------------------------


def _binary(tmp_path: Path, seed: int = 0) -> Path:
    path = tmp_path / "binary.csv"
    path.write_bytes(random.Random(seed).randbytes(1 << 20))
    return path


def _header_then_binary(tmp_path: Path) -> Path:
    path = tmp_path / "late_binary.csv"
    path.write_bytes(
        b"id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n" + random.Random(3).randbytes(1 << 18)
    )
    return path


@pytest.mark.parametrize("make", [_binary, _header_then_binary])
@pytest.mark.parametrize("bad_rows", ["error", "quarantine"])
def test_binary_input_is_an_input_error_and_no_callback_exception_is_ignored(
    tmp_path: Path,
    make: Callable[[Path], Path],
    bad_rows: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = make(tmp_path)
    out = tmp_path / "out"
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)  # where "Exception ignored" comes from
    with pytest.raises(InputError, match="not valid utf-8"):
        clean_file(src, out, now=NOW, bad_rows=bad_rows, quarantine_dir=tmp_path / "q")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not valid utf-8"):
        validate_file(src)
    monkeypatch.undo()
    assert unraisable == []
    assert "Exception ignored" not in capfd.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


def test_an_error_inside_the_bad_row_callback_is_raised_not_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("id,name,email,timestamp\n1,a,a@b.io,2020\n2,b\n3,c,c@d.io,2020\n")

    def full(self: Any, row: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_run.Run, "_handle_bad_row", full)
    with pytest.raises(StorageError, match="No space left on device") as caught:
        clean_file(src, tmp_path / "out", now=NOW, bad_rows="quarantine", quarantine_dir=tmp_path / "q")
    assert "free some space" in (caught.value.hint or "")
    assert list((tmp_path / "out").iterdir()) == []


# --- every OS error on the way out is a StorageError -------------------------------------------------


def _enospc(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


class _FullWriter:
    """Stands in for Arrow's CSV or Parquet writer on a full disk: the first write fails."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    write_table = staticmethod(_enospc)

    def close(self) -> None:
        pass


def _full_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_run.pacsv, "CSVWriter", _FullWriter)


def _full_parquet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pq, "ParquetWriter", _FullWriter)


def _full_on_close(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pq.ParquetWriter

    class ClosesFull(real):  # type: ignore[misc, valid-type]
        def close(self) -> None:
            super().close()
            _enospc()

    monkeypatch.setattr(pq, "ParquetWriter", ClosesFull)


def _full_report(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.write_text

    def write_text(self: Path, *args: Any, **kwargs: Any) -> int:
        if "_report.json" in self.name:
            raise OSError(errno.EDQUOT, "Disk quota exceeded", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)


def _denied_staging(monkeypatch: pytest.MonkeyPatch) -> None:
    def touch(self: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "touch", touch)


def _full_on_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_staging.os, "fsync", fsync)


@pytest.mark.parametrize(
    ("fault", "hint"),
    [
        (_full_csv, "free some space"),
        (_full_parquet, "free some space"),
        (_full_on_close, "free some space"),
        (_full_report, "free some space"),
        (_denied_staging, "choose a folder you can write to"),
        (_full_on_rename, "free some space"),
    ],
)
def test_each_write_failing_is_a_storage_error_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Callable[[pytest.MonkeyPatch], None], hint: str
) -> None:
    src = _customers(tmp_path, 3000)
    out = tmp_path / "out"
    clean_file(src, out, now=NOW)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fault(monkeypatch)
    with pytest.raises(StorageError) as caught:
        clean_file(src, out, now=datetime(2030, 1, 1, tzinfo=UTC), batch_rows=500)
    monkeypatch.undo()
    assert str(out) in caught.value.message
    assert "\n" not in caught.value.message
    assert hint in (caught.value.hint or "")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # earlier outputs kept, no temp files


def test_a_file_where_the_output_folder_should_be_is_a_storage_error(tmp_path: Path) -> None:
    src = _customers(tmp_path, 100)
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(StorageError, match="taken"):
        clean_file(src, tmp_path / "taken" / "out", now=NOW)
    with pytest.raises(StorageError, match="taken"):
        clean_file(src, tmp_path / "taken", now=NOW)
    assert (tmp_path / "taken").read_text() == "not a folder"


def test_storage_error_names_path_and_says_what_to_do() -> None:
    from pipekit.io.atomic import storage_error

    for code, hint in [(errno.ENOSPC, "free"), (errno.EDQUOT, "quota"), (errno.EACCES, "permissions"),
                       (errno.EROFS, "mount"), (errno.ENOTDIR, "a file is where"), (errno.EIO, "check")]:  # fmt: skip
        error = storage_error(OSError(code, os.strerror(code), "/x/y.csv"), "/x")
        assert error.message.startswith("cannot write /x/y.csv: ") and hint in (error.hint or "")
    assert "/fallback" in storage_error(OSError(errno.ENOSPC, "full"), "/fallback").message


# --- Arrow lets go of the file before a read returns ---------------------------------------------


@pytest.mark.timeout(120)
def test_every_read_lets_go_of_the_file_when_it_stops_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Leaving a CheckedInput waits until Arrow dropped the Python file (an Arrow I/O thread still in Python
    # at exit aborts the process): with no time limit, a reader frame kept alive anywhere hangs here.
    monkeypatch.setattr(_read, "_RELEASE_TIMEOUT_S", 1e9)
    src = _customers(tmp_path)
    batches = iter_batches(src, batch_rows=500)
    next(batches)
    batches.close()  # abandoned after one batch, as scan_file --sample does
    assert scan_file(src, sample=10).rows_scanned == 10
    monkeypatch.setattr(pq, "ParquetWriter", _FullWriter)  # the writer fails: the reader stops early
    with pytest.raises(StorageError):
        clean_file(src, tmp_path / "out", now=NOW, batch_rows=500)
    with pytest.raises(InputError):
        clean_file(_binary(tmp_path), tmp_path / "out", now=NOW)
