"""Helpers shared by the CI/CD tests (imported as ``cicd_helpers``; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

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


def job_record(job_id: str) -> dict:
    """The twin's record of a CodePipeline job: status and every result reported."""
    from pipekit.local.codepipeline_twin import twin_call

    return twin_call(os.environ["AWS_ENDPOINT_URL"], "CodePipeline_20150709.PipekitGetJob", {"jobId": job_id})["job"]


class _Http:
    status_code = 200


class Starts:
    """A boto3 session whose StartPipelineExecution calls are recorded and answered without a pipeline."""

    def __init__(self) -> None:
        import boto3

        self.calls: list[dict[str, Any]] = []
        self.session = boto3.Session()
        self.session.events.register("before-call.codepipeline.StartPipelineExecution", self._answer)

    def _answer(self, params: dict[str, Any], **kwargs: Any) -> tuple[_Http, dict[str, Any]]:
        self.calls.append(json.loads(params["body"]))
        return _Http(), {"pipelineExecutionId": f"exec-{len(self.calls)}", "ResponseMetadata": {"HTTPStatusCode": 200}}


def push_event(repo: GlueRepo, commit: str, old: str | None = None, branch: str = "main") -> dict[str, Any]:
    """A CodeCommit state-change event for a push of ``commit`` (``old``..``commit``) to ``branch``."""
    detail: dict[str, Any] = {"event": "referenceUpdated" if old else "referenceCreated",
                              "referenceType": "branch", "referenceName": branch,
                              "referenceFullName": f"refs/heads/{branch}", "repositoryName": repo.name,
                              "commitId": commit}
    if old:
        detail["oldCommitId"] = old
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "CodeCommit Repository State Change",
            "source": "aws.codecommit", "detail": detail}
