"""One offline twin per test session, shared by tests/aws and tests/local (imported by both conftests).

The twin runs in a child process of its own. moto's backends are process-global: in this process,
``moto.mock_aws()`` (tests/glue) and ``/moto-api/reset`` on another in-process twin (tests/cicd) wipe
every backend, which used to take the session's deployed stack, crawled tables, script and Parquet
output with them. In a child process that state belongs to the twin alone.

Tests that change the stack itself (re-provisioning recreates the job and the crawler) use
:func:`private_twin`: a second child process that lives only for that test.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "cloudformation" / "etl.yaml"
STACK = "pipekit-etl"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

# The child serves the twin and stops itself (SIGTERM, handled by ``serve``) once this process is gone,
# so a killed test run leaves no server behind.
_CHILD = """
import os, signal, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=watch, daemon=True).start()
from pipekit.local.twin import serve
serve(sys.argv[1])
"""

_server: Any = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # not written yet, or caught half-written


def _answers(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/data.json", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


class TwinProcess:
    """The twin (moto + pipekit handlers) served by a child process on a free 127.0.0.1 port."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint_url = ""

    def start(self, timeout: float = 60.0) -> TwinProcess:
        from pipekit.local import twin

        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / twin.STATE_FILE).unlink(missing_ok=True)
        # The child (and the Glue job scripts it runs) sees a fixed environment: no AWS_* settings of
        # whichever test happens to be running, quiet Spark.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.setdefault("PIPEKIT_SPARK_LOG_LEVEL", "ERROR")
        log = open(self.state_dir / "twin.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(self.state_dir)], env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.state_dir / "twin.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the twin exited with code {self.proc.returncode} while starting:\n{tail}")
            state = _read_json(self.state_dir / twin.STATE_FILE)
            if state.get("pid") == self.proc.pid and _answers(state["endpoint_url"]):
                self.endpoint_url = state["endpoint_url"]
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the twin did not answer within {timeout:.0f}s; see {self.state_dir / 'twin.log'}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


@dataclass
class EtlTwin:
    """The running twin and the ETL stack's Outputs."""

    server: Any
    outputs: dict[str, str]

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def bucket(self) -> str:
        return self.outputs["BucketName"]

    def env(self) -> dict[str, str]:
        return {**ENV, "AWS_ENDPOINT_URL": self.endpoint_url}


def get_server(state_dir: Path) -> Any:
    """Start the session's twin on first use (stopped at interpreter exit)."""
    global _server
    if _server is None:
        _server = TwinProcess(state_dir).start()
        atexit.register(_server.stop)
    return _server


def provision(server: Any) -> dict[str, str]:
    """Provision the ETL template into ``server``; returns the stack Outputs."""
    from pipekit.local.provision import provision_stack

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns once per resource type it skips
        return provision_stack(server.endpoint_url, TEMPLATE, stack_name=STACK)


def ensure_stack(server: Any) -> dict[str, str]:
    """The ETL stack's Outputs, provisioning the template first when the stack is missing."""
    import boto3

    cfn = boto3.client("cloudformation", endpoint_url=server.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        glue = boto3.client("glue", endpoint_url=server.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
        glue.get_crawler(Name=outputs["CrawlerName"])
        return outputs
    except Exception:
        return provision(server)


@contextmanager
def private_twin(state_dir: Path) -> Iterator[EtlTwin]:
    """A twin process of its own with the ETL stack provisioned, for a test that changes the stack."""
    server = TwinProcess(state_dir).start()
    try:
        yield EtlTwin(server, provision(server))
    finally:
        server.stop()


def apply_env(monkeypatch: Any, twin: EtlTwin) -> None:
    """Point boto3 and the AWS CLI at the twin for one test."""
    for key, value in twin.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_")]:  # per-service overrides
        monkeypatch.delenv(key)
