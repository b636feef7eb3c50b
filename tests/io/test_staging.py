"""Which staging folders a run may remove: only those whose owner (named in the folder's name) died, or
whose pid now names another process, or (a name naming no owner) that are older than a day."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipekit.io import _staging
from pipekit.io._staging import (
    STAGING_PREFIX,
    UNOWNED_STALE_AFTER_S,
    Staging,
    is_stale,
    process_start,
    remove_stale,
    staging_name,
)


def _folder(parent: Path, name: str) -> Path:
    folder = parent / name
    folder.mkdir()
    return folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process (until the system reuses it)
    return proc.pid


def test_owner_alive_dead_or_reused(tmp_path: Path) -> None:
    me = os.getpid()
    alive = _folder(tmp_path, staging_name(me, process_start(me), 0))
    reused = _folder(tmp_path, staging_name(me, "1", 1))  # same pid, another start time: another process
    dead = _folder(tmp_path, staging_name(_dead_pid(), "1", 0))
    dead_no_start = _folder(tmp_path, staging_name(_dead_pid(), "-", 0))  # start time was unknown
    assert not is_stale(alive)
    assert is_stale(reused)
    assert is_stale(dead) and is_stale(dead_no_start)
    assert remove_stale(tmp_path) == 3
    assert [p.name for p in tmp_path.iterdir()] == [alive.name]


def test_an_empty_folder_of_a_run_killed_right_after_mkdir_is_stale(tmp_path: Path) -> None:
    """Nothing but the folder itself: the name alone tells the owner (a SIGKILL between mkdir and the
    first write used to leave a folder no run removed for a day)."""
    empty = _folder(tmp_path, staging_name(_dead_pid(), "12345", 0))
    assert list(empty.iterdir()) == [] and is_stale(empty)


def test_a_folder_whose_name_names_no_owner_is_stale_only_when_old(tmp_path: Path) -> None:
    young = _folder(tmp_path, f"{STAGING_PREFIX}young")
    garbled = _folder(tmp_path, f"{STAGING_PREFIX}12-x-0")
    assert not is_stale(young) and not is_stale(garbled)
    later = young.stat().st_mtime + UNOWNED_STALE_AFTER_S + 1
    assert is_stale(young, now=later) and is_stale(garbled, now=later)


def test_staging_leaves_nothing_after_commit_or_failure(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.csv"
    with Staging() as staging:
        tmp = staging.new(target)
        assert tmp.parent.name.startswith(STAGING_PREFIX) and not is_stale(tmp.parent)
        tmp.write_text("x")
        staging.commit()
    assert [p.name for p in target.parent.iterdir()] == ["a.csv"]
    try:
        with Staging() as staging:
            staging.new(tmp_path / "out" / "b.csv")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert [p.name for p in target.parent.iterdir()] == ["a.csv"]


def test_a_stop_signal_right_after_the_folder_is_made_still_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM raised on the way out of mkdir (it can wait for the GIL) must not leave the folder."""
    real_mkdir = os.mkdir

    def mkdir_then_interrupted(path: object, mode: int = 0o777) -> None:
        real_mkdir(path, mode)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(_staging.os, "mkdir", mkdir_then_interrupted)
    with pytest.raises(KeyboardInterrupt), _staging.Staging() as staging:
        staging.new(tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []
