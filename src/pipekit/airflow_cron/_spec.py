"""What ``install`` writes: the run's environment, the settings file, the crontab line; and how they drifted."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipekit.airflow_cron._crontab import (
    DEFAULT_SCHEDULE,
    cron_quote,
    customer_schedule,
    marker,
    normalize_schedule,
    split_cron_line,
)
from pipekit.errors import ConfigError
from pipekit.io.atomic import atomic_path

CUSTOMER_DAG_ID = "customer_pipeline"
#: The PATH cron gives a job (Debian's cron; most others agree).
CRON_PATH = "/usr/bin:/bin"
SETTINGS_FORMAT = "pipekit-cron/1"

#: Carried from the installing shell into every run: Airflow's config, the customer job's settings (also as
#: Airflow Variables), where the DAG finds its shell script, the masking key. Never AWS credentials.
_CARRIED_PREFIXES = ("AIRFLOW__", "PIPEKIT_CUSTOMER_", "AIRFLOW_VAR_PIPEKIT_CUSTOMER_")
_CARRIED_NAMES = ("PIPEKIT_SCRIPTS_DIR", "PIPEKIT_FLAG_SCRIPT", "PIPEKIT_MASK_KEY")
#: Settings that are paths: a relative one meant "from the installing shell's cwd", which cron does not share.
_PATH_SUFFIXES = ("_DIR", "_FOLDER", "_FILE", "_SCRIPT", "_MANIFEST")
_SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def cron_env(user: str | None = None) -> dict[str, str]:
    """The environment cron gives ``user``'s jobs (default: this process's user): HOME, LOGNAME, SHELL, PATH."""
    entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
    return {"HOME": entry.pw_dir, "LOGNAME": entry.pw_name, "SHELL": "/bin/sh", "PATH": CRON_PATH}


def mask(name: str, value: str | None) -> str | None:
    """``value`` fit to print: a secret as ``***``, the password in a URL (a DB connection) as ``***``."""
    if value is None:
        return None
    if _SECRET.search(name):
        return "***"
    return _URL_PASSWORD.sub(r"\1***@", value)


def run_environment(
    env: Mapping[str, str], *, airflow_home: str, venv_bin: str | None = None, cwd: str | None = None
) -> dict[str, str]:
    """The whole environment of every cron run, from what ``env`` (the installing shell) sets.

    ``AIRFLOW_HOME``; every ``AIRFLOW__*`` (Airflow's config: DAGs folder, DB connection, ...);
    ``PIPEKIT_CUSTOMER_*`` and ``AIRFLOW_VAR_PIPEKIT_CUSTOMER_*`` (the job's settings); ``PIPEKIT_SCRIPTS_DIR``,
    ``PIPEKIT_FLAG_SCRIPT``, ``PIPEKIT_MASK_KEY``; ``PATH`` with the venv's ``bin`` first. Nothing else. Relative paths are made absolute against ``cwd``.
    """
    cwd = cwd or os.getcwd()
    carried: dict[str, str] = {}
    for name, value in env.items():
        if name.startswith(_CARRIED_PREFIXES) or name in _CARRIED_NAMES:
            if name.endswith(_PATH_SUFFIXES) and value and not value.startswith(("/", "~")) and "://" not in value:
                value = os.path.normpath(os.path.join(cwd, value))
            carried[name] = value
    carried["AIRFLOW_HOME"] = airflow_home
    venv_bin = venv_bin or str(Path(sys.executable).absolute().parent)
    # The venv first: the DAG's BashOperator runs `bash`, whose script runs `python3`; both must resolve.
    carried["PATH"] = f"{venv_bin}:/usr/local/bin:{CRON_PATH}"
    return dict(sorted(carried.items()))


def _venv_tool(name: str) -> str:
    local = Path(sys.executable).absolute().with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def status_file_for(settings_file: str | os.PathLike[str]) -> Path:
    """Where runs of ``settings_file`` record their outcome: ``<name>.cron.json`` -> ``<name>.cron-status.json``."""
    path = Path(settings_file)
    return path.with_name(f"{path.stem}-status.json")


@dataclass(frozen=True)
class CronSpec:
    """Everything that goes into one crontab line and its settings file."""

    airflow_home: str
    dag_id: str = CUSTOMER_DAG_ID
    schedule: str = DEFAULT_SCHEDULE
    pipekit_bin: str = "pipekit"
    airflow_bin: str = "airflow"
    lock_file: str | None = None
    log_file: str | None = None
    conf: str | None = None
    mode: Literal["test", "trigger"] = "test"
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def settings_file(self) -> Path:
        """``$AIRFLOW_HOME/pipekit-<dag>.cron.json``: what the line runs with."""
        return Path(self.airflow_home) / f"pipekit-{self.dag_id}.cron.json"

    @property
    def status_file(self) -> Path:
        """``$AIRFLOW_HOME/pipekit-<dag>.cron-status.json``: the last run's outcome."""
        return status_file_for(self.settings_file)

    @property
    def lock_path(self) -> str:
        """The flock lock file (default ``$AIRFLOW_HOME/pipekit-<dag>.lock``)."""
        return self.lock_file or str(Path(self.airflow_home) / f"pipekit-{self.dag_id}.lock")

    @property
    def log_path(self) -> str:
        """Where runs append their output (default ``$AIRFLOW_HOME/logs/pipekit-<dag>.cron.log``)."""
        return self.log_file or str(Path(self.airflow_home) / "logs" / f"pipekit-{self.dag_id}.cron.log")

    @classmethod
    def for_customer_dag(
        cls, *, airflow_home: str | None = None, env: Mapping[str, str] | None = None, **overrides: object
    ) -> CronSpec:
        """Defaults for the customer DAG from ``env`` (the installing shell): its schedule, this venv's tools."""
        env = os.environ if env is None else env
        home = os.path.abspath(os.path.expanduser(airflow_home or env.get("AIRFLOW_HOME") or "~/airflow"))
        values: dict[str, Any] = {"schedule": customer_schedule(env), "pipekit_bin": _venv_tool("pipekit"),
                                  "airflow_bin": _venv_tool("airflow")}
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("lock_file", "log_file", "airflow_bin"):
            if values.get(key) and (key != "airflow_bin" or os.sep in str(values[key])):
                values[key] = os.path.abspath(os.path.expanduser(str(values[key])))
        values["env"] = run_environment(env, airflow_home=home)
        return cls(airflow_home=home, **values)


def _validate(spec: CronSpec) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", spec.dag_id):
        raise ConfigError(f"dag id {spec.dag_id!r} has characters Airflow does not allow")
    if spec.mode not in ("test", "trigger"):
        raise ConfigError(f"cron mode {spec.mode!r} is not known", hint="use test (run in-process) or trigger")
    if spec.conf is not None:
        try:
            conf = json.loads(spec.conf)
        except ValueError:
            conf = None
        if not isinstance(conf, dict):
            raise ConfigError(f"--conf {spec.conf!r} is not a JSON object", hint='e.g. \'{"landing_dir": "/data/in"}\'')


def run_command(spec: CronSpec, settings_file: str | os.PathLike[str] | None = None) -> str:
    """The line's command without its log redirect: ``<venv>/bin/pipekit airflow cron run SETTINGS``."""
    settings = str(settings_file or spec.settings_file)
    return f"{cron_quote(spec.pipekit_bin)} airflow cron run {cron_quote(settings)}"


def build_cron_line(spec: CronSpec) -> str:
    """The crontab line: ``<schedule> <venv>/bin/pipekit airflow cron run SETTINGS >> LOG 2>&1 # pipekit:DAG``."""
    _validate(spec)
    schedule = normalize_schedule(spec.schedule)
    # The redirect also catches what happens before pipekit starts (a venv moved away: "not found").
    return f"{schedule} {run_command(spec)} >> {cron_quote(spec.log_path)} 2>&1 {marker(spec.dag_id)}"


def build_settings(spec: CronSpec) -> dict[str, Any]:
    """The settings file's content: what a run needs, its whole environment included."""
    _validate(spec)
    return {
        "format": SETTINGS_FORMAT,
        "dag_id": spec.dag_id,
        "mode": spec.mode,
        "airflow_bin": spec.airflow_bin,
        "conf": spec.conf,
        "lock_file": spec.lock_path,
        "log_file": spec.log_path,
        "env": dict(spec.env),
    }


def write_settings(path: str | os.PathLike[str], settings: Mapping[str, Any]) -> bool:
    """Write the settings file atomically, mode 0600 (it may hold a DB password); False if already so."""
    path = Path(path)
    text = json.dumps(settings, indent=2) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text and (path.stat().st_mode & 0o077) == 0:
        return False
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)
        tmp.write_text(text, encoding="utf-8")
    return True


def load_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings file ``install`` wrote; ConfigError (saying to install again) if missing or not one."""
    path = Path(path)
    again = "run `pipekit airflow cron install` again (it writes this file)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"cron settings file {path} does not exist", hint=again) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cron settings file {path} cannot be read: {exc}", hint=again) from exc
    keys = {"dag_id", "mode", "airflow_bin", "lock_file", "log_file", "env"}
    if not isinstance(data, dict) or data.get("format") != SETTINGS_FORMAT or not keys <= data.keys():
        raise ConfigError(f"{path} is not a pipekit cron settings file ({SETTINGS_FORMAT})", hint=again)
    return data


@dataclass(frozen=True)
class Difference:
    """One way the installed line or settings differ from what ``install`` would write now."""

    what: str
    installed: str | None
    wanted: str | None


def differences(
    installed: Sequence[str], installed_settings: Mapping[str, Any] | None, spec: CronSpec
) -> list[Difference]:
    """What ``install`` with ``spec`` would change: the line (schedule, command), each setting and variable.

    Secrets are masked. An empty list means up to date.
    """
    line = build_cron_line(spec)
    if not installed:
        return [Difference("line", None, line)]
    found: list[Difference] = []
    if len(installed) > 1:
        found.append(Difference("lines", f"{len(installed)} lines", "1 line"))
    schedule, command = split_cron_line(installed[-1])
    wanted_schedule, wanted_command = split_cron_line(line)
    if schedule != wanted_schedule:
        found.append(Difference("schedule", schedule, wanted_schedule))
    if command != wanted_command:
        found.append(Difference("command", command, wanted_command))
    wanted = build_settings(spec)
    if installed_settings is None:
        found.append(Difference("settings file", None, str(spec.settings_file)))
        return found
    for key in ("dag_id", "mode", "airflow_bin", "conf", "lock_file", "log_file"):
        if installed_settings.get(key) != wanted[key]:
            found.append(Difference(key, installed_settings.get(key), wanted[key]))
    old_env: Mapping[str, str] = installed_settings.get("env") or {}
    for name in sorted(set(old_env) | set(wanted["env"])):
        if old_env.get(name) != wanted["env"].get(name):
            found.append(Difference(f"env {name}", mask(name, old_env.get(name)), mask(name, wanted["env"].get(name))))
    return found
