"""The crontab line: valid cron, same schedule as the DAG, flock, idempotent install/remove on a temp file."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from croniter import croniter
from typer.testing import CliRunner

from pipekit.airflow_cron import (
    CommandCrontab,
    CronSpec,
    FileCrontab,
    build_cron_line,
    customer_schedule,
    install,
    normalize_schedule,
    remove,
    show,
    split_cron_line,
)
from pipekit.cli import app
from pipekit.errors import ConfigError, StorageError

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "adapters" / "airflow" / "dags" / "customer_pipeline.py"


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


@pytest.mark.airflow
@pytest.mark.parametrize("env_value", [None, "*/15 * * * *", "30 2 * * 1-5"])
def test_dry_run_line_is_valid_cron_and_matches_the_dag_schedule(env_value: str | None, monkeypatch, tmp_path):
    if env_value is None:
        monkeypatch.delenv("PIPEKIT_CUSTOMER_SCHEDULE", raising=False)
    else:
        monkeypatch.setenv("PIPEKIT_CUSTOMER_SCHEDULE", env_value)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "af home"))
    result = CliRunner().invoke(app, ["airflow", "cron", "install", "--dry-run"])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert not (tmp_path / "af home").exists(), "--dry-run must not create anything"
    schedule, command = split_cron_line(line)
    assert croniter.is_valid(schedule)
    dag_schedule = _dag_schedule(env_value)
    assert croniter.is_valid(dag_schedule)
    # Same expression, and the same next 24 fire times, as the DAG's schedule.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    a, b = croniter(schedule, start), croniter(dag_schedule, start)
    assert [a.get_next(datetime) for _ in range(24)] == [b.get_next(datetime) for _ in range(24)]
    argv = shlex.split(command.split(" >> ")[0])
    assert argv[0].startswith("AIRFLOW_HOME=") and argv[0].endswith("af home")
    assert argv[1] == "PIPEKIT_CUSTOMER_WAIT_SECONDS=0"
    assert argv[2:4] == ["flock", "-n"]
    assert argv[-3:] == ["dags", "test", "customer_pipeline"]


def test_percent_is_escaped_for_cron_and_quoting_survives_the_shell():
    line = build_cron_line(CronSpec(conf='{"landing_dir": "/data/50% off"}', airflow_home="/srv/air flow"))
    _, command = split_cron_line(line)
    assert "%" not in command.replace(r"\%", "")
    # cron turns "\%" back into "%" before handing the command to /bin/sh.
    argv = shlex.split(command.replace(r"\%", "%").split(" # pipekit:")[0])
    assert argv[0] == "AIRFLOW_HOME=/srv/air flow"
    assert json.loads(argv[argv.index("--conf") + 1]) == {"landing_dir": "/data/50% off"}


def test_nicknames_expand_and_bad_schedules_are_config_errors():
    assert normalize_schedule("@hourly") == "0 * * * *"
    assert normalize_schedule("  0   *  * * * ") == "0 * * * *"
    for bad in ("61 * * * *", "every hour", "* * * *", "@reboot"):
        with pytest.raises(ConfigError):
            normalize_schedule(bad)
    with pytest.raises(ConfigError):
        build_cron_line(CronSpec(dag_id="bad id; rm -rf /"))


def test_default_schedule_is_hourly_and_env_overrides():
    assert customer_schedule({}) == "0 * * * *"
    assert customer_schedule({"PIPEKIT_CUSTOMER_SCHEDULE": "5 4 * * *"}) == "5 4 * * *"


def test_install_is_idempotent_keeps_other_lines_and_remove_cleans_up(tmp_path: Path):
    crontab = FileCrontab(tmp_path / "crontab")
    crontab.write("MAILTO=ops@example.com\n15 3 * * * /usr/bin/backup.sh\n")
    spec = CronSpec(schedule="*/10 * * * *", lock_file=str(tmp_path / "locks" / "x.lock"),
                    log_file=str(tmp_path / "logs" / "x.log"))
    line, changed = install(spec, crontab)
    assert changed and (tmp_path / "locks").is_dir() and (tmp_path / "logs").is_dir()
    assert install(spec, crontab) == (line, False)
    assert show("customer_pipeline", crontab) == [line]
    # Replacing the schedule replaces the line rather than adding a second one.
    line2, changed = install(CronSpec(schedule="0 6 * * *"), crontab)
    assert changed and show("customer_pipeline", crontab) == [line2]
    text = crontab.read()
    assert text.startswith("MAILTO=ops@example.com\n15 3 * * * /usr/bin/backup.sh\n")
    assert remove("customer_pipeline", crontab) == 1
    assert crontab.read() == "MAILTO=ops@example.com\n15 3 * * * /usr/bin/backup.sh\n"
    assert remove("customer_pipeline", crontab) == 0


def test_command_backend_uses_an_injected_crontab_command(tmp_path: Path):
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
    line, changed = install(CronSpec(), backend)
    assert changed and store.read_text() == line + "\n"
    runner = CliRunner()
    shown = runner.invoke(app, ["airflow", "cron", "show", "--crontab-cmd", str(fake), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["installed"] == [line]
    removed = runner.invoke(app, ["airflow", "cron", "remove", "--crontab-cmd", str(fake)])
    assert removed.exit_code == 0 and "removed 1" in removed.output
    assert store.read_text() == ""


def test_missing_crontab_command_is_a_clear_error(tmp_path: Path):
    with pytest.raises(StorageError, match="not installed"):
        CommandCrontab((str(tmp_path / "no-such-crontab"),)).read()
    result = CliRunner().invoke(app, ["airflow", "cron", "show", "--crontab-cmd", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not installed" in " ".join(result.output.split())


def test_cli_install_into_a_file(tmp_path: Path):
    target = tmp_path / "cron.txt"
    args = ["airflow", "cron", "install", "--crontab-file", str(target), "--schedule", "@daily",
            "--airflow-home", str(tmp_path / "home")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and "installed" in first.output
    again = CliRunner().invoke(app, args)
    assert "already installed" in again.output
    (line,) = target.read_text().splitlines()
    assert line.startswith("0 0 * * * ") and croniter.is_valid(split_cron_line(line)[0])
    assert (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=1)).hour == 0


def test_unknown_mode_is_a_config_error_for_every_command(tmp_path) -> None:
    from typer.testing import CliRunner

    from pipekit.cli import app

    runner = CliRunner()
    for command in (["install", "--dry-run"], ["show"]):
        res = runner.invoke(app, ["airflow", "cron", *command, "--mode", "later",
                                  "--crontab-file", str(tmp_path / "crontab")])
        assert res.exit_code == 2, res.output
        assert "cron mode 'later' is not known" in res.output
