"""The cron line and its settings file, without running Airflow: valid cron, the DAG's schedule, what is carried
into cron's empty environment, idempotent install/remove, show's differences, and the run wrapper (lock,
log, status) driven by a stand-in airflow. The real runs are in test_cron_real.py."""

from __future__ import annotations

import fcntl
import io
import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from croniter import croniter
from typer.testing import CliRunner

from pipekit.airflow_cron import (
    CommandCrontab,
    CronSpec,
    FileCrontab,
    as_cron_runs,
    build_cron_line,
    build_settings,
    customer_schedule,
    differences,
    install,
    load_settings,
    mask,
    normalize_schedule,
    read_status,
    remove,
    run_environment,
    run_job,
    settings_file_of,
    show,
    split_cron_line,
    verify,
    write_settings,
)
from pipekit.cli import app
from pipekit.errors import ConfigError, StorageError

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "adapters" / "airflow" / "dags" / "customer_pipeline.py"
VENV_BIN = str(Path(sys.executable).absolute().parent)


def _dag_schedule(env_value: str | None) -> str:
    """The schedule the DAG file itself computes, parsed in a fresh interpreter with the given env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPEKIT_")}
    if env_value is not None:
        env["PIPEKIT_CUSTOMER_SCHEDULE"] = env_value
    code = (
        "import importlib.util, json, sys;"
        f"spec = importlib.util.spec_from_file_location('customer_dag', {str(DAG_FILE)!r});"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "print(json.dumps(m.SCHEDULE))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _words(line: str) -> list[str]:
    """The argv /bin/sh sees for a crontab line's command (cron's % rule applied, the marker comment dropped)."""
    return shlex.split(as_cron_runs(split_cron_line(line)[1]), comments=True)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No AIRFLOW*/PIPEKIT_* from the developer's shell; AIRFLOW_HOME in tmp (never ~/airflow)."""
    for name in list(os.environ):
        if name.startswith(("AIRFLOW", "PIPEKIT_")):
            monkeypatch.delenv(name)
    home = tmp_path / "af home"
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    return home


@pytest.mark.airflow
@pytest.mark.parametrize("env_value", [None, "*/15 * * * *", "30 2 * * 1-5"])
def test_dry_run_line_is_valid_cron_and_matches_the_dag_schedule(env_value: str | None, monkeypatch, clean_env):
    if env_value is not None:
        monkeypatch.setenv("PIPEKIT_CUSTOMER_SCHEDULE", env_value)
    result = CliRunner().invoke(app, ["airflow", "cron", "install", "--dry-run"])
    assert result.exit_code == 0, result.output
    line = result.stdout.splitlines()[0]
    assert not clean_env.exists(), "--dry-run must not create anything"
    schedule, _ = split_cron_line(line)
    assert croniter.is_valid(schedule)
    dag_schedule = _dag_schedule(env_value)
    assert croniter.is_valid(dag_schedule)
    # Same expression, and the same next 24 fire times, as the DAG's schedule.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    a, b = croniter(schedule, start), croniter(dag_schedule, start)
    assert [a.get_next(datetime) for _ in range(24)] == [b.get_next(datetime) for _ in range(24)]
    # The line runs this venv's pipekit by absolute path (cron's PATH is /usr/bin:/bin) on the settings file.
    words = _words(line)
    assert words[0] == str(Path(VENV_BIN) / "pipekit")
    assert words[1:5] == ["airflow", "cron", "run", str(clean_env / "pipekit-customer_pipeline.cron.json")]
    assert words[5:] == [">>", str(clean_env / "logs" / "pipekit-customer_pipeline.cron.log"), "2>&1"]


def test_percent_is_escaped_for_cron_and_quoting_survives_the_shell(tmp_path):
    home = "/srv/air flow/50% off"
    spec = CronSpec(airflow_home=home, conf='{"landing_dir": "/data/50% off"}')
    line = build_cron_line(spec)
    _, command = split_cron_line(line)
    assert "%" not in command.replace(r"\%", "")
    assert _words(line)[4] == f"{home}/pipekit-customer_pipeline.cron.json"
    assert settings_file_of(line) == f"{home}/pipekit-customer_pipeline.cron.json"
    # The conf lives in the settings file (JSON), not on the line.
    assert json.loads(build_settings(spec)["conf"]) == {"landing_dir": "/data/50% off"}
    assert as_cron_runs(r"echo 100\% done% and stdin") == "echo 100% done"


def test_nicknames_expand_and_bad_schedules_dag_ids_and_conf_are_config_errors():
    assert normalize_schedule("@hourly") == "0 * * * *"
    assert normalize_schedule("  0   *  * * * ") == "0 * * * *"
    for bad in ("61 * * * *", "every hour", "* * * *", "@reboot"):
        with pytest.raises(ConfigError):
            normalize_schedule(bad)
    with pytest.raises(ConfigError):
        build_cron_line(CronSpec(airflow_home="/a", dag_id="bad id; rm -rf /"))
    for conf in ("{not json", "[1, 2]"):
        with pytest.raises(ConfigError, match="not a JSON object"):
            build_settings(CronSpec(airflow_home="/a", conf=conf))


def test_default_schedule_is_hourly_and_env_overrides():
    assert customer_schedule({}) == "0 * * * *"
    assert customer_schedule({"PIPEKIT_CUSTOMER_SCHEDULE": "5 4 * * *"}) == "5 4 * * *"


def test_run_environment_carries_airflow_config_and_job_settings_only():
    shell = {
        "AIRFLOW_HOME": "/ignored/the/argument/wins",
        "AIRFLOW__CORE__DAGS_FOLDER": "adapters/airflow/dags",  # relative: meant from the shell's cwd
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://u:pw@db/airflow",
        "PIPEKIT_CUSTOMER_BASE_DIR": "~/customers",
        "PIPEKIT_CUSTOMER_NOW": "2026-01-01T00:00:00Z",
        "PIPEKIT_CUSTOMER_WAIT_SECONDS": "3300",
        "AIRFLOW_VAR_PIPEKIT_CUSTOMER_LANDING_DIR": "/mnt/in",
        "PIPEKIT_SCRIPTS_DIR": "/srv/scripts",
        "PIPEKIT_MASK_KEY": "s3cret",
        "AWS_SECRET_ACCESS_KEY": "never", "AWS_PROFILE": "prod", "HOME": "/home/me", "PATH": "/opt/bin:/usr/bin",
        "PIPEKIT_TWIN_DIR": "/tmp/twin", "VIRTUAL_ENV": "/x",
    }
    env = run_environment(shell, airflow_home="/home/me/airflow", venv_bin="/srv/venv/bin", cwd="/src/pipekit")
    assert env == {
        "AIRFLOW_HOME": "/home/me/airflow",
        "AIRFLOW_VAR_PIPEKIT_CUSTOMER_LANDING_DIR": "/mnt/in",
        "AIRFLOW__CORE__DAGS_FOLDER": "/src/pipekit/adapters/airflow/dags",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://u:pw@db/airflow",
        "PATH": "/srv/venv/bin:/usr/local/bin:/usr/bin:/bin",
        "PIPEKIT_CUSTOMER_BASE_DIR": "~/customers",
        "PIPEKIT_CUSTOMER_NOW": "2026-01-01T00:00:00Z",
        "PIPEKIT_CUSTOMER_WAIT_SECONDS": "3300",  # a PIPEKIT_CUSTOMER_* setting: carried as it is
        "PIPEKIT_MASK_KEY": "s3cret",
        "PIPEKIT_SCRIPTS_DIR": "/srv/scripts",
    }
    assert mask("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]) == "postgresql://u:***@db/airflow"
    assert mask("PIPEKIT_MASK_KEY", "s3cret") == "***" and mask("AIRFLOW__CORE__FERNET_KEY", "k") == "***"
    assert mask("PIPEKIT_CUSTOMER_BASE_DIR", "/data") == "/data"


def _spec(tmp_path: Path, **changes) -> CronSpec:
    values = {"airflow_home": str(tmp_path / "home"), "schedule": "*/10 * * * *", "pipekit_bin": "/v/bin/pipekit",
              "airflow_bin": "/v/bin/airflow", "env": {"AIRFLOW_HOME": str(tmp_path / "home"), "PATH": "/v/bin"}}
    return CronSpec(**{**values, **changes})


def test_install_is_idempotent_keeps_other_lines_and_remove_cleans_up(tmp_path: Path):
    crontab = FileCrontab(tmp_path / "crontab")
    crontab.write("MAILTO=ops@example.com\n15 3 * * * /usr/bin/backup.sh\n")
    spec = _spec(tmp_path, lock_file=str(tmp_path / "locks" / "x.lock"), log_file=str(tmp_path / "logs" / "x.log"))
    done = install(spec, crontab, check=False)
    assert done.changed and (tmp_path / "locks").is_dir() and (tmp_path / "logs").is_dir()
    settings = spec.settings_file
    assert load_settings(settings) == build_settings(spec)
    assert settings.stat().st_mode & 0o777 == 0o600, "it may hold a DB password"
    again = install(spec, crontab, check=False)
    assert (again.line, again.changed) == (done.line, False)
    assert show("customer_pipeline", crontab) == [done.line]
    # A changed setting rewrites the settings file (same line): still a change.
    assert install(_spec(tmp_path, lock_file=spec.lock_file, log_file=spec.log_file,
                         env={**spec.env, "PIPEKIT_CUSTOMER_BASE_DIR": "/data"}), crontab, check=False).changed
    # Replacing the schedule replaces the line rather than adding a second one.
    other = install(_spec(tmp_path, schedule="0 6 * * *"), crontab, check=False)
    assert other.changed and show("customer_pipeline", crontab) == [other.line]
    assert crontab.read().startswith("MAILTO=ops@example.com\n15 3 * * * /usr/bin/backup.sh\n")
    status = spec.status_file
    status.write_text("{}")
    assert remove("customer_pipeline", crontab) == (1, [settings])
    assert crontab.read() == "MAILTO=ops@example.com\n15 3 * * * /usr/bin/backup.sh\n"
    assert not settings.exists() and status.exists(), "the status is history: kept"
    assert remove("customer_pipeline", crontab) == (0, [])


def test_command_backend_uses_an_injected_crontab_command(tmp_path: Path, clean_env):
    store = tmp_path / "store"
    fake = tmp_path / "fake-crontab"
    # A stand-in for crontab(1) backed by a file: `-l` prints it (or fails like cron), `-` replaces it.
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'store="{store}"\n'
        'if [[ "$1" == "-l" ]]; then [[ -f "$store" ]] && cat "$store" || { echo "no crontab for $USER" >&2; exit 1; }\n'
        'elif [[ "$1" == "-" ]]; then cat > "$store"; else exit 2; fi\n'
    )
    fake.chmod(0o755)
    backend = CommandCrontab((str(fake),))
    assert backend.read() == ""
    spec = CronSpec.for_customer_dag()
    done = install(spec, backend, check=False)
    assert done.changed and store.read_text() == done.line + "\n"
    runner = CliRunner()
    shown = runner.invoke(app, ["airflow", "cron", "show", "--crontab-cmd", str(fake), "--json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["installed"] == [done.line] and report["up_to_date"] is True and report["differences"] == []
    removed = runner.invoke(app, ["airflow", "cron", "remove", "--crontab-cmd", str(fake)])
    assert removed.exit_code == 0 and "removed 1" in removed.output
    assert store.read_text() == "" and not spec.settings_file.exists()


def test_missing_crontab_command_is_a_clear_error(tmp_path: Path, clean_env):
    with pytest.raises(StorageError, match="not installed"):
        CommandCrontab((str(tmp_path / "no-such-crontab"),)).read()
    result = CliRunner().invoke(app, ["airflow", "cron", "show", "--crontab-cmd", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not installed" in " ".join(result.output.split())


def test_cli_install_into_a_file(tmp_path: Path, clean_env):
    target = tmp_path / "cron.txt"
    args = ["airflow", "cron", "install", "--crontab-file", str(target), "--schedule", "@daily",
            "--airflow-home", str(tmp_path / "home"), "--no-check"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and "installed" in first.output, first.output
    assert "not checked (--no-check)" in first.output
    again = CliRunner().invoke(app, args)
    assert "already installed" in again.output
    (line,) = target.read_text().splitlines()
    assert line.startswith("0 0 * * * ") and croniter.is_valid(split_cron_line(line)[0])
    assert settings_file_of(line) == str(tmp_path / "home" / "pipekit-customer_pipeline.cron.json")


def test_unknown_mode_is_a_config_error_for_every_command(tmp_path, clean_env) -> None:
    runner = CliRunner()
    for command in (["install", "--dry-run"], ["install"], ["show"], ["remove"]):
        res = runner.invoke(app, ["airflow", "cron", *command, "--mode", "later",
                                  "--crontab-file", str(tmp_path / "crontab")])
        assert res.exit_code == 2, res.output
        assert "cron mode 'later' is not known" in res.output
    assert not (tmp_path / "crontab").exists()


def test_show_names_each_difference_and_masks_secrets(tmp_path: Path, clean_env, monkeypatch):
    target = tmp_path / "cron.txt"
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://air:old-pw@db/airflow")
    monkeypatch.setenv("PIPEKIT_CUSTOMER_BASE_DIR", "/data/customers")
    installed = CliRunner().invoke(app, ["airflow", "cron", "install", "--crontab-file", str(target),
                                         "--schedule", "* * * * *", "--no-check"])
    assert installed.exit_code == 0, installed.output
    assert "differs from the DAG's own (0 * * * *" in installed.output
    # The next shell: no --schedule (so the DAG's), another DB password, no base dir.
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://air:new-pw@db/airflow")
    monkeypatch.delenv("PIPEKIT_CUSTOMER_BASE_DIR")
    shown = CliRunner().invoke(app, ["airflow", "cron", "show", "--crontab-file", str(target)])
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert ("schedule: installed '* * * * *', install would write '0 * * * *' "
            "(the DAG's schedule: $PIPEKIT_CUSTOMER_SCHEDULE, default hourly)") in text
    assert ("env AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: installed 'postgresql://air:***@db/airflow', "
            "install would write 'postgresql://air:***@db/airflow'") in text
    assert "env PIPEKIT_CUSTOMER_BASE_DIR: installed '/data/customers', install would write (not set" in text
    assert "old-pw" not in text and "new-pw" not in text
    as_json = json.loads(CliRunner().invoke(app, ["airflow", "cron", "show", "--crontab-file", str(target),
                                                  "--json"]).stdout)
    assert as_json["up_to_date"] is False
    assert {"what": "schedule", "installed": "* * * * *", "wanted": "0 * * * *"} in as_json["differences"]
    assert differences([], None, CronSpec(airflow_home="/h"))[0].what == "line"


def test_remove_takes_the_same_options_as_install(tmp_path: Path, clean_env):
    target = tmp_path / "cron.txt"
    options = ["--schedule", "*/5 * * * *", "--airflow-home", str(tmp_path / "home"), "--crontab-file", str(target),
               "--log-file", str(tmp_path / "x.log"), "--conf", '{"now": "2026-01-01T00:00:00Z"}']
    assert CliRunner().invoke(app, ["airflow", "cron", "install", *options, "--no-check"]).exit_code == 0
    dry = CliRunner().invoke(app, ["airflow", "cron", "remove", *options, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "*/5 * * * *" in dry.stdout and target.read_text().strip()
    done = CliRunner().invoke(app, ["airflow", "cron", "remove", *options])
    assert done.exit_code == 0, done.output
    assert "removed 1 line(s)" in done.output and "pipekit-customer_pipeline.cron.json" in done.output
    assert target.read_text() == "" and not (tmp_path / "home" / "pipekit-customer_pipeline.cron.json").exists()


def test_verify_refuses_a_line_whose_command_cannot_start_in_crons_environment(tmp_path: Path):
    spec = _spec(tmp_path, pipekit_bin=str(tmp_path / "gone" / "pipekit"))
    write_settings(spec.settings_file, build_settings(spec))
    with pytest.raises(ConfigError, match="does not start in cron's environment") as info:
        verify(spec)
    assert "cron's PATH is /usr/bin:/bin" in (info.value.hint or "")
    # install refuses the same way and changes nothing.
    crontab = FileCrontab(tmp_path / "crontab")
    spec.settings_file.unlink()
    with pytest.raises(ConfigError):
        install(spec, crontab)
    assert crontab.read() == "" and not spec.settings_file.exists()
    assert not list(spec.settings_file.parent.glob(".*check*")), "the candidate settings file is cleaned up"


# --- the run wrapper, with a stand-in for airflow -----------------------------------------------------

_FAKE_AIRFLOW = """#!/bin/sh
echo "fake airflow $*"
echo "cwd-home=$HOME base=$PIPEKIT_CUSTOMER_BASE_DIR aws=${AWS_SECRET_ACCESS_KEY-unset}"
if [ "${FAKE_EXIT:-0}" != 0 ]; then echo "ValueError: boom"; echo "DagRun failed"; fi
exit "${FAKE_EXIT:-0}"
"""


@pytest.fixture
def fake_job(tmp_path: Path, monkeypatch):
    """A settings file whose airflow is a shell stand-in; the caller's shell has an AWS secret that must not leak."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leaked")
    fake = tmp_path / "bin" / "airflow"
    fake.parent.mkdir()
    fake.write_text(_FAKE_AIRFLOW)
    fake.chmod(0o755)
    home = tmp_path / "home"

    def make(**env: str) -> CronSpec:
        spec = CronSpec(airflow_home=str(home), airflow_bin=str(fake), env={
            "AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin", "PIPEKIT_CUSTOMER_BASE_DIR": "/data/c",
            **env})
        write_settings(spec.settings_file, build_settings(spec))
        return spec

    return make


def test_run_records_success_and_failure_in_the_status_and_log(fake_job):
    spec = fake_job()
    out = io.BytesIO()
    assert run_job(spec.settings_file, stdout=out) == 0
    status = read_status(spec.status_file)
    assert status is not None
    assert (status["result"], status["exit_code"], status["dag_id"]) == ("success", 0, "customer_pipeline")
    assert status["log_file"] == spec.log_path and status["last_success"] == status["finished"]
    assert status["started"] <= status["finished"] and status["command"].endswith("dags test customer_pipeline")
    log = Path(spec.log_path).read_text()
    assert "fake airflow dags test customer_pipeline" in log and "customer_pipeline: success (exit 0)" in log
    # Only the settings file's environment reaches airflow: the caller's AWS secret does not.
    assert "base=/data/c aws=unset" in log
    assert out.getvalue().decode() in log, "by hand, the output also goes to the terminal"
    first_success = status["last_success"]

    failing = fake_job(FAKE_EXIT="3")
    assert run_job(failing.settings_file, stdout=io.BytesIO()) == 3
    status = read_status(failing.status_file)
    assert status is not None
    assert (status["result"], status["exit_code"], status["message"]) == ("failed", 3, "ValueError: boom")
    assert status["last_lines"][-1] == "DagRun failed" and status["last_success"] == first_success


def test_run_records_a_missing_settings_file_and_a_missing_airflow(fake_job, tmp_path: Path):
    gone = tmp_path / "home" / "pipekit-customer_pipeline.cron.json"
    assert run_job(gone, stdout=io.BytesIO()) == 2
    status = read_status(tmp_path / "home" / "pipekit-customer_pipeline.cron-status.json")
    assert status is not None and status["result"] == "failed" and "does not exist" in status["message"]

    spec = fake_job()
    settings = build_settings(spec)
    write_settings(spec.settings_file, {**settings, "airflow_bin": str(tmp_path / "no" / "airflow")})
    assert run_job(spec.settings_file, stdout=io.BytesIO()) == 127
    status = read_status(spec.status_file)
    assert status is not None and status["exit_code"] == 127 and "cannot start" in status["message"]


def test_a_run_that_finds_the_lock_taken_exits_and_leaves_the_status_alone(fake_job):
    spec = fake_job()
    spec.status_file.write_text(json.dumps({"result": "success", "started": "earlier"}))
    Path(spec.lock_path).parent.mkdir(parents=True, exist_ok=True)
    with open(spec.lock_path, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a long run (or `flock -n LOCK ...`) would
        assert run_job(spec.settings_file, stdout=io.BytesIO()) == 1
    assert json.loads(spec.status_file.read_text()) == {"result": "success", "started": "earlier"}
    assert "skipped, the previous run still holds" in Path(spec.log_path).read_text()
    assert run_job(spec.settings_file, stdout=io.BytesIO()) == 0, "lock released: the next run runs"


def test_status_command_shows_the_last_run_and_exits_nonzero_unless_it_succeeded(fake_job, tmp_path: Path, clean_env):
    home = tmp_path / "home"
    args = ["airflow", "cron", "status", "--airflow-home", str(home)]
    none = CliRunner().invoke(app, args)
    assert none.exit_code == 1 and "no cron run of customer_pipeline recorded yet" in none.output
    spec = fake_job(FAKE_EXIT="1")
    run_job(spec.settings_file, stdout=io.BytesIO())
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 1, failed.output
    assert "last cron run failed (exit 1)" in failed.stdout and f"log:          {spec.log_path}" in failed.stdout
    assert "message:      ValueError: boom" in failed.stdout and "last success: never" in failed.stdout
    spec = fake_job()
    run_job(spec.settings_file, stdout=io.BytesIO())
    ok = CliRunner().invoke(app, [*args, "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["result"] == "success"
    # A "running" status whose processes are gone was interrupted (killed, machine rebooted).
    dead = subprocess.Popen(["true"])
    dead.wait()
    status = json.loads(spec.status_file.read_text())
    spec.status_file.write_text(json.dumps({**status, "result": "running", "pid": dead.pid, "child_pid": None}))
    interrupted = CliRunner().invoke(app, args)
    assert interrupted.exit_code == 1 and "last cron run interrupted" in interrupted.stdout


def test_check_of_a_missing_settings_file_is_a_json_refusal(tmp_path: Path):
    result = CliRunner().invoke(app, ["airflow", "cron", "run", str(tmp_path / "gone.json"), "--check", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and "does not exist" in report["problems"][0]
