"""`pipekit clean` as a real process: an input changed under it, binary input, a full or read-only disk.

Each ends with exit 2, one error line naming the path, no traceback, and nothing published.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipekit.sample import write_customers_csv

PIPEKIT = Path(sys.executable).parent / "pipekit"
NOW = "2026-01-01T00:00:00Z"


def _pipekit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PIPEKIT), *args], capture_output=True, text=True, timeout=120)


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~200k rows (~22 MB): long enough to read that the test can act while the reader is mid-file."""
    return write_customers_csv(tmp_path_factory.mktemp("big") / "customers.csv", 200_000, seed=3)


# --- the input changes while it is read -----------------------------------------------------------


def _reading_fd(pid: int, src: Path) -> str | None:
    """The process's file descriptor open on ``src``, if any."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        for fd in fds.iterdir():
            try:
                if os.readlink(fd) == str(src):
                    return fd.name
            except OSError:
                continue
    except OSError:
        return None
    return None


def _position(pid: int, fd: str) -> int:
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("pos:"):
            return int(line.split()[1])
    raise AssertionError("no pos in fdinfo")


def _truncate_mid_read(src: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """Run clean; once its reader has the input open (after staging began), stop the process, and if it
    has not read to the end, truncate the file at a line boundary past what it read. None: too late."""
    size = src.stat().st_size
    proc = subprocess.Popen([str(PIPEKIT), "clean", str(src), "--out", str(out), "--now", NOW, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    truncated = False
    try:
        deadline = time.monotonic() + 60
        fd = None
        while proc.poll() is None and time.monotonic() < deadline:
            staged = out.is_dir() and any(p.name.startswith(".pipekit-staging-") for p in out.iterdir())
            fd = _reading_fd(proc.pid, src) if staged else None  # not read_header's open: staging is after it
            if fd is not None:
                break
            time.sleep(0.001)
        if fd is not None:
            os.kill(proc.pid, signal.SIGSTOP)  # every thread stops: what it has read stays what it read
            try:
                pos = _position(proc.pid, fd)
                if pos < size:
                    data = src.read_bytes()
                    cut = data.index(b"\n", (pos + size) // 2) + 1
                    os.truncate(src, cut)
                    truncated = True
            except OSError:
                pass  # it closed the file meanwhile: too late
            finally:
                os.kill(proc.pid, signal.SIGCONT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not truncated:
        return None
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("bad_rows", ["error", "quarantine"])
def test_input_truncated_while_clean_reads_it_exits_2_and_publishes_nothing(
    big: Path, tmp_path: Path, bad_rows: str
) -> None:
    src = tmp_path / "upload.csv"
    for _ in range(5):  # the stop may come too late on a loaded machine: then run again on a fresh copy
        src.write_bytes(big.read_bytes())
        out = tmp_path / f"out_{_}"
        done = _truncate_mid_read(src, out, "--bad-rows", bad_rows, "--quarantine-dir", str(tmp_path / "q"))
        if done is not None:
            break
    else:
        pytest.fail("the reader always finished before the test could stop it")
    assert done.returncode == 2, done.stderr
    _no_traceback(done.stderr)
    assert f"error: {src}: the file changed while it was read: it was truncated" in done.stderr
    assert "copy the file somewhere first" in done.stderr
    assert list(out.iterdir()) == []  # no outputs, no temp files
    quarantine = tmp_path / "q"
    assert not quarantine.exists() or list(quarantine.iterdir()) == []


def test_a_fifo_is_refused_clearly(tmp_path: Path) -> None:
    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)
    done = _pipekit("clean", str(fifo), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    _no_traceback(done.stderr)
    assert f"{fifo}: not a regular file" in done.stderr
    assert not (tmp_path / "out").exists()
    # validate and scan-pii refuse it too, before anything opens it (opening a FIFO blocks)
    for command in ("validate", "scan-pii"):
        done = _pipekit(command, str(fifo))
        assert done.returncode == 2, (command, done.stderr)
        _no_traceback(done.stderr)
        assert f"{fifo}: not a regular file" in done.stderr, command


# --- binary input -----------------------------------------------------------------------------------


def test_binary_input_exits_2_with_one_message_every_time(tmp_path: Path) -> None:
    src = tmp_path / "random.bin.csv"
    src.write_bytes(random.Random(2026).randbytes(1 << 20))
    out = tmp_path / "out"
    for _ in range(20):  # an exception inside a pyarrow callback aborted the process about once in 50 runs
        done = _pipekit("clean", str(src), "--out", str(out), "--bad-rows", "quarantine",
                        "--quarantine-dir", str(tmp_path / "q"))  # fmt: skip
        assert done.returncode == 2, (done.returncode, done.stderr)
        _no_traceback(done.stderr)
        assert f"error: {src}: line " in done.stderr and "is not valid utf-8" in done.stderr
    for command in (["validate", str(src)], ["scan-pii", str(src)]):
        done = _pipekit(*command)
        assert done.returncode == 2, done.stderr
        _no_traceback(done.stderr)
        assert "is not valid utf-8" in done.stderr
    assert not out.exists() or list(out.iterdir()) == []


# --- a full or read-only disk (real tmpfs mounts; needs root and mount) -------------------------------


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted whatever the test does."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not _run("mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", str(mount)):
        pytest.skip(
            "cannot mount a tmpfs here (needs root); tests/io/test_input_safety.py injects the errors"
        )
    try:
        yield mount
    finally:
        if not _run("umount", str(mount)):
            _run("umount", "-l", str(mount))


def test_disk_full_while_writing_exits_2_and_leaves_nothing(small_disk: Path, big: Path) -> None:
    done = _pipekit("clean", str(big), "--out", str(small_disk), "--now", NOW)
    assert done.returncode == 2, done.stderr
    _no_traceback(done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(small_disk) in lines[0] and "No space left on device" in lines[0], (
        done.stderr
    )
    assert "free some space" in done.stderr
    assert list(small_disk.iterdir()) == []


def test_read_only_output_folder_exits_2_and_leaves_nothing(small_disk: Path, tmp_path: Path) -> None:
    src = write_customers_csv(tmp_path / "c.csv", 500, seed=1)
    if not _run("mount", "-o", "remount,ro", str(small_disk)):
        pytest.skip("cannot remount the tmpfs read-only here")
    done = _pipekit("clean", str(src), "--out", str(small_disk), "--now", NOW)
    assert done.returncode == 2, done.stderr
    _no_traceback(done.stderr)
    assert f"error: cannot write {small_disk}" in done.stderr and "Read-only file system" in done.stderr
    assert "choose a folder you can write to" in done.stderr
    assert list(small_disk.iterdir()) == []


# --- the customer job (`pipekit airflow run-customer`): backup and manifest on a full disk ------------


def _fill(disk: Path) -> None:
    """Fill ``disk`` up to the last block."""
    with open(disk / "filler", "wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()


def _run_customer(base: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _pipekit("airflow", "run-customer", "--base-dir", str(base), "--now", NOW, "--json", *extra)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("where", ["backup", "manifest"])
def test_run_customer_on_a_full_disk_exits_2_keeps_the_landing_file_and_the_retry_copies_once(
    small_disk: Path, tmp_path: Path, where: str
) -> None:
    """ENOSPC on the backup copy (a 3 MB file into 1 MiB) or on the manifest line (a full disk): one
    error line naming the path, exit 2, the landing file untouched, no partial backup, no torn manifest
    line, no backup that no record names; with space again, one run does it all, with one backup."""
    base = tmp_path / "base"
    rows = 30_000 if where == "backup" else 50
    landing = write_customers_csv(base / "landing" / "customers.csv", rows, seed=4)
    original = landing.read_bytes()
    if where == "backup":
        extra, named = ("--backup-dir", str(small_disk)), small_disk
    else:
        (small_disk / "manifest.jsonl").touch()
        _fill(small_disk)
        extra, named = ("--manifest", str(small_disk / "manifest.jsonl")), small_disk / "manifest.jsonl"

    done = _run_customer(base, *extra)
    assert done.returncode == 2, done.stdout + done.stderr
    _no_traceback(done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(named) in errors[0] and "No space left on device" in errors[0], done.stderr
    assert "free some space" in done.stderr
    assert landing.read_bytes() == original
    if where == "backup":
        assert _files(small_disk) == []  # no temp file, no partial backup
    else:
        assert (small_disk / "manifest.jsonl").read_bytes() == b""  # no torn line
        assert _files(base / "backups") == []  # the unrecorded backup went

    # Space again: the manifest's disk is emptied; the 3 MB backup goes to a folder with room.
    (small_disk / "filler").unlink(missing_ok=True)
    backups = tmp_path / "roomy-backups" if where == "backup" else base / "backups"
    retry = _run_customer(base, *(("--backup-dir", str(backups)) if where == "backup" else extra))
    assert retry.returncode == 0, retry.stderr
    assert not landing.exists()
    assert len([n for n in _files(backups) if n.endswith(".csv")]) == 1, _files(backups)


def test_run_customer_killed_mid_run_then_rerun_makes_one_backup_and_one_ingest(
    big: Path, tmp_path: Path
) -> None:
    """SIGKILL once the backup and the ``ingested`` line exist (while it validates or cleans), then a re-run:
    the re-run reuses that backup and line (same sha256, same ingest): one backup, one ``ingested`` and
    one ``completed`` line, the landing file removed only at the end, no staging litter."""
    import json

    from pipekit.io.ingest import Manifest

    base = tmp_path / "base"
    (base / "landing").mkdir(parents=True)
    landing = base / "landing" / "customers.csv"
    landing.write_bytes(big.read_bytes())
    manifest = Manifest(base / "manifest.jsonl")
    args = [str(PIPEKIT), "airflow", "run-customer", "--base-dir", str(base), "--now", NOW, "--json"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if (base / "manifest.jsonl").exists() and any(e.event == "ingested" for e in manifest.entries()):
                break
            time.sleep(0.01)
        if proc.poll() is not None:
            pytest.fail(f"run-customer ended (exit {proc.returncode}) before it could be killed: {proc.stderr.read()}")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert landing.exists()

    rerun = _run_customer(base)
    assert rerun.returncode == 0, rerun.stderr
    assert not landing.exists()
    events = [e.event for e in manifest.entries()]
    assert events.count("ingested") == 1 and events.count("completed") == 1, events
    assert len([n for n in _files(base / "backups") if n.endswith(".csv")]) == 1, _files(base / "backups")
    assert json.loads(rerun.stdout)["counts"]
    hidden = [p for p in (base / "output").rglob(".*")]
    assert hidden == [], hidden  # the killed run's staging folder was removed by the re-run


@pytest.mark.parametrize("command", ["validate", "scan-pii"])
def test_validate_and_scan_pii_name_the_long_row_and_take_the_same_limit_option(tmp_path: Path, command: str) -> None:
    """A 12 MB field (Arrow takes rows up to about twice the limit): exit 2 naming the line and
    `--max-row-bytes`, which the command itself takes."""
    src = tmp_path / "huge.csv"
    src.write_text("id,name,email,timestamp\n1,Ann,a@example.com,2024-01-01\n"
                   f"2,{'x' * 12_000_000},b@example.com,2024-01-02\n")
    refused = _pipekit(command, str(src))
    assert refused.returncode == 2, refused.stderr
    _no_traceback(refused.stderr)
    assert "line 3" in refused.stderr and "--max-row-bytes" in refused.stderr, refused.stderr
    raised = _pipekit(command, str(src), "--max-row-bytes", "32MiB", "--json")
    assert raised.returncode in (0, 1), raised.stderr  # 1: problems / PII found, as documented
    _no_traceback(raised.stderr)
