"""What the crontab line executes: check the DAG lookup, or run the DAG under a lock and record the outcome."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pipekit.airflow_cron._spec import CUSTOMER_DAG_ID, load_settings, mask, status_file_for
from pipekit.errors import ConfigError, PipekitError, StorageError
from pipekit.io.atomic import atomic_write_text

#: What a run keeps from whoever starts it: cron's own variables (who and where), locale and time zone.
_CALLER_VARS = ("HOME", "LOGNAME", "USER", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_PROBE_TAG = "pipekit-cron-probe: "
_SCRIPT_TASK = "flag_future_timestamps"
#: Lines of a run's output kept in its status (the end of a failure's traceback).
_TAIL = 20


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _child_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    # Only the settings file's environment: a run started by hand from a full shell behaves as under cron.
    env = {k: os.environ[k] for k in _CALLER_VARS if k in os.environ}
    env.update(settings_env)
    return env


def _interpreter_of(executable: str) -> str:
    """The Python that runs the console script ``executable`` (its shebang), else this one."""
    with contextlib.suppress(OSError, UnicodeDecodeError), open(executable, "rb") as fh:
        first = fh.readline(512)
        if first.startswith(b"#!"):
            words = first[2:].decode().split()
            if words and "python" in Path(words[0]).name:
                return words[0]
    return sys.executable


def probe_airflow(dag_id: str) -> dict[str, Any]:
    """In Airflow's interpreter, with the run's environment: is the metadata DB migrated, is the DAG found?

    The DAG is looked up as ``airflow dags test`` does (every DAG bundle, the DAGs folder first), but only
    parsed: nothing is written to the DB.
    """
    from airflow.configuration import conf
    from airflow.utils import db

    report: dict[str, Any] = {
        "db": mask("SQL_ALCHEMY_CONN", conf.get("database", "sql_alchemy_conn")),
        "dags_folder": os.path.expanduser(conf.get("core", "dags_folder")),
    }
    try:
        db.check_migrations(timeout=1)
        report["migrated"] = True
    except Exception as exc:  # TimeoutError when not migrated; OperationalError when unreachable
        report.update(migrated=False, db_error=f"{type(exc).__name__}: {exc}"[:600])
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag

    report.update(found=False, import_errors={})
    for bundle in DagBundlesManager().get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        report["import_errors"].update({str(k): str(v)[-800:] for k, v in bag.import_errors.items()})
        if dag_id in bag.dags:
            dag = bag.dags[dag_id]
            report.update(found=True, dag_file=str(dag.fileloc))
            # The customer DAG's shell step finds its script through PIPEKIT_SCRIPTS_DIR (or ../scripts).
            if dag.has_task(_SCRIPT_TASK):
                folder = (getattr(dag.get_task(_SCRIPT_TASK), "env", None) or {}).get("PIPEKIT_SCRIPTS_DIR")
                if folder and not (Path(folder) / f"{_SCRIPT_TASK}.sh").is_file():
                    report["missing_script"] = str(Path(folder) / f"{_SCRIPT_TASK}.sh")
            break
    return report


def _probe_main() -> None:
    print(_PROBE_TAG + json.dumps(probe_airflow(sys.argv[1])), flush=True)


def check_job(settings_file: str | os.PathLike[str], *, timeout: float = 300) -> dict[str, Any]:
    """The lookup a run starts with, without running: DB migrated? DAG found? A report with ``ok``, ``problems``.

    ConfigError if the settings file is missing or not pipekit's.
    """
    settings = load_settings(settings_file)
    env = _child_env(settings["env"])
    python = _interpreter_of(settings["airflow_bin"])
    home = settings["env"].get("AIRFLOW_HOME", "$AIRFLOW_HOME")
    report: dict[str, Any] = {"settings_file": str(settings_file), "dag_id": settings["dag_id"], "python": python,
                              "problems": [], "hints": []}
    code = "from pipekit.airflow_cron._run import _probe_main; _probe_main()"
    try:
        done = subprocess.run([python, "-c", code, settings["dag_id"]], env=env, cwd="/", capture_output=True,
                              text=True, timeout=timeout, check=False)
        output = done.stdout + "\n" + done.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        output = str(exc)
    tagged = [ln for ln in output.splitlines() if ln.startswith(_PROBE_TAG)]
    if not tagged:
        tail = " | ".join(output.strip().splitlines()[-5:])
        report["problems"].append(f"the DAG lookup could not run with {python}: {tail}")
        report["hints"].append('Install pipekit where Airflow runs: pip install "pipekit[airflow,gx]".')
    else:
        report.update(json.loads(tagged[-1][len(_PROBE_TAG) :]))
        if not report["migrated"] and not report.get("db_error", "").startswith("TimeoutError"):
            report["problems"].append(f"the Airflow metadata DB ({report['db']}) cannot be used: {report['db_error']}")
            report["hints"].append("Check AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (or sql_alchemy_conn in airflow.cfg).")
        elif not report["migrated"]:
            report["problems"].append(f"the Airflow metadata DB ({report['db']}) is not migrated")
            report["hints"].append(f"Run `AIRFLOW_HOME={home} {settings['airflow_bin']} db migrate` (with the same "
                                   "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, if you set one), then install again.")
        if not report["found"]:
            errors = {k: v.strip().splitlines()[-1] for k, v in report["import_errors"].items() if v.strip()}
            report["problems"].append(
                f"DAG {settings['dag_id']!r} is not found in the DAGs folder {report['dags_folder']}"
                + (f" (import errors: {errors})" if errors else "")
            )
            report["hints"].append("Export AIRFLOW__CORE__DAGS_FOLDER=<the folder with the DAG file> in the shell you "
                                   "install from (cron runs get only what install records), then install again.")
        if report.get("missing_script"):
            report["problems"].append(f"the DAG's shell script {report['missing_script']} does not exist")
            report["hints"].append("Export PIPEKIT_SCRIPTS_DIR=<adapters/airflow/scripts> (or keep scripts/ next to "
                                   "the DAGs folder), then install again.")
    if settings["dag_id"] == CUSTOMER_DAG_ID:
        with contextlib.suppress(PipekitError, ValueError):
            from pipekit.customer_pipeline import CustomerPipelineConfig

            params = json.loads(settings["conf"]) if settings.get("conf") else {}
            report["landing_dir"] = str(CustomerPipelineConfig.resolve(params, env=env).landing_dir)
    report["ok"] = not report["problems"]
    return report


def _failure_line(lines: Sequence[str]) -> str | None:
    """The line that says why a run failed: the last exception, else the last line saying "failed"."""
    for pattern in (r"\w(Error|Exception)\b", r"(?i)\bfail"):
        found = next((ln for ln in reversed(lines) if re.search(pattern, ln)), None)
        if found:
            return found.strip()
    return None


def _write_status(path: Path, status: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError):  # a status that cannot be written must not turn a good run into a failure
        atomic_write_text(path, json.dumps(status, indent=2) + "\n")


def read_status(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last run's status, None if none was recorded; a ``running`` whose processes are gone is ``interrupted``."""
    try:
        status = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cron status file {path} cannot be read: {exc}") from exc
    if status.get("result") == "running" and status.get("host") == socket.gethostname():
        alive = False
        for pid in (status.get("pid"), status.get("child_pid")):
            if isinstance(pid, int) and pid > 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 0)  # PermissionError: alive, someone else's
                    alive = True
        if not alive:
            status["result"] = "interrupted"
    return status


def run_job(settings_file: str | os.PathLike[str], *, stdout: IO[bytes] | None = None) -> int:
    """One cron run: lock, ``airflow dags test|trigger``, output appended to the log, status file; the exit code.

    A run that finds the lock taken (the previous run still going) writes one log line, exits 1 and leaves
    the status alone (it says ``running``). Every other run records its outcome in the status file, also
    when the settings file is gone or airflow cannot start.
    """
    out = stdout or sys.stdout.buffer
    settings_file = Path(settings_file).absolute()
    status_path = status_file_for(settings_file)
    previous: dict[str, Any] = {}
    with contextlib.suppress(StorageError):
        previous = read_status(status_path) or {}
    status: dict[str, Any] = {
        "dag_id": None, "result": "running", "exit_code": None, "started": _utc_now(), "finished": None,
        "log_file": None, "settings_file": str(settings_file), "command": None, "host": socket.gethostname(),
        "pid": os.getpid(), "child_pid": None, "message": None, "last_lines": [],
        "last_success": previous.get("last_success"),
    }

    def finish(code: int, message: str | None = None, lines: Sequence[str] = ()) -> int:
        status.update(result="success" if code == 0 else "failed", exit_code=code, finished=_utc_now(),
                      message=message, last_lines=list(lines))
        if code == 0:
            status["last_success"] = status["finished"]
        _write_status(status_path, status)
        return code

    try:
        settings = load_settings(settings_file)
    except ConfigError as exc:
        out.write(f"{_utc_now()} pipekit cron: {exc}\n".encode())
        out.flush()
        return finish(2, str(exc))
    dag_id = settings["dag_id"]
    status.update(dag_id=dag_id, log_file=settings["log_file"])
    argv = [settings["airflow_bin"], "dags", "test" if settings["mode"] == "test" else "trigger", dag_id]
    if settings.get("conf"):
        argv += ["--conf", settings["conf"]]
    status["command"] = shlex.join(argv)
    try:
        Path(settings["log_file"]).parent.mkdir(parents=True, exist_ok=True)
        log = open(settings["log_file"], "ab")  # noqa: SIM115  # closed in the finally below
    except OSError as exc:
        return finish(2, f"cannot open the log file {settings['log_file']}: {exc}")
    try:
        # Under cron stdout is the log already (the line's redirect): write each line once.
        same = os.path.samestat(os.fstat(out.fileno()), os.fstat(log.fileno()))
    except (OSError, ValueError, AttributeError):
        same = False
    sinks = [log] if same else [log, out]

    def emit(data: bytes) -> None:
        for sink in sinks:
            sink.write(data)
            sink.flush()

    lock_fd = -1
    try:
        try:
            lock_fd = os.open(settings["lock_file"], os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            emit(f"pipekit cron: cannot open the lock file {settings['lock_file']}: {exc}\n".encode())
            return finish(2, f"cannot open the lock file {settings['lock_file']}: {exc}")
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock flock(1) takes: they exclude each other
        except BlockingIOError:
            emit(f"{_utc_now()} pipekit cron: {dag_id} skipped, the previous run still holds "
                 f"{settings['lock_file']}\n".encode())
            return 1
        emit(f"==== {status['started']} pipekit cron run {dag_id} (pid {os.getpid()}): {status['command']}\n".encode())
        try:
            # The lock's fd is inherited (as with flock(1)): the lock lasts as long as airflow runs.
            proc = subprocess.Popen(argv, env=_child_env(settings["env"]), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, pass_fds=(lock_fd,))
        except OSError as exc:
            emit(f"pipekit cron: cannot start {argv[0]}: {exc}\n".encode())
            return finish(127, f"cannot start {argv[0]}: {exc}")
        status["child_pid"] = proc.pid
        _write_status(status_path, status)
        tail: deque[str] = deque(maxlen=_TAIL)
        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        handlers = {sig: signal.getsignal(sig) for sig in signals}
        with contextlib.suppress(ValueError):  # only the main thread may set handlers: then no forwarding
            for sig in signals:
                signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
        try:
            assert proc.stdout is not None
            for chunk in iter(proc.stdout.readline, b""):
                emit(chunk)
                if chunk.strip():
                    tail.append(chunk.decode("utf-8", "replace").rstrip()[-500:])
            code = proc.wait()
        finally:
            with contextlib.suppress(ValueError, TypeError):
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)
        if code < 0:  # killed by a signal: report it as a shell does
            code = 128 - code
        message = None if code == 0 else _failure_line(tail)
        finish(code, message, tail)
        emit(f"==== {status['finished']} {dag_id}: {status['result']} (exit {code})\n".encode())
        return code
    except BaseException as exc:
        if status["result"] == "running":
            finish(1, f"pipekit cron failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)
        log.close()
