"""CodePipeline executions on the twin: the pipeline's stages and actions run for real.

moto stores pipeline declarations and (5.2.5) marks a started execution Succeeded at once, running
nothing. Here StartPipelineExecution queues an execution that a worker thread per pipeline runs in
order (``ExecutionMode: QUEUED`` semantics; SUPERSEDED and PARALLEL pipelines are run the same way):

- a CodeCommit **Source** action zips the branch head (``git archive``, the ``CODE_ZIP`` format) into the
  artifact bucket as ``<pipeline[:20]>/<artifact[:10]>/<id>``, as CodePipeline names it;
- a Lambda **Invoke** action creates a job (:mod:`pipekit.local.codepipeline_twin`, which enforces the
  one-result rule), runs the function from its zip (:mod:`pipekit.local.lambda_runner`) with the
  ``CodePipeline.job`` event, and while the function reports success with a continuation token, invokes
  it again with a new job carrying the token, until a final result.

ListPipelineExecutions, GetPipelineExecution, GetPipelineState and ListActionExecutions read this state.
Other action providers fail the execution with a message saying the twin does not run them.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

from pipekit.local.server import TwinContext, TwinFault, operation

log = logging.getLogger("pipekit.local.pipeline_runs")

_T = "CodePipeline_20150709."
_LOCK = threading.RLock()
_KEY = "pipeline_runs"

#: Seconds between a success-with-continuation-token and the next invocation (AWS waits about a minute).
CONTINUATION_DELAY_ENV = "PIPEKIT_TWIN_CONTINUATION_SECONDS"
#: How long an Invoke action may go on being continued (the Lambda Invoke action's limit is one hour).
ACTION_TIMEOUT_S = 3600.0


def _state(ctx: TwinContext) -> dict[str, Any]:
    with _LOCK:
        return ctx.shared.setdefault(_KEY, {"executions": {}, "actions": [], "queues": {}})


def _pipeline(ctx: TwinContext, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from moto.codepipeline.exceptions import PipelineNotFoundException
    from moto.codepipeline.models import codepipeline_backends

    try:
        return codepipeline_backends[ctx.account][ctx.region].get_pipeline(name)
    except PipelineNotFoundException as exc:
        raise TwinFault("PipelineNotFoundException",
                        f"Account '{ctx.account}' does not have a pipeline with name '{name}'") from exc


# ------------------------------------------------------------------------------------------ API


def start_execution(ctx: TwinContext, name: str, *, trigger: dict[str, str],
                    variables: list[dict[str, str]] | None = None,
                    source_revisions: list[dict[str, str]] | None = None,
                    client_request_token: str | None = None) -> str:
    """Queue an execution of pipeline ``name``; returns its id (the same one again for a repeated token)."""
    declaration, _ = _pipeline(ctx, name)
    if client_request_token:
        with _LOCK:
            seen = _state(ctx).setdefault("tokens", {}).get((name, client_request_token))
        if seen:
            return str(seen)
    overrides: dict[str, str] = {}
    for rev in source_revisions or []:
        if rev.get("revisionType") != "COMMIT_ID":
            raise TwinFault("ValidationException", f"the pipekit twin overrides CodeCommit sources by COMMIT_ID "
                                                   f"only, not {rev.get('revisionType')}")
        overrides[rev["actionName"]] = rev["revisionValue"]
    now = time.time()
    execution: dict[str, Any] = {
        "pipelineName": name,
        "pipelineVersion": declaration.get("version", 1),
        "pipelineExecutionId": str(uuid.uuid4()),
        "status": "InProgress",
        "statusSummary": "",
        "startTime": now,
        "lastUpdateTime": now,
        "trigger": trigger,
        "executionMode": declaration.get("executionMode", "SUPERSEDED"),
        "executionType": "STANDARD",
        "artifactRevisions": [],
        "variables": [{"name": v["name"], "resolvedValue": v["value"]} for v in variables or []],
        "stages": {},
        "declaration": json.loads(json.dumps(declaration, default=str)),
        "sourceOverrides": overrides,
    }
    state = _state(ctx)
    with _LOCK:
        state["executions"][execution["pipelineExecutionId"]] = execution
        if client_request_token:
            state["tokens"][(name, client_request_token)] = execution["pipelineExecutionId"]
        q = state["queues"].get(name)
        if q is None:
            q = state["queues"][name] = queue.Queue()
            worker_ctx = replace(ctx)
            threading.Thread(target=_worker, args=(worker_ctx, q), daemon=True,
                             name=f"twin-pipeline-{name}").start()
    q.put(execution["pipelineExecutionId"])
    log.info("twin: pipeline %s execution %s queued (%s)", name, execution["pipelineExecutionId"],
             trigger["triggerType"])
    return str(execution["pipelineExecutionId"])


@operation(_T + "StartPipelineExecution")
def start_pipeline_execution(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    trigger = {"triggerType": "StartPipelineExecution", "triggerDetail": f"arn:aws:iam::{ctx.account}:user/twin"}
    return {"pipelineExecutionId": start_execution(ctx, body.get("name", ""), trigger=trigger,
                                                   variables=body.get("variables"),
                                                   source_revisions=body.get("sourceRevisions"),
                                                   client_request_token=body.get("clientRequestToken"))}


def _public(execution: dict[str, Any]) -> dict[str, Any]:
    """GetPipelineExecution's shape of an execution."""
    keys = ("pipelineName", "pipelineVersion", "pipelineExecutionId", "status", "statusSummary", "trigger",
            "executionMode", "executionType", "variables")
    out = {k: execution[k] for k in keys if execution.get(k) not in (None, "")}
    out["artifactRevisions"] = [{k: v for k, v in r.items() if k != "actionName"}
                                for r in execution["artifactRevisions"]]
    return out


@operation(_T + "GetPipelineExecution")
def get_pipeline_execution(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    _pipeline(ctx, body.get("pipelineName", ""))
    with _LOCK:
        execution = _state(ctx)["executions"].get(body.get("pipelineExecutionId", ""))
        if execution is None or execution["pipelineName"] != body.get("pipelineName"):
            raise TwinFault("PipelineExecutionNotFoundException",
                            f"Pipeline execution {body.get('pipelineExecutionId')} not found")
        return {"pipelineExecution": _public(execution)}


def _page(items: list[dict[str, Any]], body: dict[str, Any], key: str) -> dict[str, Any]:
    start = int(body.get("nextToken") or 0)
    size = int(body.get("maxResults") or 100)
    page: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        page["nextToken"] = str(start + size)
    return page


@operation(_T + "ListPipelineExecutions")
def list_pipeline_executions(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    name = body.get("pipelineName", "")
    _pipeline(ctx, name)
    with _LOCK:
        runs = [e for e in _state(ctx)["executions"].values() if e["pipelineName"] == name]
        summaries = [
            {k: e[k] for k in ("pipelineExecutionId", "status", "startTime", "lastUpdateTime", "trigger",
                               "executionMode", "executionType")}
            | {"sourceRevisions": [{"actionName": r["actionName"], "revisionId": r["revisionId"],
                                    "revisionSummary": r.get("revisionSummary", "")}
                                   for r in e["artifactRevisions"]]}
            | ({"statusSummary": e["statusSummary"]} if e["statusSummary"] else {})
            for e in sorted(runs, key=lambda e: e["startTime"], reverse=True)
        ]
    return _page(summaries, body, "pipelineExecutionSummaries")


@operation(_T + "ListActionExecutions")
def list_action_executions(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    name = body.get("pipelineName", "")
    _pipeline(ctx, name)
    wanted = (body.get("filter") or {}).get("pipelineExecutionId")
    with _LOCK:
        actions = [json.loads(json.dumps(a)) for a in reversed(_state(ctx)["actions"])
                   if a["pipelineName"] == name and (not wanted or a["pipelineExecutionId"] == wanted)]
    for a in actions:
        a.pop("pipelineName")
    return _page(actions, body, "actionExecutionDetails")


@operation(_T + "GetPipelineState")
def get_pipeline_state(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    name = body.get("name", "")
    declaration, metadata = _pipeline(ctx, name)
    with _LOCK:
        runs = sorted((e for e in _state(ctx)["executions"].values() if e["pipelineName"] == name),
                      key=lambda e: e["startTime"])
        stages = []
        for stage in declaration.get("stages", []):
            latest = next((e for e in reversed(runs) if stage["name"] in e["stages"]), None)
            entry: dict[str, Any] = {"stageName": stage["name"], "inboundTransitionState": {"enabled": True},
                                     "actionStates": []}
            if latest is not None:
                st = latest["stages"][stage["name"]]
                entry["latestExecution"] = {"pipelineExecutionId": latest["pipelineExecutionId"],
                                            "status": st["status"]}
            for action in stage.get("actions", []):
                state: dict[str, Any] = {"actionName": action["name"]}
                if latest is not None and action["name"] in latest["stages"][stage["name"]]["actions"]:
                    a = latest["stages"][stage["name"]]["actions"][action["name"]]
                    state["latestExecution"] = {k: v for k, v in {
                        "actionExecutionId": a["actionExecutionId"], "status": a["status"],
                        "summary": a.get("summary"), "lastStatusChange": a["lastUpdateTime"],
                        "externalExecutionId": a.get("externalExecutionId"),
                        "errorDetails": a.get("errorDetails")}.items() if v is not None}
                    if a.get("revisionId"):
                        state["currentRevision"] = {"revisionId": a["revisionId"]}
                entry["actionStates"].append(state)
            stages.append(entry)
    return {"pipelineName": name, "pipelineVersion": declaration.get("version", 1), "stageStates": stages,
            "created": metadata["created"], "updated": metadata["updated"]}


# ------------------------------------------------------------------------------------ the engine


def _worker(ctx: TwinContext, q: queue.Queue[str]) -> None:
    while True:
        execution_id = q.get()
        with _LOCK:
            execution = _state(ctx)["executions"][execution_id]
        try:
            _run(ctx, execution)
        except Exception as exc:  # a twin bug fails the execution with the reason instead of hanging it
            log.exception("twin: pipeline execution %s failed", execution_id)
            _finish_execution(execution, "Failed", f"pipekit twin: {type(exc).__name__}: {exc}")


def _finish_execution(execution: dict[str, Any], status: str, summary: str) -> None:
    with _LOCK:
        execution["status"] = status
        execution["statusSummary"] = summary
        execution["lastUpdateTime"] = time.time()


def _run(ctx: TwinContext, execution: dict[str, Any]) -> None:
    declaration = execution["declaration"]
    artifacts: dict[str, dict[str, Any]] = {}
    for stage in declaration.get("stages", []):
        with _LOCK:
            st = execution["stages"][stage["name"]] = {"status": "InProgress", "actions": {}}
        for run_order in sorted({a.get("runOrder", 1) for a in stage.get("actions", [])}):
            for action in [a for a in stage["actions"] if a.get("runOrder", 1) == run_order]:
                ok, message = _run_action(ctx, execution, stage["name"], action, artifacts, declaration)
                if not ok:
                    with _LOCK:
                        st["status"] = "Failed"
                    _finish_execution(execution, "Failed", message)
                    return
        with _LOCK:
            st["status"] = "Succeeded"
    _finish_execution(execution, "Succeeded", "")


def _record(ctx: TwinContext, execution: dict[str, Any], stage: str, action: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    record: dict[str, Any] = {
        "pipelineName": execution["pipelineName"],
        "pipelineExecutionId": execution["pipelineExecutionId"],
        "actionExecutionId": str(uuid.uuid4()),
        "pipelineVersion": execution["pipelineVersion"],
        "stageName": stage,
        "actionName": action["name"],
        "startTime": now,
        "lastUpdateTime": now,
        "status": "InProgress",
        "input": {"actionTypeId": action["actionTypeId"], "configuration": action.get("configuration", {}),
                  "resolvedConfiguration": action.get("configuration", {}),
                  "region": ctx.region, "inputArtifacts": [], "namespace": action.get("namespace", "")},
        "output": {"outputArtifacts": [], "executionResult": {}, "outputVariables": {}},
    }
    with _LOCK:
        _state(ctx)["actions"].append(record)
        execution["stages"][stage]["actions"][action["name"]] = {
            "actionExecutionId": record["actionExecutionId"], "status": "InProgress",
            "lastUpdateTime": now}
    return record


def _update(execution: dict[str, Any], record: dict[str, Any], status: str, summary: str | None = None,
            external_id: str | None = None, error: str | None = None) -> None:
    now = time.time()
    with _LOCK:
        record["status"] = status
        record["lastUpdateTime"] = now
        result = record["output"]["executionResult"]
        if summary is not None:
            result["externalExecutionSummary"] = summary
        if external_id is not None:
            result["externalExecutionId"] = external_id
        public = execution["stages"][record["stageName"]]["actions"][record["actionName"]]
        public.update(status=status, lastUpdateTime=now)
        if summary is not None:
            public["summary"] = summary
        if external_id is not None:
            public["externalExecutionId"] = external_id
        if error is not None:
            public["errorDetails"] = {"code": "JobFailed", "message": error}
        execution["lastUpdateTime"] = now


def _run_action(ctx: TwinContext, execution: dict[str, Any], stage: str, action: dict[str, Any],
                artifacts: dict[str, dict[str, Any]], declaration: dict[str, Any]) -> tuple[bool, str]:
    record = _record(ctx, execution, stage, action)
    type_id = action["actionTypeId"]
    kind = (type_id.get("category"), type_id.get("owner"), type_id.get("provider"))
    try:
        if kind == ("Source", "AWS", "CodeCommit"):
            return _codecommit_source(ctx, execution, record, action, artifacts, declaration)
        if kind == ("Invoke", "AWS", "Lambda"):
            return _lambda_invoke(ctx, execution, record, action, artifacts, declaration)
        message = f"the pipekit twin does not run {'/'.join(str(k) for k in kind)} actions"
    except Exception as exc:
        log.exception("twin: action %s.%s failed", stage, action["name"])
        message = f"pipekit twin: {type(exc).__name__}: {exc}"
    _update(execution, record, "Failed", summary=message, error=message)
    return False, message


def _codecommit_source(ctx: TwinContext, execution: dict[str, Any], record: dict[str, Any],
                       action: dict[str, Any], artifacts: dict[str, dict[str, Any]],
                       declaration: dict[str, Any]) -> tuple[bool, str]:
    from pipekit.local.codecommit_twin import repo_dir

    config = action.get("configuration", {})
    repository, branch = config["RepositoryName"], config["BranchName"]
    git_dir = repo_dir(ctx.state_dir, ctx.region, repository)
    # A source revision override (StartPipelineExecution sourceRevisions) names the commit; else the branch head.
    wanted = execution.get("sourceOverrides", {}).get(action["name"])
    proc = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet",
                           f"{wanted}^{{commit}}" if wanted else f"refs/heads/{branch}^{{commit}}"],
                          capture_output=True, text=True, check=False)
    commit = proc.stdout.strip()
    if wanted and (proc.returncode != 0 or not commit):
        message = f"The source revision override {wanted} is not a commit of the CodeCommit repository {repository}"
        _update(execution, record, "Failed", summary=message, error=message)
        return False, message
    if proc.returncode != 0 or not commit:
        message = (f"The action failed because no branch named {branch} was found in the selected "
                   f"AWS CodeCommit repository {repository}. Make sure you are using the correct branch name, "
                   "and then try again.")
        _update(execution, record, "Failed", summary=message, error=message)
        return False, message
    if config.get("OutputArtifactFormat", "CODE_ZIP") != "CODE_ZIP":
        message = f"the pipekit twin builds CODE_ZIP source artifacts only, not {config['OutputArtifactFormat']}"
        _update(execution, record, "Failed", summary=message, error=message)
        return False, message
    message = subprocess.run(["git", "--git-dir", str(git_dir), "log", "-1", "--format=%B", commit],
                             capture_output=True, text=True, check=True).stdout.strip()
    archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "--format=zip", commit],
                             capture_output=True, check=True).stdout
    bucket = declaration["artifactStore"]["location"]
    outputs = []
    for out in action.get("outputArtifacts", []):
        key = f"{execution['pipelineName'][:20]}/{out['name'][:10]}/{uuid.uuid4().hex[:7]}"
        ctx.boto3_client("s3").put_object(Bucket=bucket, Key=key, Body=archive)
        artifacts[out["name"]] = {"bucket": bucket, "key": key, "revision": commit}
        outputs.append({"name": out["name"], "s3location": {"bucket": bucket, "key": key}})
    with _LOCK:
        record["output"]["outputArtifacts"] = outputs
        record["output"]["outputVariables"] = {"CommitId": commit, "BranchName": branch,
                                               "RepositoryName": repository, "CommitMessage": message}
        execution["stages"][record["stageName"]]["actions"][record["actionName"]]["revisionId"] = commit
        execution["artifactRevisions"].append({
            "name": action["outputArtifacts"][0]["name"] if action.get("outputArtifacts") else action["name"],
            "actionName": action["name"], "revisionId": commit, "revisionSummary": json.dumps({"ProviderType": "CodeCommit",
                                                                 "CommitMessage": message}),
            "created": time.time()})
    _update(execution, record, "Succeeded", summary=message, external_id=commit)
    return True, ""


def _lambda_invoke(ctx: TwinContext, execution: dict[str, Any], record: dict[str, Any],
                   action: dict[str, Any], artifacts: dict[str, dict[str, Any]],
                   declaration: dict[str, Any]) -> tuple[bool, str]:
    from pipekit.local import codepipeline_twin, lambda_runner

    config = action.get("configuration", {})
    inputs = []
    for art in action.get("inputArtifacts", []):
        stored = artifacts.get(art["name"])
        if stored is None:
            raise RuntimeError(f"input artifact {art['name']} was not produced by an earlier action")
        inputs.append({"name": art["name"], "revision": stored["revision"],
                       "location": {"type": "S3", "s3Location": {"bucketName": stored["bucket"],
                                                                 "objectKey": stored["key"]}}})
    with _LOCK:
        record["input"]["inputArtifacts"] = [{"name": i["name"], "s3location": {
            "bucket": i["location"]["s3Location"]["bucketName"], "key": i["location"]["s3Location"]["objectKey"]}}
            for i in inputs]
    data: dict[str, Any] = {
        "actionConfiguration": {"configuration": {k: v for k, v in config.items()
                                                  if k in ("FunctionName", "UserParameters")}},
        "inputArtifacts": inputs,
        "outputArtifacts": [],
        # CodePipeline passes short-lived credentials for the artifact bucket; the twin accepts any.
        "artifactCredentials": {"accessKeyId": "testing", "secretAccessKey": "testing",
                                "sessionToken": "testing", "expirationTime": int(time.time() + 3600) * 1000},
    }
    key = (declaration.get("artifactStore") or {}).get("encryptionKey")
    if key:
        data["encryptionKey"] = key
    delay = float(os.environ.get(CONTINUATION_DELAY_ENV, "1"))
    deadline = time.monotonic() + ACTION_TIMEOUT_S
    while True:
        job_id = codepipeline_twin.create_job({"data": data}, ctx)["jobId"]
        event = {"CodePipeline.job": {"id": job_id, "accountId": ctx.account, "data": data}}
        result = lambda_runner.invoke(ctx, config["FunctionName"], event)
        job = codepipeline_twin.get_job({"jobId": job_id}, ctx)["job"]
        with _LOCK:
            record["output"]["executionResult"]["externalExecutionId"] = result.request_id
            record.setdefault("pipekitInvocations", []).append(
                {"jobId": job_id, "requestId": result.request_id, "status": job["status"],
                 "lambda": result.summary()})
        last = job["results"][-1] if job["results"] else None
        if last is None:
            codepipeline_twin.time_out_job(ctx, job_id)
            message = (f"The action did not receive a result: the function {config['FunctionName']} ended "
                       f"without calling PutJobSuccessResult or PutJobFailureResult ({result.summary()})")
            _update(execution, record, "Failed", summary=message, error=message)
            return False, message
        if last["type"] == "failure":
            message = str(last["failureDetails"].get("message", ""))
            _update(execution, record, "Failed", summary=message, external_id=last["failureDetails"].get(
                "externalExecutionId"), error=message)
            return False, message
        summary = (last.get("executionDetails") or {}).get("summary")
        external = (last.get("executionDetails") or {}).get("externalExecutionId")
        if not last.get("continuationToken"):
            with _LOCK:
                record["output"]["outputVariables"] = last.get("outputVariables") or {}
            _update(execution, record, "Succeeded", summary=summary or "", external_id=external)
            return True, ""
        _update(execution, record, "InProgress", summary=summary, external_id=external)
        if time.monotonic() > deadline:
            message = f"The action timed out after {ACTION_TIMEOUT_S:.0f} seconds of continuations"
            _update(execution, record, "Failed", summary=message, error=message)
            return False, message
        time.sleep(delay)
        data = {**data, "continuationToken": last["continuationToken"]}
