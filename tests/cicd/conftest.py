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
    # The twin's own Glue job runs live beside moto's state and survive a moto reset: clear them too.
    runs = twin._server.app.shared.get("glue_twin", {}).get("runs")
    if runs is not None:
        runs.clear()
    yield twin


EVENTS = Path(__file__).parent / "events"
BUCKET = "glue-assets-cicd"
ARTIFACTS = "pipeline-artifacts-cicd"
ROLE = "arn:aws:iam::123456789012:role/GlueJobRole"


def job_config(script: str = "etl.py", **overrides: object) -> str:
    """A valid job config as JSON text."""
    import json

    doc = {"script": script, "role": ROLE, "glue_version": "5.0", "worker_type": "G.1X",
           "number_of_workers": 2, "timeout_minutes": 10, "default_arguments": {"--stage": "test"},
           "tags": {"team": "data"}, "run_after_deploy": True}
    doc.update(overrides)
    return json.dumps(doc, indent=2)


class GlueRepo:
    """A CodeCommit repository on the twin with a local clone to commit and push from."""

    def __init__(self, name: str, work: Path) -> None:
        self.name = name
        self.work = work

    def git(self, *args: str) -> str:
        import subprocess

        return subprocess.run(["git", "-C", str(self.work), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or delete, for None) files, commit, push to main; return the commit id."""
        for rel, text in files.items():
            p = self.work / rel
            if text is None:
                p.unlink()
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        self.git("push", "-q", "origin", "HEAD:main")
        return self.git("rev-parse", "HEAD")

    def params(self, **extra: object) -> dict[str, object]:
        """UserParameters for the deploy action."""
        return {"bucket": BUCKET, "repository": self.name, "branch": "main", **extra}

    def event(self, fixture: str, *, job_id: str | None = None, commit: str | None = None,
              params: dict[str, object] | None = None, token: str = "", artifact_key: str = "") -> dict:
        """A fixture event from tests/cicd/events with its ${...} placeholders filled, job registered on the twin."""
        import json
        import string

        from pipekit.local.codepipeline_twin import twin_call

        if job_id is None:
            job_id = twin_call(os.environ["AWS_ENDPOINT_URL"], "CodePipeline_20150709.PipekitCreateJob",
                               {"data": {}})["jobId"]
        values = {
            "JOB_ID": job_id,
            "COMMIT": commit or self.git("rev-parse", "HEAD"),
            "USER_PARAMETERS": json.dumps(json.dumps(params or self.params()))[1:-1],
            "ARTIFACT_BUCKET": ARTIFACTS,
            "ARTIFACT_KEY": artifact_key or "glue-deploy/SourceArti/none",
            "CONTINUATION_TOKEN": json.dumps(token)[1:-1],
        }
        return json.loads(string.Template((EVENTS / fixture).read_text()).substitute(values))


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


def job_record(job_id: str) -> dict:
    """The twin's record of a CodePipeline job: status and every result reported."""
    from pipekit.local.codepipeline_twin import twin_call

    return twin_call(os.environ["AWS_ENDPOINT_URL"], "CodePipeline_20150709.PipekitGetJob", {"jobId": job_id})["job"]
