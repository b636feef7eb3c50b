"""Run an Airflow DAG from cron, without a scheduler, in cron's own nearly empty environment.

cron starts a job with ``HOME``, ``LOGNAME``, ``SHELL=/bin/sh``, ``PATH=/usr/bin:/bin`` and cwd ``$HOME``: none
of the shell's exports (``AIRFLOW_HOME``, the DAGs folder, the job's settings) survive. So:

* **install** (``install``) records everything a run needs in a settings file,
  ``$AIRFLOW_HOME/pipekit-<dag>.cron.json`` (mode 0600): the Airflow config in effect (``AIRFLOW_HOME``, every
  ``AIRFLOW__*``), the job's settings (``PIPEKIT_CUSTOMER_*``, ...), a PATH with this venv's ``bin`` first and
  the airflow command. It then proves the line: the line's own command looks the DAG up in cron's
  environment (those four variables only, ``/bin/sh -c``, cwd ``/``), and install refuses when the metadata
  DB is not migrated or the DAG is not found. Only then is the crontab line written::

      0 * * * * /srv/pipekit/.venv/bin/pipekit airflow cron run /home/me/airflow/pipekit-customer_pipeline.cron.json >> /home/me/airflow/logs/pipekit-customer_pipeline.cron.log 2>&1 # pipekit:customer_pipeline

* **run** (``run_job``: ``pipekit airflow cron run FILE``, what the line calls) takes a non-blocking flock
  (a run still going makes the next one exit instead of overlapping), runs ``airflow dags test`` with the
  file's environment only, appends the output to the log and writes ``pipekit-<dag>.cron-status.json``
  (start, end, exit code, log path, last lines) whether the run succeeds or fails.

The line, the settings and the crontab text are built by pure functions (``_spec``, ``_crontab``); the
crontab is read and written through a small backend (the ``crontab`` command, or a plain file for
``/etc/cron.d``-style deployments and tests), so nothing here touches a real crontab unless asked.
"""

from __future__ import annotations

from pipekit.airflow_cron._crontab import (
    DEFAULT_SCHEDULE,
    SCHEDULE_ENV,
    CommandCrontab,
    CrontabBackend,
    FileCrontab,
    as_cron_runs,
    customer_schedule,
    entries,
    marker,
    normalize_schedule,
    settings_file_of,
    split_cron_line,
    with_entry,
    without_entry,
)
from pipekit.airflow_cron._install import Installed, install, installed_settings, remove, show, verify
from pipekit.airflow_cron._run import check_job, probe_airflow, read_status, run_job
from pipekit.airflow_cron._spec import (
    CRON_PATH,
    CUSTOMER_DAG_ID,
    CronSpec,
    Difference,
    build_cron_line,
    build_settings,
    cron_env,
    differences,
    load_settings,
    mask,
    run_command,
    run_environment,
    status_file_for,
    write_settings,
)

__all__ = [
    "CRON_PATH",
    "CUSTOMER_DAG_ID",
    "DEFAULT_SCHEDULE",
    "SCHEDULE_ENV",
    "CommandCrontab",
    "CronSpec",
    "CrontabBackend",
    "Difference",
    "FileCrontab",
    "Installed",
    "as_cron_runs",
    "build_cron_line",
    "build_settings",
    "check_job",
    "cron_env",
    "customer_schedule",
    "differences",
    "entries",
    "install",
    "installed_settings",
    "load_settings",
    "marker",
    "mask",
    "normalize_schedule",
    "probe_airflow",
    "read_status",
    "remove",
    "run_command",
    "run_environment",
    "run_job",
    "settings_file_of",
    "show",
    "split_cron_line",
    "status_file_for",
    "verify",
    "with_entry",
    "without_entry",
    "write_settings",
]
