"""Git smart HTTP for the twin's CodeCommit repositories, through ``git http-backend`` (git's own CGI).

``<endpoint>/_twin/codecommit/<region>/v1/repos/<name>`` serves the bare repository the twin keeps for
CodeCommit repository ``name``: ``git clone``, ``fetch`` and ``push`` work with no credentials. After a
push (a ``git-receive-pack`` POST) the branch refs before and after are compared, and each changed branch
becomes a "CodeCommit Repository State Change" event handed to :mod:`pipekit.local.events_twin`, as
CodeCommit sends it to EventBridge.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterable
from typing import Any

from pipekit.local.codecommit_twin import GIT_HTTP_PREFIX, repo_dir
from pipekit.local.server import DEFAULT_ACCOUNT, TwinContext

log = logging.getLogger("pipekit.local.git_http")

_PATH_RE = re.compile(rf"^{re.escape(GIT_HTTP_PREFIX)}/([a-z0-9-]+)/v1/repos/([A-Za-z0-9_.-]+?)(?:\.git)?(/.*)?$")


def handles(path: str) -> bool:
    """Whether the request path is for the git endpoint."""
    return path.startswith(GIT_HTTP_PREFIX + "/")


def _branches(git_dir: Any) -> dict[str, str]:
    proc = subprocess.run(["git", "--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)",
                           "refs/heads/"], capture_output=True, text=True, check=False)
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


def _read_body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        return bytes(stream.read(int(length)))
    # git sends large pushes chunked; werkzeug de-chunks and marks the stream terminated.
    if environ.get("wsgi.input_terminated") or environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return bytes(stream.read())
    return b""


def serve(environ: dict[str, Any], start_response: Callable[..., Any], ctx: TwinContext,
          on_push: Callable[[TwinContext, str, list[tuple[str, str, str]]], None]) -> Iterable[bytes]:
    """Answer one git smart-HTTP request; ``on_push(ctx, repository, [(ref, old, new), ...])`` after a push."""
    from moto.codecommit.models import codecommit_backends

    m = _PATH_RE.match(environ.get("PATH_INFO", ""))
    if m is None:
        return _plain(start_response, "404 Not Found", "no such git endpoint\n")
    region, name, rest = m.group(1), m.group(2), m.group(3) or "/"
    ctx.region = region
    if name not in codecommit_backends[DEFAULT_ACCOUNT][region].repositories:
        return _plain(start_response, "404 Not Found", f"repository {name} does not exist in {region}\n")
    git_dir = repo_dir(ctx.state_dir, region, name)
    body = _read_body(environ)
    pushing = rest.endswith("/git-receive-pack") and environ.get("REQUEST_METHOD") == "POST"
    before = _branches(git_dir) if pushing else {}
    cgi_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(git_dir.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{git_dir.name}{rest}",
        "REQUEST_METHOD": environ.get("REQUEST_METHOD", "GET"),
        "QUERY_STRING": environ.get("QUERY_STRING", ""),
        "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": "twin",  # http-backend enables receive-pack only for an authenticated user
        "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
        "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "GATEWAY_INTERFACE": "CGI/1.1",
    }
    for key in ("HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL", "HTTP_ACCEPT"):
        if key in environ:
            cgi_env[key] = environ[key]
    proc = subprocess.run(["git", "http-backend"], input=body, env=cgi_env, capture_output=True, check=False)
    head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
    if not sep:  # CGI allows bare newlines between headers and body
        head, sep, payload = proc.stdout.partition(b"\n\n")
    status = "200 OK"
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = value.strip()
        elif key:
            headers.append((key.strip(), value.strip()))
    if proc.returncode != 0 and not proc.stdout:
        return _plain(start_response, "500 Internal Server Error", proc.stderr.decode(errors="replace"))
    headers.append(("Content-Length", str(len(payload))))
    start_response(status, headers)
    if pushing:
        after = _branches(git_dir)
        changes = [(ref, before.get(ref, ""), after.get(ref, "")) for ref in sorted(set(before) | set(after))
                   if before.get(ref) != after.get(ref)]
        if changes:
            try:
                on_push(ctx, name, changes)
            except Exception:  # the push itself succeeded; a trigger bug must not fail it
                log.exception("twin: handling the push to %s failed", name)
    return [payload]


def _plain(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    data = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
