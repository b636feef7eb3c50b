"""Crontab text: schedules, pipekit's tagged line merged into a crontab, and where a crontab is kept."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipekit.errors import ConfigError, StorageError
from pipekit.io.atomic import atomic_write_text

#: The customer DAG's schedule comes from this env var (read by the DAG file at parse time too).
SCHEDULE_ENV = "PIPEKIT_CUSTOMER_SCHEDULE"
DEFAULT_SCHEDULE = "0 * * * *"

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


def cron_quote(value: str) -> str:
    """Shell-quote ``value`` for a crontab command (an unescaped ``%`` there ends the command: escaped)."""
    return shlex.quote(value).replace("%", r"\%")


def as_cron_runs(command: str) -> str:
    """What cron hands ``/bin/sh -c`` for a crontab ``command``: cut at the first unescaped ``%``, ``\\%`` -> ``%``."""
    match = re.search(r"(?<!\\)%", command)
    return (command[: match.start()] if match else command).replace(r"\%", "%")


def split_cron_line(line: str) -> tuple[str, str]:
    """(schedule, command) of a crontab line (5 fields then the command)."""
    fields = line.split(None, 5)
    if len(fields) < 6:
        raise ConfigError(f"not a crontab line: {line!r}")
    return " ".join(fields[:5]), fields[5]


def settings_file_of(line: str) -> str | None:
    """The settings file a pipekit line runs with (the argument after ``cron run``), or None."""
    try:
        words = shlex.split(as_cron_runs(split_cron_line(line)[1]), comments=True)
    except (ConfigError, ValueError):
        return None
    for i in range(len(words) - 3):
        if words[i + 1 : i + 3] == ["cron", "run"]:
            return words[i + 3]
    return None


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
