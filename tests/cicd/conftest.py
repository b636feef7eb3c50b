"""Fixtures for the CI/CD tests: one offline twin per session, AWS env pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipekit.local.server import TwinServer

_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinServer]:
    """The twin (moto + pipekit handlers) on 127.0.0.1, with AWS_ENDPOINT_URL exported for the session."""
    server = TwinServer(tmp_path_factory.mktemp("twin")).start()
    saved = {k: os.environ.get(k) for k in [*_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(_ENV, AWS_ENDPOINT_URL=server.endpoint_url)
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture()
def twin_state(twin: TwinServer) -> Path:
    """The twin's state directory."""
    return twin.state_dir


@pytest.fixture()
def reset_twin(twin: TwinServer) -> Iterator[TwinServer]:
    """The twin, with moto's state reset before the test so tests stay independent."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{twin.endpoint_url}/moto-api/reset", method="POST"))
    yield twin
