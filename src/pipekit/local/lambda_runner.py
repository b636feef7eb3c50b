"""Run a Lambda function of the twin from its deployment zip, in a Python process of its own.

moto stores a function's code but can only run it in Docker. Here the zip moto holds is unpacked, and
the handler runs in ``python -I -S``: no site-packages, so nothing but the zip and boto3 (with the
packages boto3 needs, as the Lambda Python runtime provides them) is importable. The process gets the
function's environment plus what Lambda sets (``AWS_LAMBDA_FUNCTION_NAME``, region, credentials; here
also ``AWS_ENDPOINT_URL`` pointing at the twin), and a context whose ``get_remaining_time_in_millis``
counts down from the function's timeout. It is killed when the timeout passes, as Lambda does.

The pipeline's Invoke action, EventBridge Lambda targets and Lambda's own Invoke API
(``aws lambda invoke``, routed here by :class:`pipekit.local.server.TwinApp`) all run functions this way.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import logging
import re
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pipekit.local.server import TwinContext

log = logging.getLogger("pipekit.local.lambda_runner")

#: What the Lambda Python runtime has besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

_RUNNER = r"""
import importlib, json, logging, sys, time, traceback
code_dir, runtime_dir, handler_spec, timeout_s, request_id, function_name, result_path = sys.argv[1:8]
sys.path[:0] = [code_dir, runtime_dir]
# As the Lambda Python runtime: a root handler writing to the function's log, root level WARNING.
logging.basicConfig(stream=sys.stdout, level=logging.WARNING,
                    format="[%(levelname)s]\t%(asctime)s\t" + request_id + "\t%(message)s")
started = time.monotonic()

class Context:
    function_name = function_name
    aws_request_id = request_id
    memory_limit_in_mb = None
    def get_remaining_time_in_millis(self):
        return max(0, int((float(timeout_s) - (time.monotonic() - started)) * 1000))

event = json.loads(sys.stdin.read())
module_name, _, attr = handler_spec.rpartition(".")
try:
    fn = getattr(importlib.import_module(module_name), attr)
    out = {"payload": fn(event, Context())}
except BaseException as exc:
    out = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc),
                     "stackTrace": traceback.format_exc().splitlines()}}
with open(result_path, "w") as f:
    json.dump(out, f, default=str)
"""


@dataclass
class LambdaResult:
    """One invocation: what the handler returned, or the error Lambda would report, and its log."""

    function_name: str
    request_id: str
    payload: Any = None
    error: dict[str, Any] | None = None
    log_text: str = ""
    duration_s: float = 0.0

    def summary(self) -> str:
        if self.error:
            return f"{self.error.get('errorType')}: {self.error.get('errorMessage')}"
        return json.dumps(self.payload, default=str)[:500]


def runtime_dir(state_dir: Path) -> Path:
    """A directory holding only boto3 and its dependencies (links into this interpreter's site-packages)."""
    target = Path(state_dir) / "lambda" / "runtime"
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"the twin's Lambda runtime needs {name}, which this Python lacks")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        link = target / source.name
        if not link.exists():
            link.symlink_to(source)
    return target


def _code_dir(state_dir: Path, function_name: str, code: bytes) -> Path:
    digest = hashlib.sha256(code).hexdigest()[:16]
    target = Path(state_dir) / "lambda" / "code" / function_name / digest
    if not (target / ".unpacked").exists():
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(code)) as zf:
            zf.extractall(target)
        (target / ".unpacked").write_text(digest)
    return target


def _function(ctx: TwinContext, function_name: str) -> Any:
    from moto.awslambda.models import lambda_backends

    name = function_name.split(":function:", 1)[-1].split(":")[0]
    return lambda_backends[ctx.account][ctx.region].get_function(name)


def invoke(ctx: TwinContext, function_name: str, event: dict[str, Any]) -> LambdaResult:
    """Invoke ``function_name`` (a name or ARN) with ``event``, synchronously, from its zip."""
    fn = _function(ctx, function_name)
    code: bytes = fn.code_bytes
    if not code:
        raise RuntimeError(f"function {fn.function_name} has no zip code the twin can run")
    code_dir = _code_dir(ctx.state_dir, fn.function_name, code)
    timeout_s = float(fn.timeout or 3)
    request_id = str(uuid.uuid4())
    result_path = Path(ctx.state_dir) / "lambda" / f"result-{request_id}.json"
    env = {
        **{str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
        "AWS_REGION": ctx.region,
        "AWS_DEFAULT_REGION": ctx.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": ctx.endpoint_url,
        "LAMBDA_TASK_ROOT": str(code_dir),
        "_HANDLER": fn.handler,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "TZ": ":UTC",
    }
    command = [sys.executable, "-I", "-S", "-c", _RUNNER, str(code_dir), str(runtime_dir(ctx.state_dir)),
               fn.handler, str(timeout_s), request_id, fn.function_name, str(result_path)]
    started = time.monotonic()
    result = LambdaResult(fn.function_name, request_id)
    try:
        proc = subprocess.run(command, input=json.dumps(event).encode(), env=env, cwd=code_dir,
                              capture_output=True, timeout=timeout_s + 1.0, check=False)
        result.log_text = (proc.stdout + proc.stderr).decode(errors="replace")
        if result_path.exists():
            out = json.loads(result_path.read_text())
            result.payload, result.error = out.get("payload"), out.get("error")
        else:
            result.error = {"errorType": "Runtime.ExitError",
                            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with {proc.returncode}"}
    except subprocess.TimeoutExpired as exc:
        result.log_text = ((exc.stdout or b"") + (exc.stderr or b"")).decode(errors="replace")
        result.error = {"errorType": "Sandbox.Timedout",
                        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"}
    finally:
        result_path.unlink(missing_ok=True)
    result.duration_s = time.monotonic() - started
    _write_log(ctx, result)
    return result


def _write_log(ctx: TwinContext, result: LambdaResult) -> None:
    """Keep each invocation's output under ``<state_dir>/lambda/logs/<function>/`` (the twin has no log stream)."""
    folder = Path(ctx.state_dir) / "lambda" / "logs" / result.function_name
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (folder / f"{stamp}-{result.request_id}.log").write_text(
        f"START RequestId: {result.request_id}\n{result.log_text}"
        f"END RequestId: {result.request_id} ({result.duration_s:.2f}s) {result.summary()}\n")


# ---------------------------------------------------------------------- Invoke through the Lambda API

_INVOKE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")


def handles(method: str, path: str) -> bool:
    """Whether the request is Lambda's Invoke (``POST /2015-03-31/functions/<name>/invocations``)."""
    return method == "POST" and _INVOKE_RE.match(path) is not None


def serve_invoke(environ: dict[str, Any], start_response: Callable[..., Any], ctx: TwinContext) -> list[bytes]:
    """Lambda's Invoke, running the function from its zip (moto would need Docker)."""
    m = _INVOKE_RE.match(environ.get("PATH_INFO", ""))
    assert m is not None
    name = unquote(m.group("name"))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    kind = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
    try:
        _function(ctx, name)
    except Exception:
        arn = name if name.startswith("arn:") else f"arn:aws:lambda:{ctx.region}:{ctx.account}:function:{name}"
        return _json(start_response, "404 Not Found", {"Type": "User", "message": f"Function not found: {arn}"},
                     [("x-amzn-ErrorType", "ResourceNotFoundException")])
    try:
        event = json.loads(raw or b"{}")
    except ValueError:
        return _json(start_response, "400 Bad Request", {"Type": "User", "message": "Could not parse request body"},
                     [("x-amzn-ErrorType", "InvalidRequestContentException")])
    if kind == "DryRun":
        start_response("204 No Content", [("Content-Length", "0")])
        return [b""]
    if kind == "Event":
        threading.Thread(target=invoke, args=(ctx, name, event), daemon=True, name=f"twin-lambda-{name}").start()
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]
    result = invoke(ctx, name, event)
    headers = [("X-Amz-Executed-Version", "$LATEST")]
    if environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail":
        headers.append(("X-Amz-Log-Result", base64.b64encode(result.log_text.encode()[-4096:]).decode()))
    if result.error is not None:
        headers.append(("X-Amz-Function-Error", "Unhandled"))
        return _json(start_response, "200 OK", result.error, headers)
    return _json(start_response, "200 OK", result.payload, headers)


def _json(start_response: Callable[..., Any], status: str, body: Any,
          headers: list[tuple[str, str]]) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers])
    return [data]
