"""`pipekit clean` killed mid-run leaves no litter for good: SIGKILL leaves its staging folder, which the
next run removes; SIGTERM/SIGHUP unwind like Ctrl-C (exit 128 + signal, staging removed, nothing
published); a staging folder whose owner is alive is never touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipekit.io._staging import STAGING_PREFIX, process_start, staging_name
from pipekit.sample import write_customers_csv

PIPEKIT = Path(sys.executable).parent / "pipekit"
NOW = "2026-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~300k rows (~34 MB): a clean of a couple of seconds, time to stop it while it runs."""
    return write_customers_csv(tmp_path_factory.mktemp("big") / "customers.csv", 300_000, seed=5)


def _clean(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    args = [str(PIPEKIT), "clean", str(src), "--out", str(out), "--now", NOW, "--json"]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def _staging_folders(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)] if out.is_dir() else []


def _signal_mid_run(src: Path, out: Path, sig: int) -> subprocess.CompletedProcess[str]:
    """Start clean, send ``sig`` once its staging folder exists; retry when the run finished first."""
    for attempt in range(5):
        target = out / f"try{attempt}"
        proc = subprocess.Popen([str(PIPEKIT), "clean", str(src), "--out", str(target), "--now", NOW],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and not _staging_folders(target) and time.monotonic() < deadline:
                time.sleep(0.005)
            sent = proc.poll() is None
            if sent:
                proc.send_signal(sig)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if sent and proc.returncode != 0:
            return subprocess.CompletedProcess([str(target)], proc.returncode, stdout, stderr)
    pytest.fail("the run always finished before the test could signal it")


def _hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


def test_sigkill_leaves_staging_that_the_next_run_removes(big: Path, tmp_path: Path) -> None:
    killed = _signal_mid_run(big, tmp_path / "out", signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    out = Path(killed.args[0])
    (stale,) = _staging_folders(out)  # the killed run could not clean up
    assert list(out.glob("customers_*")) == []  # nothing published

    rerun = _clean(big, out)
    assert rerun.returncode == 0, rerun.stderr
    assert not stale.exists()
    assert _hidden(out) == []
    report = json.loads(rerun.stdout)
    assert report["stale_staging_removed"] == 1
    reference = _clean(big, tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    assert json.loads(reference.stdout)["stale_staging_removed"] == 0
    for name in ("customers_cleaned.csv", "customers_cleaned.parquet"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert report["rows_written"] == json.loads(reference.stdout)["rows_written"] > 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(big: Path, tmp_path: Path, sig: int) -> None:
    done = _signal_mid_run(big, tmp_path / "out", sig)
    assert done.returncode == 128 + sig, done.stderr
    assert "Traceback" not in done.stderr and "Fatal Python error" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == ["interrupted"]
    out = Path(done.args[0])
    assert list(out.iterdir()) == []  # no staging folder, no temp file, nothing published


def test_a_staging_folder_of_a_live_process_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    live = out / staging_name(os.getpid(), process_start(os.getpid()), 99)
    live.mkdir(parents=True)
    (live / "customers_cleaned.csv.0.tmp").write_text("in progress")
    src = write_customers_csv(tmp_path / "customers.csv", 50)

    done = _clean(src, out)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stale_staging_removed"] == 0
    assert (live / "customers_cleaned.csv.0.tmp").read_text() == "in progress"
    assert _hidden(out) == [live.name]
