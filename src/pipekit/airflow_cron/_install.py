"""Install, prove, show and remove pipekit's crontab line and its settings file."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipekit.airflow_cron._crontab import (
    CrontabBackend,
    as_cron_runs,
    entries,
    settings_file_of,
    with_entry,
    without_entry,
)
from pipekit.airflow_cron._spec import (
    CRON_PATH,
    CronSpec,
    build_cron_line,
    build_settings,
    cron_env,
    load_settings,
    run_command,
    write_settings,
)
from pipekit.errors import ConfigError


def verify(spec: CronSpec, settings_file: str | os.PathLike[str] | None = None, *, timeout: float = 300) -> dict[str, Any]:
    """Prove the line in cron's environment: its command with ``--check``, run as cron runs it; ConfigError if refused.

    ``/bin/sh -c`` from ``/`` with only cron's variables (what ``env -i HOME=.. LOGNAME=.. SHELL=/bin/sh
    PATH=/usr/bin:/bin`` leaves), so pipekit, Airflow, the DAGs folder and the DB are found through the
    settings file alone. Returns the check's report (DB, DAGs folder, DAG file, landing folder).
    """
    command = as_cron_runs(run_command(spec, settings_file)) + " --check --json"
    try:
        done = subprocess.run(["/bin/sh", "-c", command], env=cron_env(), cwd="/", capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"refusing to install: the check in cron's environment did not finish in {timeout:.0f} s: "
                          f"{command}", hint="is the metadata DB reachable? try the command by hand") from None
    try:
        report = json.loads(done.stdout)
    except ValueError:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise ConfigError(
            f"refusing to install: the line's command does not start in cron's environment "
            f"(exit {done.returncode}): {command}: {tail}",
            hint=f"is {spec.pipekit_bin} an absolute path to an installed pipekit? cron's PATH is {CRON_PATH}",
        ) from None
    if not report.get("ok"):
        problems = "; ".join(report.get("problems") or ["the check failed"])
        raise ConfigError(f"refusing to install: in cron's environment (env -i, /bin/sh, cwd /) {problems}",
                          hint=" ".join(report.get("hints") or []) or None)
    return dict(report)


@dataclass(frozen=True)
class Installed:
    """What ``install`` did: the line, whether the crontab or settings changed, and the check's report."""

    line: str
    changed: bool
    settings_file: Path
    check: dict[str, Any] | None


def install(spec: CronSpec, backend: CrontabBackend, *, check: bool = True) -> Installed:
    """Write the settings file and the line for ``spec.dag_id`` (replacing an older one); idempotent.

    With ``check`` (the default) the line is first proven in cron's environment (``verify``) with a
    candidate settings file; when that refuses, nothing is changed.
    """
    line = build_cron_line(spec)
    settings = build_settings(spec)
    report = None
    if check:
        candidate = spec.settings_file.with_name(f".{spec.settings_file.name}.check")
        try:
            write_settings(candidate, settings)
            report = verify(spec, candidate)
        finally:
            candidate.unlink(missing_ok=True)
    # cron's /bin/sh will not create the log's folder: a missing one would make every run fail unseen.
    for target in (spec.lock_path, spec.log_path):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    changed = write_settings(spec.settings_file, settings)
    current = backend.read()
    updated = with_entry(current, line, spec.dag_id)
    if updated != current:
        backend.write(updated)
        changed = True
    return Installed(line, changed, spec.settings_file, report)


def remove(dag_id: str, backend: CrontabBackend) -> tuple[int, list[Path]]:
    """Remove pipekit's line(s) for ``dag_id`` and the settings files they ran with: (lines, files removed).

    Status and log files are kept: they are the history.
    """
    current = backend.read()
    found = entries(current, dag_id)
    if found:
        backend.write(without_entry(current, dag_id))
    deleted: list[Path] = []
    for line in found:
        path = settings_file_of(line)
        if path and Path(path).is_file():
            with contextlib.suppress(ConfigError):
                load_settings(path)  # only ever delete a file pipekit wrote
                Path(path).unlink()
                deleted.append(Path(path))
    return len(found), deleted


def show(dag_id: str, backend: CrontabBackend) -> list[str]:
    """pipekit's installed line(s) for ``dag_id``."""
    return entries(backend.read(), dag_id)


def installed_settings(line: str) -> dict[str, Any] | None:
    """The settings file an installed line runs with, or None if it is gone or not pipekit's."""
    path = settings_file_of(line)
    if not path:
        return None
    try:
        return load_settings(path)
    except ConfigError:
        return None
