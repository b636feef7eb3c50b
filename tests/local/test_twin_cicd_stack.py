"""infra/cloudformation/cicd.yaml on a fresh twin, driven only by the unchanged AWS CLI and git.

create-stack provisions the template as it is (CodeCommit repository, V2 pipeline, EventBridge rule,
Lambdas from their zip in S3, ...); a ``git push`` to the stack's CloneUrlHttp emits the CodeCommit event,
the rule runs the filter Lambda, which starts the pipeline for a push touching a watched directory (and
logs why it skipped any other); Source zips the commit into the artifact bucket and the Invoke action runs
the deploy Lambda from its zip in a process of its own until it reports a final result.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.twin

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "cloudformation" / "cicd.yaml"
AWS = str(Path(sys.executable).parent / "aws")
STACK = "glue-cicd"
GLUE_ROLE_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _etl_twin_helper() -> ModuleType:
    """tests/local/_etl_twin.py, as conftest loads it (one module, whichever loads it first)."""
    name = "pipekit_tests_etl_twin"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "_etl_twin.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class Stack:
    twin: Any
    env: dict[str, str]
    outputs: dict[str, str]
    role_arn: str
    workdir: Path

    def aws(self, *args: str, check: bool = True) -> Any:
        """Run the AWS CLI against the twin; its JSON output parsed (None when empty, text when not JSON)."""
        proc = subprocess.run([AWS, *args, "--output", "json"], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        if not proc.stdout.strip():
            return None
        try:
            return json.loads(proc.stdout)
        except ValueError:
            return proc.stdout  # `cloudformation deploy` and `wait` print text

    def git(self, *args: str, cwd: Path) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
        return proc.stdout.strip()

    @property
    def pipeline(self) -> str:
        return self.outputs["PipelineName"]

    def executions(self) -> list[dict[str, Any]]:
        return self.aws("codepipeline", "list-pipeline-executions", "--pipeline-name",
                        self.pipeline)["pipelineExecutionSummaries"]

    def filter_said(self, commit: str, timeout: float = 60.0) -> dict[str, Any]:
        """The filter Lambda's structured log line for ``commit`` (it runs asynchronously after the push)."""
        folder = self.twin.state_dir / "lambda" / "logs" / self.outputs["FilterFunctionName"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for log_file in sorted(folder.glob("*.log")) if folder.exists() else []:
                for line in log_file.read_text().splitlines():
                    if '"pipekit": "trigger"' in line and commit in line:
                        return dict(json.loads(line[line.index("{"):]))
            time.sleep(0.5)
        raise AssertionError(f"the filter logged nothing for {commit} in {timeout:.0f}s")

    def wait_for(self, commit: str, timeout: float = 240.0) -> dict[str, Any]:
        """The execution for ``commit`` once it is no longer InProgress."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [e for e in self.executions()
                    if any(r["revisionId"] == commit for r in e.get("sourceRevisions", []))]
            if mine and mine[0]["status"] != "InProgress":
                return mine[0]
            time.sleep(1.0)
        raise AssertionError(f"no finished execution for {commit} after {timeout:.0f}s: {self.executions()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh twin with cicd.yaml created by `aws cloudformation create-stack` (the Lambda zip in S3 first)."""
    from pipekit.deploy.package import build_lambda_zip

    root = tmp_path_factory.mktemp("cicd-stack")
    twin = _etl_twin_helper().TwinProcess(root / "twin").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": twin.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "GIT_AUTHOR_NAME": "Data Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
                "GIT_COMMITTER_NAME": "Data Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
                "GIT_TERMINAL_PROMPT": "0"})
    try:
        s = Stack(twin, env, {}, "", root)
        for bucket in ("pipekit-cicd-code", "pipekit-cicd-scripts"):
            s.aws("s3api", "create-bucket", "--bucket", bucket)
        build_lambda_zip(root / "pipekit-glue-deploy.zip")
        s.aws("s3api", "put-object", "--bucket", "pipekit-cicd-code", "--key", "lambda/pipekit-glue-deploy.zip",
              "--body", str(root / "pipekit-glue-deploy.zip"))
        s.role_arn = s.aws("iam", "create-role", "--role-name", "pipekit-glue-job", "--assume-role-policy-document",
                           json.dumps(GLUE_ROLE_TRUST))["Role"]["Arn"]
        started = time.monotonic()
        created = s.aws("cloudformation", "create-stack", "--stack-name", STACK,
                        "--template-body", f"file://{TEMPLATE}", "--capabilities", "CAPABILITY_IAM",
                        "--parameters", "ParameterKey=ScriptsBucketName,ParameterValue=pipekit-cicd-scripts",
                        f"ParameterKey=GlueJobRoleArn,ParameterValue={s.role_arn}",
                        "ParameterKey=LambdaCodeBucket,ParameterValue=pipekit-cicd-code")
        assert created["StackId"].startswith("arn:aws:cloudformation:us-east-1:123456789012:stack/glue-cicd/")
        s.aws("cloudformation", "wait", "stack-create-complete", "--stack-name", STACK)
        print(f"create-stack + wait: {time.monotonic() - started:.1f}s")
        described = s.aws("cloudformation", "describe-stacks", "--stack-name", STACK)["Stacks"][0]
        s.outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
        yield s
    finally:
        twin.stop()


def test_create_stack_resources_and_outputs(stack: Stack) -> None:
    out = stack.outputs
    repo_url = f"{stack.twin.endpoint_url}/_twin/codecommit/us-east-1/v1/repos/pipekit-glue-jobs"
    assert out["RepositoryCloneUrlHttp"] == repo_url
    assert out["PipelineName"] == out["DeployFunctionName"] == "pipekit-glue-jobs-glue-deploy"
    assert out["LastDeployedParameter"] == "/pipekit/glue-deploy/pipekit-glue-jobs/last-deployed"

    resources = stack.aws("cloudformation", "describe-stack-resources", "--stack-name", STACK)["StackResources"]
    by_id = {r["LogicalResourceId"]: r for r in resources}
    template_ids = {"CicdKey", "Repository", "ArtifactBucket", "ArtifactBucketPolicy", "DeployLogGroup",
                    "DeployFunctionRole", "DeployFunction", "PipelineRole", "Pipeline", "FilterLogGroup",
                    "FilterFunctionRole", "FilterFunction", "FilterInvokePermission", "OnCommitRule"}
    assert set(by_id) == template_ids
    assert {r["ResourceStatus"] for r in resources} == {"CREATE_COMPLETE"}
    assert all(r["PhysicalResourceId"] for r in resources)
    assert by_id["Repository"]["ResourceType"] == "AWS::CodeCommit::Repository"
    assert by_id["Pipeline"]["PhysicalResourceId"] == out["PipelineName"]

    repo = stack.aws("codecommit", "get-repository", "--repository-name", "pipekit-glue-jobs")["repositoryMetadata"]
    assert repo["cloneUrlHttp"] == repo_url
    assert repo["Arn"] == "arn:aws:codecommit:us-east-1:123456789012:pipekit-glue-jobs"
    assert by_id["Repository"]["PhysicalResourceId"] == repo["repositoryId"]  # Ref is the repository ID

    pipeline = stack.aws("codepipeline", "get-pipeline", "--name", out["PipelineName"])["pipeline"]
    assert pipeline["pipelineType"] == "V2" and pipeline["executionMode"] == "QUEUED"
    assert pipeline["artifactStore"]["location"] == out["ArtifactBucketName"]
    assert pipeline["artifactStore"]["encryptionKey"]["type"] == "KMS"
    assert pipeline["roleArn"].endswith(by_id["PipelineRole"]["PhysicalResourceId"])
    source, deploy = pipeline["stages"]
    assert source["actions"][0]["actionTypeId"] == {"category": "Source", "owner": "AWS", "provider": "CodeCommit",
                                                    "version": "1"}
    assert source["actions"][0]["configuration"] == {"RepositoryName": "pipekit-glue-jobs", "BranchName": "main",
                                                     "PollForSourceChanges": "false", "OutputArtifactFormat": "CODE_ZIP"}
    invoke = deploy["actions"][0]
    assert invoke["configuration"]["FunctionName"] == out["DeployFunctionName"]
    assert json.loads(invoke["configuration"]["UserParameters"])["bucket"] == "pipekit-cicd-scripts"

    fn = stack.aws("lambda", "get-function-configuration", "--function-name", out["DeployFunctionName"])
    assert (fn["Handler"], fn["Runtime"], fn["Timeout"]) == ("handler.handler", "python3.12", 300)
    rule = stack.aws("events", "list-targets-by-rule", "--rule", by_id["OnCommitRule"]["PhysicalResourceId"])
    filter_fn = stack.aws("lambda", "get-function-configuration", "--function-name", out["FilterFunctionName"])
    assert rule["Targets"][0]["Arn"] == filter_fn["FunctionArn"]
    assert filter_fn["Handler"] == "handler.filter_handler"
    assert filter_fn["Environment"]["Variables"] == {
        "PIPELINE_NAME": out["PipelineName"], "REPOSITORY_NAME": "pipekit-glue-jobs", "BRANCH_NAME": "main",
        "WATCHED": "glue/jobs,glue/scripts", "SOURCE_ACTION": "Source"}


def test_pipekit_provisioning_and_the_cli_deploy_flow(stack: Stack) -> None:
    """pipekit's provision_stack and `aws cloudformation deploy` (change sets) give the same Outputs."""
    from pipekit.local.provision import provision_stack

    params = {"ScriptsBucketName": "pipekit-cicd-scripts", "GlueJobRoleArn": stack.role_arn,
              "LambdaCodeBucket": "pipekit-cicd-code"}
    outputs = provision_stack(stack.twin.endpoint_url, TEMPLATE, stack_name="glue-cicd-pipekit",
                              parameters={**params, "RepositoryName": "via-pipekit"})
    assert outputs["RepositoryCloneUrlHttp"].endswith("/v1/repos/via-pipekit")
    assert outputs["PipelineName"] == "via-pipekit-glue-deploy"

    stack.aws("cloudformation", "deploy", "--stack-name", "glue-cicd-deploy", "--template-file", str(TEMPLATE),
              "--capabilities", "CAPABILITY_IAM", "--parameter-overrides", "RepositoryName=via-deploy",
              *[f"{k}={v}" for k, v in params.items()])
    deployed = stack.aws("cloudformation", "describe-stacks", "--stack-name", "glue-cicd-deploy")["Stacks"][0]
    assert deployed["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in deployed["Outputs"]}["PipelineName"] == "via-deploy-glue-deploy"
    assert stack.aws("codepipeline", "get-pipeline", "--name", "via-deploy-glue-deploy")["pipeline"]["stages"]


def _job_config(role_arn: str) -> dict[str, Any]:
    return {"description": "twin CI/CD test job", "script": "hello.py", "role": role_arn, "glue_version": "5.0",
            "worker_type": "G.1X", "number_of_workers": 2, "timeout_minutes": 5, "max_retries": 0,
            "default_arguments": {"--greeting": "hello"}, "tags": {"team": "data-platform"},
            "run_after_deploy": True, "run_arguments": {}}


HELLO = textwrap.dedent('''
    import sys
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    print(args["--greeting"], "from", args["--JOB_NAME"])
''')


def test_push_runs_the_pipeline_then_a_docs_push(stack: Stack) -> None:
    clone = stack.workdir / "clone"
    stack.git("clone", "-q", stack.outputs["RepositoryCloneUrlHttp"], str(clone), cwd=stack.workdir)
    stack.git("checkout", "-q", "-B", "main", cwd=clone)
    (clone / "glue" / "jobs").mkdir(parents=True)
    (clone / "glue" / "scripts").mkdir(parents=True)
    (clone / "glue" / "jobs" / "hello.json").write_text(json.dumps(_job_config(stack.role_arn), indent=2))
    (clone / "glue" / "scripts" / "hello.py").write_text(HELLO)
    stack.git("add", "-A", cwd=clone)
    stack.git("commit", "-q", "-m", "Add the hello Glue job", cwd=clone)
    commit = stack.git("rev-parse", "HEAD", cwd=clone)
    started = time.monotonic()
    stack.git("push", "-q", "origin", "main", cwd=clone)

    said = stack.filter_said(commit)
    assert said["action"] == "start" and said["branch"] == "main", said
    assert set(said["paths"]) == {"glue/jobs/hello.json", "glue/scripts/hello.py"}
    running = stack.executions()
    assert [e["pipelineExecutionId"] for e in running] == [said["pipelineExecutionId"]]
    assert running[0]["trigger"]["triggerType"] == "StartPipelineExecution"  # by the filter Lambda

    done = stack.wait_for(commit)
    print(f"push -> Succeeded: {time.monotonic() - started:.1f}s")
    assert done["status"] == "Succeeded", done
    execution = stack.aws("codepipeline", "get-pipeline-execution", "--pipeline-name", stack.pipeline,
                          "--pipeline-execution-id", done["pipelineExecutionId"])["pipelineExecution"]
    assert execution["status"] == "Succeeded"
    assert execution["artifactRevisions"][0]["revisionId"] == commit

    state = stack.aws("codepipeline", "get-pipeline-state", "--name", stack.pipeline)["stageStates"]
    assert [(s["stageName"], s["latestExecution"]["status"]) for s in state] == [
        ("Source", "Succeeded"), ("DeployGlueJobs", "Succeeded")]

    actions = stack.aws("codepipeline", "list-action-executions", "--pipeline-name", stack.pipeline,
                        "--filter", f"pipelineExecutionId={done['pipelineExecutionId']}")["actionExecutionDetails"]
    by_name = {a["actionName"]: a for a in actions}
    assert {a["status"] for a in actions} == {"Succeeded"}
    artifact = by_name["Source"]["output"]["outputArtifacts"][0]["s3location"]
    assert artifact["bucket"] == stack.outputs["ArtifactBucketName"]
    zip_path = stack.workdir / "source.zip"
    stack.aws("s3api", "get-object", "--bucket", artifact["bucket"], "--key", artifact["key"], str(zip_path))
    with zipfile.ZipFile(io.BytesIO(zip_path.read_bytes())) as zf:  # CODE_ZIP: the tree at the commit
        assert {"glue/jobs/hello.json", "glue/scripts/hello.py"} <= set(zf.namelist())
    summary = by_name["ReconcileAndRun"]["output"]["executionResult"]["externalExecutionSummary"]
    assert "hello" in summary and "SUCCEEDED" in summary, summary

    job = stack.aws("glue", "get-job", "--job-name", "hello")["Job"]
    assert job["Command"]["ScriptLocation"] == "s3://pipekit-cicd-scripts/scripts/hello.py"
    runs = stack.aws("glue", "get-job-runs", "--job-name", "hello")["JobRuns"]
    assert [r["JobRunState"] for r in runs] == ["SUCCEEDED"]
    # The first invocation starts the run and answers with a continuation token; a later one, on a new
    # job carrying the token, sees the run SUCCEEDED (each invocation's output is kept by the twin).
    invocations = sorted((stack.twin.state_dir / "lambda" / "logs" / stack.outputs["DeployFunctionName"]).glob("*.log"))
    assert len(invocations) >= 2, invocations

    # A docs-only commit: the filter diffs it, logs why it skips it, and starts no execution.
    (clone / "README.md").write_text("# Glue jobs\n")
    stack.git("add", "-A", cwd=clone)
    stack.git("commit", "-q", "-m", "Docs", cwd=clone)
    docs_commit = stack.git("rev-parse", "HEAD", cwd=clone)
    stack.git("push", "-q", "origin", "main", cwd=clone)
    skipped = stack.filter_said(docs_commit)
    assert skipped == {"pipekit": "trigger", "action": "skip", "commit": docs_commit, "branch": "main",
                       "repository": "pipekit-glue-jobs",
                       "why": "none of the 1 changed path(s) is under glue/jobs, glue/scripts"}, skipped
    assert len(stack.executions()) == 1
    assert [r["JobRunState"] for r in stack.aws("glue", "get-job-runs", "--job-name", "hello")["JobRuns"]] == [
        "SUCCEEDED"]

    # A broken config: the Lambda reports failure, the execution and the stage fail with its message.
    (clone / "glue" / "jobs" / "hello.json").write_text(json.dumps(
        {**_job_config(stack.role_arn), "number_of_workers": "four"}))
    stack.git("commit", "-q", "-am", "hello: oops", cwd=clone)
    bad_commit = stack.git("rev-parse", "HEAD", cwd=clone)
    stack.git("push", "-q", "origin", "main", cwd=clone)
    bad = stack.wait_for(bad_commit)
    assert bad["status"] == "Failed" and "hello.json" in bad.get("statusSummary", ""), bad
    assert len(stack.executions()) == 2  # one per watched push, none for the docs push
    deploy_state = stack.aws("codepipeline", "get-pipeline-state", "--name", stack.pipeline)["stageStates"][1]
    assert deploy_state["latestExecution"] == {"pipelineExecutionId": bad["pipelineExecutionId"], "status": "Failed"}
    error = deploy_state["actionStates"][0]["latestExecution"]["errorDetails"]
    assert "number_of_workers" in error["message"], error


def test_a_job_the_action_gave_up_on_takes_no_late_result(tmp_path: Path) -> None:
    from pipekit.local import codepipeline_twin
    from pipekit.local.server import TwinContext, TwinFault

    ctx = TwinContext(region="us-east-1", account="123456789012", endpoint_url="http://127.0.0.1:9",
                      state_dir=tmp_path)
    job_id = codepipeline_twin.create_job({"data": {}}, ctx)["jobId"]
    codepipeline_twin.time_out_job(ctx, job_id)
    with pytest.raises(TwinFault, match="TimedOut") as info:
        codepipeline_twin.put_job_success_result({"jobId": job_id}, ctx)
    assert info.value.code == "InvalidJobStateException"


def test_lambda_runs_from_its_zip_with_only_boto3(stack: Stack) -> None:
    """`aws lambda invoke` (and so the Invoke action): the zip in a process of its own, boto3 importable,
    pipekit and moto not, the function's environment, a context counting down from its timeout."""
    handler = textwrap.dedent('''
        import importlib.util, os
        def handler(event, context):
            return {"event": event, "greeting": os.environ.get("GREETING"),
                    "boto3": importlib.util.find_spec("boto3") is not None,
                    "pipekit": importlib.util.find_spec("pipekit") is not None,
                    "moto": importlib.util.find_spec("moto") is not None,
                    "remaining_ms": context.get_remaining_time_in_millis(),
                    "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "pid": os.getpid()}
        def slow(event, context):
            import time
            time.sleep(30)
    ''')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("probe.py", handler)
    (stack.workdir / "probe.zip").write_bytes(buf.getvalue())
    role = stack.aws("iam", "create-role", "--role-name", "probe-lambda", "--assume-role-policy-document", json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    for name, handler_name, timeout in (("probe", "probe.handler", "7"), ("probe-slow", "probe.slow", "1")):
        stack.aws("lambda", "create-function", "--function-name", name, "--runtime", "python3.12", "--role", role,
                  "--handler", handler_name, "--timeout", timeout, "--environment", "Variables={GREETING=hi}",
                  "--zip-file", f"fileb://{stack.workdir / 'probe.zip'}")

    answer = stack.workdir / "answer.json"
    meta = stack.aws("lambda", "invoke", "--function-name", "probe", "--payload", '{"ping": 1}', str(answer))
    assert meta["StatusCode"] == 200 and "FunctionError" not in meta, meta
    out = json.loads(answer.read_text())
    assert out["event"] == {"ping": 1} and out["greeting"] == "hi" and out["function"] == "probe"
    assert out["boto3"] and not out["pipekit"] and not out["moto"]
    assert 0 < out["remaining_ms"] <= 7000
    assert out["pid"] != stack.twin.proc.pid

    slow = stack.aws("lambda", "invoke", "--function-name", "probe-slow", str(answer))
    assert slow["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in json.loads(answer.read_text())["errorMessage"]


REPO_ONLY = """
Resources:
  Repo:
    Type: AWS::CodeCommit::Repository
    Properties: {RepositoryName: events-probe}
Outputs:
  Url: {Value: !GetAtt Repo.CloneUrlHttp}
  Arn: {Value: !GetAtt Repo.Arn}
"""

NOTIFY = textwrap.dedent('''
    import json, boto3
    def handler(event, context):
        boto3.client("s3").put_object(Bucket="pipekit-cicd-code", Key="events/" + event["detail"]["commitId"],
                                      Body=json.dumps(event).encode())
''')


def test_a_push_event_reaches_a_lambda_target(stack: Stack) -> None:
    """A rule with a Lambda target (e.g. a filter step) gets the CodeCommit event of a push."""
    template = stack.workdir / "repo-only.yaml"
    template.write_text(REPO_ONLY)
    stack.aws("cloudformation", "create-stack", "--stack-name", "events-probe", "--template-body", f"file://{template}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.aws(
        "cloudformation", "describe-stacks", "--stack-name", "events-probe")["Stacks"][0]["Outputs"]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notify.py", NOTIFY)
    (stack.workdir / "notify.zip").write_bytes(buf.getvalue())
    role = stack.aws("iam", "create-role", "--role-name", "notify-lambda", "--assume-role-policy-document", json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    fn = stack.aws("lambda", "create-function", "--function-name", "notify", "--runtime", "python3.12", "--role", role,
                   "--handler", "notify.handler", "--timeout", "30", "--zip-file", f"fileb://{stack.workdir / 'notify.zip'}")
    pattern = {"source": ["aws.codecommit"], "resources": [outputs["Arn"]], "detail": {"referenceName": ["main"]}}
    stack.aws("events", "put-rule", "--name", "notify-on-push", "--event-pattern", json.dumps(pattern))
    stack.aws("events", "put-targets", "--rule", "notify-on-push", "--targets", f"Id=notify,Arn={fn['FunctionArn']}")

    clone = stack.workdir / "probe-clone"
    stack.git("clone", "-q", outputs["Url"], str(clone), cwd=stack.workdir)
    stack.git("checkout", "-q", "-B", "main", cwd=clone)
    (clone / "README.md").write_text("probe\n")
    stack.git("add", "-A", cwd=clone)
    stack.git("commit", "-q", "-m", "probe", cwd=clone)
    commit = stack.git("rev-parse", "HEAD", cwd=clone)
    stack.git("push", "-q", "origin", "main", cwd=clone)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = stack.aws("s3api", "list-objects-v2", "--bucket", "pipekit-cicd-code", "--prefix", "events/")
        if listed and listed.get("Contents"):
            break
        time.sleep(0.5)
    event_path = stack.workdir / "event.json"
    stack.aws("s3api", "get-object", "--bucket", "pipekit-cicd-code", "--key", f"events/{commit}", str(event_path))
    event = json.loads(event_path.read_text())
    assert event["detail-type"] == "CodeCommit Repository State Change"
    assert event["detail"] | {"repositoryId": "-"} == {
        "callerUserArn": "arn:aws:iam::123456789012:user/twin", "event": "referenceCreated",
        "referenceFullName": "refs/heads/main", "referenceName": "main", "referenceType": "branch",
        "repositoryId": "-", "repositoryName": "events-probe", "commitId": commit}
    assert event["resources"] == [outputs["Arn"]]


def test_start_pipeline_execution_takes_a_token_and_a_source_revision_override(stack: Stack) -> None:
    """What the filter Lambda relies on: a repeated clientRequestToken starts no second execution, and
    a COMMIT_ID override is the commit Source fetches (an unknown one fails the Source action)."""
    params = [f"ParameterKey={k},ParameterValue={v}" for k, v in {
        "RepositoryName": "token-probe", "ScriptsBucketName": "pipekit-cicd-scripts",
        "GlueJobRoleArn": stack.role_arn, "LambdaCodeBucket": "pipekit-cicd-code"}.items()]
    stack.aws("cloudformation", "create-stack", "--stack-name", "token-probe", "--template-body",
              f"file://{TEMPLATE}", "--capabilities", "CAPABILITY_IAM", "--parameters", *params)
    stack.aws("cloudformation", "wait", "stack-create-complete", "--stack-name", "token-probe")
    bogus = "0123456789abcdef0123456789abcdef01234567"
    start = ["codepipeline", "start-pipeline-execution", "--name", "token-probe-glue-deploy",
             "--client-request-token", "event-1", "--source-revisions",
             f"actionName=Source,revisionType=COMMIT_ID,revisionValue={bogus}"]
    first = stack.aws(*start)["pipelineExecutionId"]
    assert stack.aws(*start)["pipelineExecutionId"] == first
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = stack.aws("codepipeline", "list-pipeline-executions", "--pipeline-name",
                         "token-probe-glue-deploy")["pipelineExecutionSummaries"]
        if runs[0]["status"] != "InProgress":
            break
        time.sleep(0.5)
    assert [(r["pipelineExecutionId"], r["status"]) for r in runs] == [(first, "Failed")]
    assert bogus in runs[0]["statusSummary"], runs
