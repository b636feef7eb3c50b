"""Which staging folders a run may remove: only those whose owner died, or whose pid now names another
process, or (no owner file) that are older than a day."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipekit.io._staging import (
    OWNER_FILE,
    STAGING_PREFIX,
    UNOWNED_STALE_AFTER_S,
    Staging,
    is_stale,
    process_start,
    remove_stale,
)


def _folder(parent: Path, name: str, owner: str | None) -> Path:
    folder = parent / f"{STAGING_PREFIX}{name}"
    folder.mkdir()
    if owner is not None:
        (folder / OWNER_FILE).write_text(owner)
    return folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process (until the system reuses it)
    return proc.pid


def test_owner_alive_dead_or_reused(tmp_path: Path) -> None:
    me = os.getpid()
    alive = _folder(tmp_path, "alive", f"{me} {process_start(me)}")
    reused = _folder(tmp_path, "reused", f"{me} 1")  # same pid, another start time: another process
    dead = _folder(tmp_path, "dead", f"{_dead_pid()} 1")
    assert not is_stale(alive)
    assert is_stale(reused)
    assert is_stale(dead)
    assert remove_stale(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == [alive.name]


def test_a_folder_without_owner_is_stale_only_when_old(tmp_path: Path) -> None:
    young = _folder(tmp_path, "young", None)
    garbled = _folder(tmp_path, "garbled", "not a pid")
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
