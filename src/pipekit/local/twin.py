"""``pipekit local up|down|status``: run the offline AWS twin as a detached process on 127.0.0.1.

The twin's state (endpoint, pid, log) lives in ``.twin/`` or ``$PIPEKIT_TWIN_DIR``. ``up`` starts the
server on a free port, waits until it answers, and provisions ``infra/cloudformation/etl.yaml`` into it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipekit.errors import ConfigError, PipekitError
from pipekit.io.atomic import atomic_write_text

STATE_FILE = "server.json"
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK = "pipekit-etl"


class TwinError(PipekitError):
    """The offline twin could not be started, reached or stopped."""


@dataclass(frozen=True)
class TwinState:
    """A running twin: where it listens and which process serves it."""

    endpoint_url: str
    pid: int
    state_dir: str
    region: str = DEFAULT_REGION
    started_at: float = 0.0
    stack_name: str | None = None

    def exports(self) -> str:
        """Shell lines that point the AWS CLI and boto3 at this twin."""
        return "\n".join(
            [
                f"export AWS_ENDPOINT_URL={self.endpoint_url}",
                "export AWS_ACCESS_KEY_ID=testing",
                "export AWS_SECRET_ACCESS_KEY=testing",
                f"export AWS_DEFAULT_REGION={self.region}",
            ]
        )

    def env(self) -> dict[str, str]:
        """The same settings as a mapping, for subprocesses and tests."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
        }


def twin_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """The twin's state directory: the argument, else ``$PIPEKIT_TWIN_DIR``, else ``./.twin``."""
    return Path(state_dir or os.environ.get("PIPEKIT_TWIN_DIR") or ".twin").resolve()


def default_template() -> Path:
    """``infra/cloudformation/etl.yaml`` of the source checkout (or ``$PIPEKIT_ETL_TEMPLATE``)."""
    env = os.environ.get("PIPEKIT_ETL_TEMPLATE")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "infra" / "cloudformation" / "etl.yaml"
        if candidate.exists():
            return candidate
    raise ConfigError(
        "cannot find infra/cloudformation/etl.yaml next to the pipekit sources.",
        hint="pass --template PATH or set PIPEKIT_ETL_TEMPLATE",
    )


def _read_state(d: Path) -> TwinState | None:
    f = d / STATE_FILE
    if not f.exists():
        return None
    try:
        return TwinState(**json.loads(f.read_text()))
    except (ValueError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(endpoint_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/data.json", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def status(state_dir: str | os.PathLike[str] | None = None) -> TwinState | None:
    """The running twin recorded in ``state_dir``, or None when none is running (stale state is removed)."""
    d = twin_dir(state_dir)
    state = _read_state(d)
    if state is None:
        return None
    if not _pid_alive(state.pid) or not _answers(state.endpoint_url):
        (d / STATE_FILE).unlink(missing_ok=True)
        return None
    return state


def up(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    template: str | os.PathLike[str] | None = None,
    stack_name: str = DEFAULT_STACK,
    region: str = DEFAULT_REGION,
    provision: bool = True,
    parameters: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> TwinState:
    """Start the twin detached (or reuse the running one) and provision the ETL stack into it."""
    d = twin_dir(state_dir)
    state = status(d)
    if state is None:
        state = _spawn(d, region=region, timeout=timeout)
    if provision:
        from pipekit.local.provision import provision_stack

        provision_stack(
            state.endpoint_url,
            template or default_template(),
            stack_name=stack_name,
            region=region,
            parameters=parameters,
        )
        state = TwinState(**{**asdict(state), "stack_name": stack_name})
        atomic_write_text(d / STATE_FILE, json.dumps(asdict(state), indent=2))
    return state


def _spawn(d: Path, *, region: str, timeout: float) -> TwinState:
    d.mkdir(parents=True, exist_ok=True)
    (d / STATE_FILE).unlink(missing_ok=True)
    log = open(d / "twin.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipekit.local.twin", "serve", "--state-dir", str(d), "--region", region],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # survives the shell that ran `pipekit local up`
            close_fds=True,
        )
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (d / "twin.log").read_text(errors="replace")[-2000:]
            raise TwinError(f"the twin exited with code {proc.returncode} while starting:\n{tail}",
                            hint=f"see {d / 'twin.log'}")
        state = _read_state(d)
        if state is not None and state.pid == proc.pid and _answers(state.endpoint_url):
            return state
        time.sleep(0.2)
    proc.terminate()
    raise TwinError(f"the twin did not answer within {timeout:.0f}s", hint=f"see {d / 'twin.log'}")


def down(state_dir: str | os.PathLike[str] | None = None, *, timeout: float = 15.0) -> bool:
    """Stop the twin recorded in ``state_dir``; False when none was running."""
    d = twin_dir(state_dir)
    state = _read_state(d)
    if state is None:
        return False
    stopped = False
    if _pid_alive(state.pid):
        os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(state.pid):
            os.kill(state.pid, signal.SIGKILL)
        stopped = True
    (d / STATE_FILE).unlink(missing_ok=True)
    return stopped


def serve(state_dir: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0,
          region: str = DEFAULT_REGION) -> None:
    """Serve the twin in the foreground and record it in ``state_dir`` (the detached child runs this)."""
    from pipekit.local.server import TwinServer

    d = Path(state_dir)
    server = TwinServer(d, host=host, port=port)
    server.bind()
    state = TwinState(endpoint_url=server.endpoint_url, pid=os.getpid(), state_dir=str(d), region=region,
                      started_at=time.time())
    atomic_write_text(d / STATE_FILE, json.dumps(asdict(state), indent=2))

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_bound()


def _main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipekit.local.twin")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--state-dir", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--region", default=DEFAULT_REGION)
    args = parser.parse_args(argv)
    serve(args.state_dir, host=args.host, port=args.port, region=args.region)


if __name__ == "__main__":
    _main()
