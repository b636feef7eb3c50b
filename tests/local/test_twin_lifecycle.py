"""`pipekit local up|status|down`: a detached twin process on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipekit.local import twin

pytestmark = pytest.mark.twin

PIPEKIT = Path(sys.executable).parent / "pipekit"


def test_up_status_down_through_the_cli(tmp_path) -> None:
    # none of the caller's AWS_* settings (endpoint, profile, token): the exports alone must do
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
           "PIPEKIT_TWIN_DIR": str(tmp_path / "twin")}
    try:
        up = subprocess.run([str(PIPEKIT), "local", "up"], capture_output=True, text=True, env=env, timeout=180)
        assert up.returncode == 0, up.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
        url = exports["AWS_ENDPOINT_URL"]
        assert url.startswith("http://127.0.0.1:")
        state = twin.status(tmp_path / "twin")
        assert state is not None and state.endpoint_url == url and state.stack_name == "pipekit-etl"
        # the unchanged AWS CLI works against it through AWS_ENDPOINT_URL alone
        aws = Path(sys.executable).parent / "aws"
        if aws.exists():
            out = subprocess.run([str(aws), "glue", "get-crawler", "--name", "customers-csv-crawler", "--query",
                                  "Crawler.State", "--output", "text"], capture_output=True, text=True,
                                 env={**env, **exports}, timeout=120)
            assert out.returncode == 0 and out.stdout.strip() == "READY", out.stderr
        # up again reuses the running twin
        again = subprocess.run([str(PIPEKIT), "local", "up", "--no-provision"], capture_output=True, text=True,
                               env=env, timeout=120)
        assert f"AWS_ENDPOINT_URL={url}" in again.stdout
        status = subprocess.run([str(PIPEKIT), "local", "status"], capture_output=True, text=True, env=env)
        assert status.returncode == 0 and url in status.stdout
    finally:
        down = subprocess.run([str(PIPEKIT), "local", "down"], capture_output=True, text=True, env=env, timeout=60)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert twin.status(tmp_path / "twin") is None
    gone = subprocess.run([str(PIPEKIT), "local", "status"], capture_output=True, text=True, env=env)
    assert gone.returncode == 1


def test_down_without_a_twin_says_so(tmp_path) -> None:
    assert twin.down(tmp_path / "none") is False
