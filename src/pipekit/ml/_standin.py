"""A local stand-in for the Kaggle API's dataset download, for tests and the offline demo.

The official client (kaggle >=2.2.4,<2.3 with kagglesdk; see ``pipekit.ml._kaggle.KAGGLE_VERSION_RANGE``)
downloads a dataset in two HTTP steps. This server answers them the way api.kaggle.com does:

1. ``POST {endpoint}/api/v1/datasets.DatasetApiService/DownloadDataset`` with a JSON body
   ``{"ownerSlug": ..., "datasetSlug": ..., "datasetVersionNumber"?: n}`` and HTTP Basic auth
   (username, API key). Kaggle answers ``302`` to a signed storage URL; errors are JSON
   ``{"code": 4xx, "message": ...}``.
2. ``GET`` on that URL returns the zip with ``Content-Length``, ``Last-Modified`` and ``ETag``;
   the client streams it to ``<slug>.zip`` and unzips it.

The client reaches it through kagglesdk's public setting ``KAGGLE_API_ENVIRONMENT=TEST``, which means
``http://localhost:7777``. The downloaded manifest records that endpoint. kagglesdk fixes that port, so the
stand-in can also listen on any free port (``port=0``) and be reached as an HTTP proxy through the proxy
settings every HTTP client honours (``HTTP_PROXY=http://127.0.0.1:<port>``, with ``NO_PROXY`` unset): the
client still addresses ``http://localhost:7777``, and nothing needs that port to be free. Tests and the demo
use that; a busy fixed port raises a clear DatasetError. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from pipekit.errors import DatasetError
from pipekit.ml.iris import IRIS_SLUG, iris_zip_bytes

HOST = "127.0.0.1"
PORT = 7777
#: What the kaggle client addresses with KAGGLE_API_ENVIRONMENT=TEST, whichever port the stand-in binds.
ENDPOINT = f"http://localhost:{PORT}"
DOWNLOAD_PATH = "/api/v1/datasets.DatasetApiService/DownloadDataset"
#: Credentials the stand-in accepts unless told otherwise (they guard nothing: the server is local).
DEFAULT_USERNAME = "pipekit-standin"
DEFAULT_KEY = "standin-0123456789abcdef"
# Kaggle's storage answers with an RFC 1123 date; the client parses it with "%a, %d %b %Y %H:%M:%S %Z".
_LAST_MODIFIED = "Mon, 01 Jan 2018 00:00:00 GMT"


@dataclass
class StandInStats:
    """What the stand-in served: the tests use it to prove a cached run downloads nothing."""

    api_calls: int = 0
    archive_downloads: int = 0
    rejected_auth: int = 0
    requests: list[str] = field(default_factory=list)


class KaggleStandIn:
    """Serve ``saurabh00007/iriscsv`` (and any extra archives) on 127.0.0.1:7777 the way the Kaggle API does."""

    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        key: str = DEFAULT_KEY,
        archives: dict[str, bytes] | None = None,
        port: int = PORT,
    ) -> None:
        self.username = username
        self.key = key
        self.port = port
        self.archives = dict(archives) if archives is not None else {IRIS_SLUG: iris_zip_bytes()}
        self.stats = StandInStats()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """Base URL the kaggle client uses for ``KAGGLE_API_ENVIRONMENT=TEST``."""
        return ENDPOINT

    @property
    def bound_port(self) -> int:
        """The port actually listened on (the OS's choice when constructed with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return int(self._server.server_address[1])

    @property
    def proxy_url(self) -> str:
        """Set ``HTTP_PROXY`` (and unset ``NO_PROXY``) to this to reach the stand-in on any port."""
        return f"http://{HOST}:{self.bound_port}"

    def start(self) -> KaggleStandIn:
        """Bind the port and serve in a daemon thread; raise DatasetError if the port is taken."""
        try:
            self._server = ThreadingHTTPServer((HOST, self.port), _make_handler(self))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DatasetError(
                    f"Cannot start the Kaggle stand-in: {HOST}:{self.port} is already in use.",
                    hint=(
                        f"Stop whatever listens on port {self.port} (`ss -ltnp 'sport = :{self.port}'` shows it), "
                        "or start the stand-in on any free port (port=0 / --port 0) and reach it through "
                        "HTTP_PROXY=<its proxy_url>."
                    ),
                ) from exc
            raise
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kaggle-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> KaggleStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _make_handler(standin: KaggleStandIn) -> type[BaseHTTPRequestHandler]:
    """Build the request handler bound to ``standin``'s catalogue and counters."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "kaggle-standin/1"

        def log_message(self, format: str, *args: object) -> None:
            # Keep test and demo output clean; the counters record what happened.
            return

        def _json(self, status: int, payload: dict[str, object]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return False
            try:
                user, _, key = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == standin.username and key == standin.key

        def _target(self) -> str | None:
            """The request's path; as a proxy the target is absolute (``http://localhost:7777/...``)."""
            if not self.path.startswith(("http://", "https://")):
                return self.path
            if not self.path.startswith(ENDPOINT + "/"):
                self._json(502, {"code": 502, "message": f"The stand-in only serves {ENDPOINT}"})
                return None
            return self.path[len(ENDPOINT) :]

        def do_POST(self) -> None:
            path = self._target()
            if path is None:
                return
            standin.stats.requests.append(f"POST {path}")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            if path != DOWNLOAD_PATH:
                self._json(404, {"code": 404, "message": f"The stand-in does not implement {path}"})
                return
            standin.stats.api_calls += 1
            if not self._authorized():
                standin.stats.rejected_auth += 1
                self._json(401, {"code": 401, "message": "Unauthenticated"})
                return
            try:
                request = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"code": 400, "message": "Request body is not JSON"})
                return
            slug = f"{request.get('ownerSlug', '')}/{request.get('datasetSlug', '')}"
            if slug not in standin.archives:
                self._json(404, {"code": 404, "message": f"Dataset {slug} not found"})
                return
            self.send_response(302)
            self.send_header("Location", f"{standin.endpoint}/storage/{slug}/archive.zip")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            path = self._target()
            if path is None:
                return
            standin.stats.requests.append(f"GET {path}")
            prefix, suffix = "/storage/", "/archive.zip"
            slug = path[len(prefix) : -len(suffix)] if path.startswith(prefix) else ""
            if not path.endswith(suffix) or slug not in standin.archives:
                self._json(404, {"code": 404, "message": "No such object"})
                return
            body = standin.archives[slug]
            standin.stats.archive_downloads += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", _LAST_MODIFIED)
            self.send_header("ETag", f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"')
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground (``python -m pipekit.ml._standin``) until interrupted."""
    import argparse
    import os
    import time
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="python -m pipekit.ml._standin",
        description="Serve saurabh00007/iriscsv the way the Kaggle API does, on 127.0.0.1, for the "
        "official kaggle client with KAGGLE_API_ENVIRONMENT=TEST.",
    )
    parser.add_argument(
        "--port", type=int, default=PORT,
        help=f"port to listen on (default {PORT}, where the client looks); 0 = any free port, reached "
        "through HTTP_PROXY",
    )
    parser.add_argument(
        "--ready-file", type=Path,
        help="once listening, write the HTTP_PROXY value that reaches the stand-in to this file",
    )
    args = parser.parse_args(argv)
    with KaggleStandIn(port=args.port) as standin:
        if args.ready_file is not None:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(standin.proxy_url + "\n")
            os.replace(tmp, args.ready_file)
        print(
            f"Kaggle stand-in for {standin.endpoint} on {HOST}:{standin.bound_port}"
            + ("" if standin.bound_port == PORT else f" (set HTTP_PROXY={standin.proxy_url}, unset NO_PROXY)")
            + f"; user {standin.username!r}. Ctrl-C stops it.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
