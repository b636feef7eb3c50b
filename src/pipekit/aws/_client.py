"""One client factory for every AWS module.

Endpoints come from boto3's own configuration (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``,
profiles), never from special cases here, so the same code drives real AWS and the offline twin.

Clients are reused: building one re-reads the service model (0.1-0.7 s, which dominated polling loops),
and boto3 clients are thread-safe. With a session, its clients live on that session (and go with it);
without one, a client is shared while the ``AWS_*`` environment that shapes it stays the same.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pipekit._extras import require

_RETRY = {"mode": "standard", "max_attempts": 5}
_ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_LOCK = threading.Lock()
_SHARED: dict[tuple[str | None, ...], Any] = {}


def new_client(service: str, session: Any | None = None, **kwargs: Any) -> Any:
    """A new boto3 client for ``service`` from ``session`` (default: a new ``boto3.Session()``), standard retries."""
    boto3 = require("boto3", "aws")
    from botocore.config import Config

    session = session or boto3.Session()
    config = kwargs.pop("config", None) or Config(retries=_RETRY, user_agent_extra="pipekit")
    return session.client(service, config=config, **kwargs)


def client(service: str, session: Any | None = None, **kwargs: Any) -> Any:
    """A boto3 client for ``service``, reused while nothing that shapes it changed (extra kwargs: a new one)."""
    if kwargs:
        return new_client(service, session, **kwargs)
    with _LOCK:
        if session is not None:
            cache = session.__dict__.setdefault("_pipekit_clients", {})
            if service not in cache:
                cache[service] = new_client(service, session)
            return cache[service]
        key = (service, *(os.environ.get(k) for k in _ENV_KEYS),
               os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"))
        if key not in _SHARED:
            _SHARED[key] = new_client(service)
        return _SHARED[key]
