"""Cron as users run it: `pipekit airflow cron install` with the documented exports, the line read back from a real
crontab and executed exactly as cron executes it (only HOME, LOGNAME, SHELL=/bin/sh, PATH=/usr/bin:/bin; /bin/sh -c;
cwd /), a real Airflow run and its status entry; and install refusing when the DAG or the DB is not there."""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipekit.io.ingest import Manifest

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "adapters" / "airflow" / "dags" / "customer_pipeline.py"
SCRIPTS = REPO / "adapters" / "airflow" / "scripts"
PIPEKIT = Path(sys.executable).absolute().with_name("pipekit")
MARKER = "# pipekit:customer_pipeline"
#: February 31st never comes: a cron daemon running on this machine never fires the test's line by itself.
NEVER = "0 0 31 2 *"
#: One test at a time on this machine edits the user's real crontab (other sessions may run the suite too).
CRONTAB_LOCK = Path("/tmp/pipekit-tests-real-crontab.lock")


def _cron_env() -> dict[str, str]:
    """Exactly what cron gives a job of this user."""
    me = pwd.getpwuid(os.getuid())
    return {"HOME": me.pw_dir, "LOGNAME": me.pw_name, "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}


def _pipekit(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PIPEKIT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def real_crontab() -> Iterator[str]:
    """This user's real crontab (its text is yielded), saved before the test and put back after it."""
    if shutil.which("crontab") is None:
        pytest.skip("needs crontab(1): apt-get install -y cron (.ci/run installs it when missing)")
    CRONTAB_LOCK.touch(exist_ok=True)
    with open(CRONTAB_LOCK) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
        if saved.returncode != 0 and "no crontab" not in saved.stderr.lower():
            pytest.skip(f"cannot read this user's crontab: {saved.stderr.strip()}")
        try:
            yield saved.stdout if saved.returncode == 0 else ""
        finally:
            if saved.returncode == 0:
                subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True, capture_output=True)
            else:
                subprocess.run(["crontab", "-r"], capture_output=True)


def _documented_env(home: Any, base: Path) -> dict[str, str]:
    """The docs' exports (AIRFLOW_HOME, DAGs folder, base folder) on top of the ``airflow_home`` fixture's environment."""
    home.extra_env.update({
        "PIPEKIT_CUSTOMER_BASE_DIR": str(base),
        "PIPEKIT_SCRIPTS_DIR": str(SCRIPTS),  # the DAG is copied away from ../scripts
        "PIPEKIT_CUSTOMER_NOW": "2026-06-15T12:00:00Z",  # the future-timestamp rule, whatever today is
    })
    return home.env


def test_installed_line_runs_in_crons_environment_and_records_its_status(airflow_home, real_crontab, tmp_path):
    from pipekit.sample import write_customers_csv

    airflow_home.add_dag(DAG_FILE)
    base = tmp_path / "customers"
    landing = base / "landing" / "customers.csv"
    landing.parent.mkdir(parents=True)
    write_customers_csv(landing, 200, seed=3)
    env = _documented_env(airflow_home, base)

    installed = _pipekit(["airflow", "cron", "install", "--schedule", NEVER], env, tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "checked as cron runs it: DB migrated" in installed.stdout
    assert f"runs pick up files from {landing.parent}\n" in installed.stdout

    # Read the line back from the real crontab and run its command the way cron does.
    crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=True).stdout
    (line,) = [ln for ln in crontab.splitlines() if ln.rstrip().endswith(MARKER)]
    kept = [ln for ln in real_crontab.splitlines() if not ln.rstrip().endswith(MARKER)]
    assert [ln for ln in crontab.splitlines() if not ln.rstrip().endswith(MARKER)] == kept, "other lines are kept"
    fields = line.split(None, 5)
    assert " ".join(fields[:5]) == NEVER
    command = fields[5]
    assert "%" not in command, "cron would cut the command at a %"
    started = time.monotonic()
    run = subprocess.run(["/bin/sh", "-c", command], env=_cron_env(), cwd="/", capture_output=True, text=True,
                         timeout=900)
    seconds = time.monotonic() - started
    status_file = airflow_home.path / "pipekit-customer_pipeline.cron-status.json"
    log_file = airflow_home.path / "logs" / "pipekit-customer_pipeline.cron.log"
    log = log_file.read_text() if log_file.exists() else run.stdout + run.stderr
    assert run.returncode == 0, f"cron run failed after {seconds:.0f} s:\n{log[-6000:]}"
    print(f"cron run under env -i: {seconds:.1f} s")

    status = json.loads(status_file.read_text())
    assert (status["result"], status["exit_code"], status["dag_id"]) == ("success", 0, "customer_pipeline")
    assert status["log_file"] == str(log_file) and status["last_success"] == status["finished"]
    assert "customer_pipeline: success (exit 0)" in log and "DagRun Finished" in log
    # The job ran on the documented base folder: the drop is processed, backed up and removed.
    assert [e.event for e in Manifest(base / "manifest.jsonl").entries()] == ["ingested", "completed"]
    assert not landing.exists() and list((base / "backups").glob("customers.*Z.csv"))
    (work,) = (base / "output").iterdir()
    assert (work / "customers_run.json").is_file()

    shown = _pipekit(["airflow", "cron", "status", "--json"], env, tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["result"] == "success"
    up_to_date = _pipekit(["airflow", "cron", "show", "--schedule", NEVER, "--json"], env, tmp_path)
    assert json.loads(up_to_date.stdout)["up_to_date"] is True, up_to_date.stdout

    removed = _pipekit(["airflow", "cron", "remove", "--airflow-home", str(airflow_home.path)], env, tmp_path)
    assert removed.returncode == 0 and "removed 1 line(s)" in removed.stdout, removed.stdout + removed.stderr
    after = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    assert MARKER not in after


def test_install_refuses_when_the_dag_is_not_found(airflow_home, tmp_path):
    # A migrated DB, but the DAGs folder cron would use does not hold the DAG (the "could not be found").
    env = _documented_env(airflow_home, tmp_path / "customers")
    target = tmp_path / "crontab"
    done = _pipekit(["airflow", "cron", "install", "--crontab-file", str(target)], env, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert "refusing to install: in cron's environment (env -i, /bin/sh, cwd /)" in message
    assert f"DAG 'customer_pipeline' is not found in the DAGs folder {airflow_home.dags_folder}" in message
    assert "Export AIRFLOW__CORE__DAGS_FOLDER=" in message
    assert not target.exists() and not (airflow_home.path / "pipekit-customer_pipeline.cron.json").exists()


def test_install_refuses_when_the_db_is_not_migrated(airflow_home, tmp_path):
    airflow_home.add_dag(DAG_FILE)
    (airflow_home.path / "airflow.db").unlink()  # as if `airflow db migrate` never ran in this home
    env = _documented_env(airflow_home, tmp_path / "customers")
    target = tmp_path / "crontab"
    done = _pipekit(["airflow", "cron", "install", "--crontab-file", str(target)], env, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert f"the Airflow metadata DB (sqlite:///{airflow_home.path}/airflow.db) is not migrated" in message
    assert f"Run `AIRFLOW_HOME={airflow_home.path} {PIPEKIT.with_name('airflow')} db migrate`" in message
    assert not target.exists() and not (airflow_home.path / "pipekit-customer_pipeline.cron.json").exists()
