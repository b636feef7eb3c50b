"""Reuse boto3 clients: building one from a fresh ``boto3.Session()`` re-reads the service model
(0.2-0.7 s for Glue), which dominated polling loops. Clients are thread-safe, so one per
(service, session or AWS_* environment) is shared; a changed environment gets a new client.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pipekit.aws._client import client

_ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_LOCK = threading.Lock()
_CACHE: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def cached_client(service: str, session: Any | None = None) -> Any:
    """A boto3 client for ``service`` from :func:`pipekit.aws._client.client`, reused while nothing changed."""
    env = tuple(os.environ.get(k) for k in _ENV_KEYS)
    env += (os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"),)
    key = (service, id(session) if session is not None else None, env)
    with _LOCK:
        found = _CACHE.get(key)
        # The session is kept in the entry so its id cannot be reused by another object meanwhile.
        if found is not None and found[0] is session:
            return found[1]
        made = client(service, session)
        _CACHE[key] = (session, made)
        return made
