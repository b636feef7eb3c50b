"""Fixtures for the CI/CD tests: one offline twin per session, AWS env pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cicd_helpers import ARTIFACTS, BUCKET, GlueRepo

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
    """The twin (moto + pipekit handlers) on 127.0.0.1, one per session."""
    server = TwinServer(tmp_path_factory.mktemp("cicd-twin")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _twin_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_* env pointing at the twin, for this test only (other test directories never see it)."""
    if "twin" not in request.fixturenames and not {"reset_twin", "glue_repo", "twin_state"} & set(
            request.fixturenames):
        return
    server = request.getfixturevalue("twin")
    for k, v in {**_ENV, "AWS_ENDPOINT_URL": server.endpoint_url}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture()
def twin_state(twin: TwinServer) -> Path:
    """The twin's state directory."""
    return twin.state_dir


@pytest.fixture()
def reset_twin(twin: TwinServer) -> Iterator[TwinServer]:
    """The twin, with moto's state reset before the test so tests stay independent."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{twin.endpoint_url}/moto-api/reset", method="POST"))
    # The twin's own Glue job runs live beside moto's state and survive a moto reset: clear them too.
    runs = twin._server.app.shared.get("glue_twin", {}).get("runs")
    if runs is not None:
        runs.clear()
    yield twin


@pytest.fixture()
def glue_repo(reset_twin: TwinServer, tmp_path: Path) -> GlueRepo:
    """A fresh CodeCommit repo 'glue-etl' (cloned locally), the scripts bucket and the artifact bucket."""
    import subprocess

    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("s3").create_bucket(Bucket=ARTIFACTS)
    url = boto3.client("codecommit").create_repository(repositoryName="glue-etl")["repositoryMetadata"][
        "cloneUrlHttp"]
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, capture_output=True)
    repo = GlueRepo("glue-etl", work)
    repo.git("config", "user.email", "dev@example.com")
    repo.git("config", "user.name", "dev")
    repo.git("checkout", "-q", "-B", "main")
    return repo


@pytest.fixture(scope="session")
def handler():
    """The real Lambda handler from adapters/lambda/handler.py."""
    from pipekit.local.codepipeline_twin import load_handler

    return load_handler()
