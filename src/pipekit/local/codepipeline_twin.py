"""CodePipeline job results on the twin, and a pipeline simulator that invokes the real Lambda handler.

moto has no job-result operations. The twin keeps each job as JSON under
``<state_dir>/codepipeline/jobs/<job-id>.json`` and answers PutJobSuccessResult (with or without a
continuationToken), PutJobFailureResult and GetJobDetails like AWS, including a job's one-result rule
(a second result is ``InvalidJobStateException``). Two twin-only targets, not part
of any AWS API, let the simulator register jobs and read their results:
``CodePipeline_20150709.PipekitCreateJob`` and ``CodePipeline_20150709.PipekitGetJob``.

:func:`run_on_push` plays CodePipeline + EventBridge for one push: it zips the commit into the
artifact bucket (as the CodeCommit source action does), builds a real-shaped ``CodePipeline.job``
event, calls the handler, and re-invokes it with a new job carrying the continuation token until the
handler reports success or failure.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pipekit.local.server import TwinContext, TwinFault, operation

_T = "CodePipeline_20150709."
_LOCK = threading.Lock()


def _jobs_dir(ctx: TwinContext) -> Path:
    path = ctx.state_dir / "codepipeline" / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load(ctx: TwinContext, job_id: str) -> dict[str, Any]:
    path = _jobs_dir(ctx) / f"{job_id}.json"
    if not job_id or "/" in job_id or not path.exists():
        raise TwinFault("JobNotFoundException", f"Job {job_id} not found")
    return json.loads(path.read_text())


def _save(ctx: TwinContext, job: dict[str, Any]) -> None:
    from pipekit.io.atomic import atomic_write_text

    atomic_write_text(_jobs_dir(ctx) / f"{job['id']}.json", json.dumps(job, indent=2, default=str))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _finish(ctx: TwinContext, body: dict[str, Any], status: str, result: dict[str, Any]) -> dict[str, Any]:
    with _LOCK:
        job = _load(ctx, body.get("jobId", ""))
        # A job takes one result, as in AWS. A success with a continuationToken is one too: CodePipeline
        # carries the token to a new job, and this one is finished (its status stays InProgress here so
        # that the simulator knows to invoke again).
        if job["status"] == "TimedOut":
            raise TwinFault("InvalidJobStateException",
                            f"Job {job['id']} is TimedOut: its action already failed without a result")
        if job["results"]:
            raise TwinFault("InvalidJobStateException",
                            f"Job {job['id']} already has a result ({job['results'][-1]['type']}); "
                            "a job accepts one PutJobSuccessResult or PutJobFailureResult")
        job["status"] = status
        job["results"].append({**result, "at": _now()})
        _save(ctx, job)
    return {}


@operation(_T + "PutJobSuccessResult")
def put_job_success_result(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Success; with a continuationToken the action stays in progress and is invoked again."""
    token = body.get("continuationToken")
    status = "InProgress" if token else "Succeeded"
    return _finish(ctx, body, status, {"type": "success", "continuationToken": token,
                                        "executionDetails": body.get("executionDetails"),
                                        "outputVariables": body.get("outputVariables")})


@operation(_T + "PutJobFailureResult")
def put_job_failure_result(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Failure with the action's message."""
    details = body.get("failureDetails") or {}
    if not details.get("type") or not details.get("message"):
        raise TwinFault("ValidationException", "failureDetails needs type and message")
    return _finish(ctx, body, "Failed", {"type": "failure", "failureDetails": details})


def time_out_job(ctx: TwinContext, job_id: str) -> None:
    """The action gave up on a job that got no result: a late result is refused, as in AWS."""
    with _LOCK:
        job = _load(ctx, job_id)
        if not job["results"]:
            job["status"] = "TimedOut"
            _save(ctx, job)


@operation(_T + "GetJobDetails")
def get_job_details(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    job = _load(ctx, body.get("jobId", ""))
    return {"jobDetails": {"id": job["id"], "data": job["data"], "accountId": job["accountId"]}}


@operation(_T + "PipekitCreateJob")
def create_job(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Twin-only: register a job the simulator is about to invoke the action for."""
    job: dict[str, Any] = {"id": str(uuid.uuid4()), "accountId": ctx.account, "data": body.get("data") or {},
                           "status": "InProgress", "createdAt": _now(), "results": []}
    with _LOCK:
        _save(ctx, job)
    return {"jobId": job["id"]}


@operation(_T + "PipekitGetJob")
def get_job(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Twin-only: a job with its status and every result reported for it."""
    return {"job": _load(ctx, body.get("jobId", ""))}


# ------------------------------------------------------------------------------------ the simulator


def twin_call(endpoint_url: str, target: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a JSON-protocol request for ``target`` to the twin (for the twin-only targets)."""
    req = urllib.request.Request(endpoint_url, data=json.dumps(body).encode(), method="POST", headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/codepipeline/aws4_request"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


@dataclass
class FakeLambdaContext:
    """The parts of the Lambda context object the handler uses."""

    timeout_s: float = 900.0
    function_name: str = "pipekit-glue-deploy"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


@dataclass
class Invocation:
    """One invocation of the action: the job, the handler's return value, and what it reported."""

    job_id: str
    event: dict[str, Any]
    returned: Any
    job: dict[str, Any]

    @property
    def result(self) -> dict[str, Any] | None:
        return self.job["results"][-1] if self.job["results"] else None


@dataclass
class PipelineRun:
    """A simulated pipeline execution for one commit."""

    commit: str
    invocations: list[Invocation]
    status: str
    message: str


def _endpoint(session: Any | None) -> str:
    from pipekit.aws._client import client

    url = client("codepipeline", session).meta.endpoint_url
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"the pipeline simulator only talks to the local twin, not {url}")
    return url


def source_zip(repository: str, commit: str, *, session: Any | None = None) -> bytes:
    """The repository at ``commit`` as a zip, as CodePipeline's CodeCommit source action builds it."""
    from pipekit.aws._client import client

    clone_url = client("codecommit", session).get_repository(repositoryName=repository)[
        "repositoryMetadata"]["cloneUrlHttp"]
    git_dir = unquote(urlparse(clone_url).path)
    return subprocess.run(["git", "--git-dir", git_dir, "archive", "--format=zip", commit],
                          check=True, capture_output=True).stdout


def run_on_push(
    handler: Callable[[dict[str, Any], Any], Any],
    *,
    repository: str,
    branch: str,
    artifact_bucket: str,
    user_parameters: dict[str, Any],
    pipeline_name: str = "glue-deploy",
    function_name: str = "pipekit-glue-deploy",
    timeout_s: float = 900.0,
    poll_s: float = 1.0,
    max_invocations: int = 60,
    session: Any | None = None,
    on_invocation: Callable[[Invocation], None] | None = None,
) -> PipelineRun:
    """Simulate: push to ``branch`` -> rule starts the pipeline -> Source -> Lambda invoke (until done)."""
    from pipekit.aws import codecommit
    from pipekit.aws._client import client

    endpoint = _endpoint(session)
    commit = codecommit.get_branch_head(repository, branch, session=session)
    key = f"{pipeline_name}/SourceArti/{uuid.uuid4().hex[:7]}"
    client("s3", session).put_object(Bucket=artifact_bucket, Key=key,
                                     Body=source_zip(repository, commit, session=session))
    data: dict[str, Any] = {
        "actionConfiguration": {"configuration": {"FunctionName": function_name,
                                                  "UserParameters": json.dumps(user_parameters)}},
        "inputArtifacts": [{"name": "SourceOutput", "revision": commit,
                            "location": {"type": "S3", "s3Location": {"bucketName": artifact_bucket,
                                                                      "objectKey": key}}}],
        "outputArtifacts": [],
        # Real pipelines pass short-lived credentials for the artifact bucket; the twin accepts any.
        "artifactCredentials": {"accessKeyId": "testing", "secretAccessKey": "testing",
                                "sessionToken": "testing", "expirationTime": int(time.time() + 3600) * 1000},
    }
    invocations: list[Invocation] = []
    for _ in range(max_invocations):
        job_id = twin_call(endpoint, _T + "PipekitCreateJob", {"data": data})["jobId"]
        event = {"CodePipeline.job": {"id": job_id, "accountId": "123456789012", "data": data}}
        try:
            returned = handler(event, FakeLambdaContext(timeout_s, function_name))
        except Exception as exc:  # the Lambda crashed: CodePipeline sees no result for the job
            returned = {"error": f"{type(exc).__name__}: {exc}"}
        job = twin_call(endpoint, _T + "PipekitGetJob", {"jobId": job_id})["job"]
        inv = Invocation(job_id, event, returned, job)
        invocations.append(inv)
        if on_invocation is not None:
            on_invocation(inv)
        result = inv.result
        if result is None:
            return PipelineRun(commit, invocations, "Failed",
                               "The action timed out: the Lambda returned without reporting a job result.")
        if job["status"] == "Failed":
            return PipelineRun(commit, invocations, "Failed", result["failureDetails"]["message"])
        if job["status"] == "Succeeded":
            return PipelineRun(commit, invocations, "Succeeded",
                               (result.get("executionDetails") or {}).get("summary", ""))
        data = {**data, "continuationToken": result["continuationToken"]}
        time.sleep(poll_s)
    return PipelineRun(commit, invocations, "Failed", f"still in progress after {max_invocations} invocations")


def load_handler(path: str | Path | None = None) -> Callable[[dict[str, Any], Any], Any]:
    """Import the Lambda handler from ``path`` (default: this checkout's ``adapters/lambda/handler.py``)."""
    import importlib.util

    path = Path(path) if path else Path(__file__).resolve().parents[3] / "adapters" / "lambda" / "handler.py"
    spec = importlib.util.spec_from_file_location("pipekit_lambda_handler", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def install_push_trigger(
    repository: str,
    *,
    bucket: str,
    artifact_bucket: str,
    branch: str = "main",
    source: str = "codecommit",
    poll_s: float = 3.0,
    session: Any | None = None,
) -> Path:
    """Play the EventBridge rule: a ``post-receive`` hook in the twin's git repo runs the pipeline on a push.

    ``git push`` then shows the pipeline's invocations as ``remote:`` lines. Returns the hook's path.
    """
    import os
    import shlex
    import shutil
    import sys

    from pipekit.aws._client import client

    endpoint = _endpoint(session)
    clone_url = client("codecommit", session).get_repository(repositoryName=repository)[
        "repositoryMetadata"]["cloneUrlHttp"]
    git_dir = Path(unquote(urlparse(clone_url).path))
    pipekit_bin = shutil.which("pipekit") or str(Path(sys.executable).parent / "pipekit")
    region = client("codecommit", session).meta.region_name
    command = [pipekit_bin, "lambda", "run-local", "--repository", repository, "--bucket", bucket,
               "--artifact-bucket", artifact_bucket, "--branch", branch, "--source", source, "--poll", str(poll_s)]
    hook = git_dir / "hooks" / "post-receive"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(
        "#!/bin/sh\n"
        f"# Installed by pipekit: the EventBridge rule (CodeCommit Repository State Change on {branch})\n"
        "# that starts the Glue deploy pipeline, played on the offline twin.\n"
        "while read old new ref; do\n"
        f"  [ \"$ref\" = {shlex.quote('refs/heads/' + branch)} ] || continue\n"
        f"  AWS_ENDPOINT_URL={shlex.quote(endpoint)} AWS_DEFAULT_REGION={shlex.quote(region)} \\\n"
        "  AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing} \\\n"
        f"  {shlex.join(command)} || true\n"
        "done\n"
    )
    os.chmod(hook, 0o755)
    return hook
