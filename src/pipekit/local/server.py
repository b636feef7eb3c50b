"""The offline twin's HTTP server: moto's server plus pipekit's own implementations of the operations
moto lacks (crawl, Athena SQL, Glue job runs, UpdateJob, CodeCommit content, CodePipeline job results).

One endpoint serves both, so clients use the unchanged boto3/AWS CLI code paths via ``AWS_ENDPOINT_URL``.
The same endpoint serves git over HTTP for CodeCommit repositories created by a stack
(:mod:`pipekit.local.git_http`) and runs Lambda's Invoke from the function's zip
(:mod:`pipekit.local.lambda_runner`), and moto's CloudFormation gets the resource models it lacks
(:mod:`pipekit.local.cfn_models`).
Twin operations are registered per JSON-protocol target (the ``X-Amz-Target`` header, e.g.
``AWSGlue.UpdateJob``) with :func:`operation`; every other request goes to moto untouched.

Handlers live in sibling modules (``glue_twin``, ``athena_twin``, ``codecommit_twin``,
``codepipeline_twin``, ...) and are imported by :func:`load_handlers`. A handler receives the parsed
JSON body and a :class:`TwinContext` and returns the JSON response body, or raises :class:`TwinFault`
to answer with an AWS-shaped error that botocore turns into a ``ClientError``.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("pipekit.local.server")

DEFAULT_ACCOUNT = "123456789012"

#: Sibling modules that register twin operations. A missing module is an error, not a silent skip.
HANDLER_MODULES: list[str] = ["glue_twin", "athena_twin", "glue_jobs_twin", "codecommit_twin", "codepipeline_twin",
                              "pipeline_runs"]


@dataclass
class TwinContext:
    """What a twin handler may use: the caller's region/account, the endpoint, and a scratch directory."""

    region: str
    account: str
    endpoint_url: str
    state_dir: Path
    #: Per-process shared state that handlers may keep (keyed by module name).
    shared: dict[str, Any] = field(default_factory=dict)

    def boto3_client(self, service: str) -> Any:
        """A boto3 client for ``service`` pointed at this same twin (for handlers that call moto)."""
        import boto3

        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


class TwinFault(Exception):
    """An AWS-shaped error answered by a twin handler (``code`` is the AWS error code)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


Handler = Callable[[dict[str, Any], TwinContext], dict[str, Any]]
_REGISTRY: dict[str, Handler] = {}


def operation(target: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the twin implementation of JSON target ``target`` (e.g. ``AWSGlue.UpdateJob``)."""

    def deco(fn: Handler) -> Handler:
        _REGISTRY[target] = fn
        return fn

    return deco


def registered_operations() -> list[str]:
    """The targets the twin answers itself, sorted."""
    return sorted(_REGISTRY)


def load_handlers() -> None:
    """Import every handler module so their ``@operation`` registrations take effect."""
    for name in HANDLER_MODULES:
        importlib.import_module(f"pipekit.local.{name}")


_REGION_RE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")


class TwinApp:
    """WSGI app: twin operations first, moto for everything else."""

    def __init__(self, moto_app: Any, endpoint_url: str, state_dir: Path) -> None:
        self.moto_app = moto_app
        self.endpoint_url = endpoint_url
        self.state_dir = state_dir
        self.shared: dict[str, Any] = {}
        self.lock = threading.RLock()

    def context(self, region: str = "us-east-1") -> TwinContext:
        """A handler context for ``region`` sharing this app's state."""
        return TwinContext(region=region, account=DEFAULT_ACCOUNT, endpoint_url=self.endpoint_url,
                           state_dir=self.state_dir, shared=self.shared)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from pipekit.local import git_http, lambda_runner

        path = environ.get("PATH_INFO", "")
        if git_http.handles(path):
            from pipekit.local.events_twin import on_push

            return git_http.serve(environ, start_response, self.context(), on_push)
        if lambda_runner.handles(environ.get("REQUEST_METHOD", ""), path):
            m = _REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
            return lambda_runner.serve_invoke(environ, start_response, self.context(m.group(1) if m else "us-east-1"))
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        handler = _REGISTRY.get(target)
        if handler is None:
            return self.moto_app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        m = _REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        ctx = self.context(m.group(1) if m else "us-east-1")
        try:
            body = json.loads(raw or b"{}")
            result = handler(body, ctx)
            status, payload = "200 OK", result
        except TwinFault as fault:
            status = f"{fault.status} Error"
            payload = {"__type": fault.code, "message": fault.message, "Message": fault.message}
        except Exception as exc:  # a twin bug must surface as a 500 with the reason, not kill the server
            log.exception("twin handler %s failed", target)
            status = "500 Internal Server Error"
            payload = {"__type": "InternalFailure", "message": f"pipekit twin: {type(exc).__name__}: {exc}"}
        data = json.dumps(payload, default=str).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data)))]
        if payload.get("__type"):
            headers.append(("x-amzn-ErrorType", str(payload["__type"])))
        start_response(status, headers)
        return [data]


def make_app(endpoint_url: str, state_dir: Path) -> TwinApp:
    """Build the twin WSGI app around a fresh moto server app."""
    from moto.server import DomainDispatcherApplication, create_backend_app

    from pipekit.local import cfn_models

    load_handlers()
    cfn_models.register(endpoint_url, state_dir)
    return TwinApp(DomainDispatcherApplication(create_backend_app), endpoint_url, state_dir)


class TwinServer:
    """The twin served on 127.0.0.1 in a background thread (tests) or in the foreground (``pipekit local up``)."""

    def __init__(self, state_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bind(self) -> None:
        """Bind the socket (port 0 = a free port) and build the app with the real endpoint."""
        from moto.server import MotoRequestHandler
        from werkzeug.serving import make_server

        if not os.environ.get("PIPEKIT_TWIN_VERBOSE"):
            # One log line per request drowns the demo and test output; errors still get through.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._server = make_server(self.host, self.port, lambda e, s: [], threaded=True,
                                   request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._server.app = make_app(self.endpoint_url, self.state_dir)

    def start(self) -> TwinServer:
        """Serve in a daemon thread; returns once the socket is listening."""
        self.bind()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="pipekit-twin")
        self._thread.start()
        return self

    def serve_bound(self) -> None:
        """Serve in the calling thread (after :meth:`bind`) until interrupted."""
        self._server.serve_forever()

    def serve_forever(self) -> None:
        """Bind, then serve in the calling thread until interrupted."""
        self.bind()
        self.serve_bound()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
