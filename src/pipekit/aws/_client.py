"""One client factory for every AWS module.

Endpoints come from boto3's own configuration (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``,
profiles), never from special cases here, so the same code drives real AWS and the offline twin.
"""

from __future__ import annotations

from typing import Any

from pipekit._extras import require

_RETRY = {"mode": "standard", "max_attempts": 5}


def client(service: str, session: Any | None = None, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` from ``session`` (default: a new ``boto3.Session()``), standard retries."""
    boto3 = require("boto3", "aws")
    from botocore.config import Config

    session = session or boto3.Session()
    config = kwargs.pop("config", None) or Config(retries=_RETRY, user_agent_extra="pipekit")
    return session.client(service, config=config, **kwargs)
