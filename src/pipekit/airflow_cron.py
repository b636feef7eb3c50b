"""Crontab entries that run an Airflow DAG without a scheduler, never overlapping (``flock``).

The line is built by a pure function and merged into a crontab text by pure functions; reading and
writing the crontab goes through a small backend (the ``crontab`` command, or a plain file for
``/etc/cron.d``-style deployments and tests), so nothing here touches a real crontab unless asked.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pipekit.errors import ConfigError, StorageError
from pipekit.io.atomic import atomic_write_text

#: The customer DAG's schedule comes from this env var (read by the DAG file at parse time too).
SCHEDULE_ENV = "PIPEKIT_CUSTOMER_SCHEDULE"
DEFAULT_SCHEDULE = "0 * * * *"
#: Sensor wait (seconds) the DAG reads at parse time; the cron line sets it to 0.
WAIT_ENV = "PIPEKIT_CUSTOMER_WAIT_SECONDS"
CUSTOMER_DAG_ID = "customer_pipeline"

_NICKNAMES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def customer_schedule(env: Mapping[str, str] | None = None) -> str:
    """The customer DAG's cron schedule: ``$PIPEKIT_CUSTOMER_SCHEDULE`` or hourly (the DAG uses the same rule)."""
    env = os.environ if env is None else env
    return (env.get(SCHEDULE_ENV) or DEFAULT_SCHEDULE).strip()


def normalize_schedule(schedule: str) -> str:
    """Five-field cron expression for ``schedule`` (nicknames expanded); ConfigError if cron cannot run it."""
    expr = " ".join(schedule.split())
    expr = _NICKNAMES.get(expr.lower(), expr)
    fields = expr.split(" ")
    if len(fields) != 5:
        raise ConfigError(
            f"schedule {schedule!r} is not a 5-field cron expression",
            hint='use e.g. "0 * * * *" (hourly) or "@daily"; Airflow timetables and timedeltas cannot go in a crontab',
        )
    try:
        from croniter import croniter
    except ImportError:  # croniter ships with the airflow extra; fall back to a shape check
        if not all(re.fullmatch(r"[\d*/,\-A-Za-z?]+", f) for f in fields):
            raise ConfigError(f"schedule {schedule!r} has an invalid cron field") from None
        return expr
    if not croniter.is_valid(expr):
        raise ConfigError(f"schedule {schedule!r} is not a valid cron expression", hint='e.g. "0 * * * *"')
    return expr


def marker(dag_id: str) -> str:
    """The trailing comment that identifies pipekit's line for ``dag_id``."""
    return f"# pipekit:{dag_id}"


@dataclass(frozen=True)
class CronSpec:
    """Everything that goes into one crontab line."""

    dag_id: str = CUSTOMER_DAG_ID
    schedule: str = DEFAULT_SCHEDULE
    airflow_bin: str = "airflow"
    airflow_home: str | None = None
    lock_file: str | None = None
    log_file: str | None = None
    conf: str | None = None
    mode: Literal["test", "trigger"] = "test"
    flock_bin: str = "flock"

    @classmethod
    def for_customer_dag(
        cls, *, airflow_home: str | None = None, env: Mapping[str, str] | None = None, **overrides: object
    ) -> CronSpec:
        """Defaults for the customer DAG: its schedule, this venv's ``airflow``, lock and log under AIRFLOW_HOME."""
        env = os.environ if env is None else env
        home = airflow_home or env.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
        local_airflow = Path(sys.executable).with_name("airflow")
        airflow_bin = str(local_airflow) if local_airflow.exists() else (shutil.which("airflow") or "airflow")
        values: dict[str, object] = {
            "schedule": customer_schedule(env),
            "airflow_bin": airflow_bin,
            "airflow_home": str(Path(home).absolute()),
            "lock_file": str(Path(home).absolute() / f"pipekit-{CUSTOMER_DAG_ID}.lock"),
            "log_file": str(Path(home).absolute() / "logs" / f"pipekit-{CUSTOMER_DAG_ID}.cron.log"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]  # **overrides is typed object; callers pass CronSpec fields


def _cron_quote(value: str) -> str:
    # In a crontab, an unescaped % ends the command and starts stdin: escape it after shell quoting.
    return shlex.quote(value).replace("%", r"\%")


def build_cron_line(spec: CronSpec) -> str:
    """The crontab line: ``<schedule> [AIRFLOW_HOME=..] flock -n LOCK airflow dags test DAG >> LOG 2>&1 # pipekit:DAG``."""
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", spec.dag_id):
        raise ConfigError(f"dag id {spec.dag_id!r} has characters Airflow does not allow")
    if spec.mode not in ("test", "trigger"):
        raise ConfigError(f"cron mode {spec.mode!r} is not known", hint="use test (run in-process) or trigger")
    schedule = normalize_schedule(spec.schedule)
    lock = spec.lock_file or f"/tmp/pipekit-{spec.dag_id}.lock"
    verb = ["dags", "test", spec.dag_id] if spec.mode == "test" else ["dags", "trigger", spec.dag_id]
    if spec.conf:
        verb += ["--conf", spec.conf]
    parts: list[str] = []
    if spec.airflow_home:
        parts.append(f"AIRFLOW_HOME={_cron_quote(spec.airflow_home)}")
    if spec.mode == "test":
        # In-process runs look for a file once and end (skipped) instead of holding the lock for an hour.
        parts.append(f"{WAIT_ENV}=0")
    # flock -n: if the previous run still holds the lock, this one exits at once instead of overlapping.
    parts += [_cron_quote(spec.flock_bin), "-n", _cron_quote(lock), _cron_quote(spec.airflow_bin)]
    parts += [_cron_quote(v) for v in verb]
    command = " ".join(parts)
    if spec.log_file:
        command += f" >> {_cron_quote(spec.log_file)} 2>&1"
    return f"{schedule} {command} {marker(spec.dag_id)}"


def split_cron_line(line: str) -> tuple[str, str]:
    """(schedule, command) of a crontab line (5 fields then the command)."""
    fields = line.split(None, 5)
    if len(fields) < 6:
        raise ConfigError(f"not a crontab line: {line!r}")
    return " ".join(fields[:5]), fields[5]


def without_entry(crontab: str, dag_id: str) -> str:
    """``crontab`` text with pipekit's line(s) for ``dag_id`` removed; every other line kept as is."""
    tag = marker(dag_id)
    kept = [ln for ln in crontab.splitlines() if not ln.rstrip().endswith(tag)]
    return "\n".join(kept) + ("\n" if kept else "")


def with_entry(crontab: str, line: str, dag_id: str) -> str:
    """``crontab`` text with pipekit's line for ``dag_id`` replaced by ``line`` (added if absent)."""
    base = without_entry(crontab, dag_id)
    return base + line + "\n"


def entries(crontab: str, dag_id: str) -> list[str]:
    """pipekit's line(s) for ``dag_id`` in ``crontab``."""
    tag = marker(dag_id)
    return [ln for ln in crontab.splitlines() if ln.rstrip().endswith(tag)]


class CrontabBackend(Protocol):
    """Where a crontab is read from and written to."""

    def read(self) -> str: ...

    def write(self, text: str) -> None: ...


@dataclass(frozen=True)
class CommandCrontab:
    """The user's crontab through the ``crontab`` command (``crontab -l`` / ``crontab -``)."""

    command: Sequence[str] = ("crontab",)

    def _run(self, args: list[str], text: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([*self.command, *args], input=text, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise StorageError(
                f"the crontab command {self.command[0]!r} is not installed",
                hint="install cron (Debian: apt-get install cron) or use --crontab-file PATH for a cron.d-style file",
            ) from exc

    def read(self) -> str:
        """Current crontab, '' when the user has none."""
        done = self._run(["-l"])
        if done.returncode != 0:
            if "no crontab" in done.stderr.lower():
                return ""
            raise StorageError(f"`{' '.join(self.command)} -l` failed: {done.stderr.strip()}")
        return done.stdout

    def write(self, text: str) -> None:
        """Replace the crontab with ``text``."""
        done = self._run(["-"], text)
        if done.returncode != 0:
            raise StorageError(f"`{' '.join(self.command)} -` rejected the new crontab: {done.stderr.strip()}")


@dataclass(frozen=True)
class FileCrontab:
    """A crontab kept in a plain file (``/etc/cron.d`` needs a user column; this keeps user-crontab format)."""

    path: Path

    def read(self) -> str:
        """File content, '' if it does not exist."""
        return self.path.read_text(encoding="utf-8") if self.path.exists() else ""

    def write(self, text: str) -> None:
        """Write atomically."""
        atomic_write_text(self.path, text)


def install(spec: CronSpec, backend: CrontabBackend) -> tuple[str, bool]:
    """Install (or replace) the line for ``spec.dag_id``; returns (line, changed). Idempotent."""
    line = build_cron_line(spec)
    # cron's /bin/sh will not create these folders; a missing one makes every run fail silently.
    for target in (spec.lock_file, spec.log_file):
        if target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
    current = backend.read()
    updated = with_entry(current, line, spec.dag_id)
    if updated == current:
        return line, False
    backend.write(updated)
    return line, True


def remove(dag_id: str, backend: CrontabBackend) -> int:
    """Remove pipekit's line(s) for ``dag_id``; returns how many were removed."""
    current = backend.read()
    found = entries(current, dag_id)
    if found:
        backend.write(without_entry(current, dag_id))
    return len(found)


def show(dag_id: str, backend: CrontabBackend) -> list[str]:
    """pipekit's installed line(s) for ``dag_id``."""
    return entries(backend.read(), dag_id)
