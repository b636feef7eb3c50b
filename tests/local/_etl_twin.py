"""One offline twin per test session, shared by tests/aws and tests/local (imported by both conftests).

moto's backends are process-global, so another test directory that resets moto (``/moto-api/reset``)
also wipes this twin's stack: :func:`ensure_stack` re-provisions it when it is gone.
"""

from __future__ import annotations

import atexit
import os
import warnings
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

_server: Any = None


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
        from pipekit.local.server import TwinServer

        _server = TwinServer(state_dir).start()
        atexit.register(_server.stop)
    return _server


def ensure_stack(server: Any) -> dict[str, str]:
    """The ETL stack's Outputs, provisioning the template first when the stack is missing."""
    import boto3

    from pipekit.local.provision import provision_stack

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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # moto warns once per resource type it skips
            return provision_stack(server.endpoint_url, TEMPLATE, stack_name=STACK)


def apply_env(monkeypatch: Any, twin: EtlTwin) -> None:
    """Point boto3 and the AWS CLI at the twin for one test."""
    for key, value in twin.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    os.environ.setdefault("PIPEKIT_SPARK_LOG_LEVEL", "ERROR")
