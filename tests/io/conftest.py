"""Every test gets its own XDG_STATE_HOME: `--bad-rows quarantine` keeps raw rows in a private folder
under it by default, and a test must never write to the real home directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh state folder for this test (subprocesses inherit it through the environment)."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state
