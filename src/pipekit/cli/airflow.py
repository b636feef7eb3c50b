"""`pipekit airflow`: run the customer job without Airflow, and manage the cron line that runs the DAG."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from pipekit.cli._common import emit_json, err_console, escape, out_console, user_errors

airflow_app = typer.Typer(
    help="The customer-drop Airflow job: run it once in-process, or manage a cron entry that triggers the DAG.",
    no_args_is_help=True,
)
cron_app = typer.Typer(
    help=(
        "Run the customer DAG from cron without a scheduler: install (proven in cron's own environment), "
        "show (installed vs wanted), status (the last run), remove. Runs never overlap (flock)."
    ),
    no_args_is_help=True,
)
airflow_app.add_typer(cron_app, name="cron")

_CRON_EPILOG = (
    "Examples:\n\n"
    "  pipekit airflow cron install --dry-run\n\n"
    "  pipekit airflow cron install --schedule '*/15 * * * *' --airflow-home ~/airflow\n\n"
    "  pipekit airflow cron show\n\n"
    "  pipekit airflow cron status\n\n"
    "  pipekit airflow cron remove\n\n"
    "install records the environment in effect (AIRFLOW_HOME, AIRFLOW__*, PIPEKIT_CUSTOMER_*, the venv's PATH) in "
    "$AIRFLOW_HOME/pipekit-<dag>.cron.json, which every run uses instead of cron's empty one. "
    "--crontab-file PATH edits a file instead of the user's crontab (cron.d-style deployments, tests)."
)


def _backend(crontab_file: Path | None, crontab_cmd: str):
    from pipekit.airflow_cron import CommandCrontab, FileCrontab

    return FileCrontab(crontab_file) if crontab_file else CommandCrontab(tuple(crontab_cmd.split()))


def _spec(schedule, airflow_home, airflow_bin, lock_file, log_file, conf, mode, dag_id):
    from pipekit.airflow_cron import CronSpec

    return CronSpec.for_customer_dag(
        airflow_home=str(airflow_home) if airflow_home else None,
        schedule=schedule, airflow_bin=airflow_bin, lock_file=str(lock_file) if lock_file else None,
        log_file=str(log_file) if log_file else None, conf=conf, mode=mode, dag_id=dag_id,
    )


_SCHEDULE = typer.Option(None, "--schedule", help="Cron expression; default $PIPEKIT_CUSTOMER_SCHEDULE or hourly (the DAG's).")
_HOME = typer.Option(None, "--airflow-home", help="AIRFLOW_HOME for the job; default $AIRFLOW_HOME or ~/airflow.")
_BIN = typer.Option(None, "--airflow-bin", help="Path of the airflow executable; default the one in this venv.")
_LOCK = typer.Option(None, "--lock-file", help="flock lock file; default $AIRFLOW_HOME/pipekit-customer_pipeline.lock.")
_LOG = typer.Option(None, "--log-file", help="Where runs append their output; default $AIRFLOW_HOME/logs/pipekit-<dag>.cron.log.")
_CONF = typer.Option(None, "--conf", help='DAG run conf JSON, e.g. \'{"landing_dir": "/data/in"}\'.')
_MODE = typer.Option("test", "--mode", help="test: run the DAG in-process (no scheduler); trigger: queue a run for a scheduler.")
_DAG = typer.Option("customer_pipeline", "--dag-id", help="DAG to run.")
_FILE = typer.Option(None, "--crontab-file", help="Edit this file instead of the user's crontab.")
_CMD = typer.Option("crontab", "--crontab-cmd", help="crontab command to use (reads with -l, writes with -).")
_DRY = typer.Option(False, "--dry-run", help="Print what would change; change nothing.")


@cron_app.command("install", epilog=_CRON_EPILOG)
def cron_install(
    schedule: str = _SCHEDULE, airflow_home: Path = _HOME, airflow_bin: str = _BIN, lock_file: Path = _LOCK,
    log_file: Path = _LOG, conf: str = _CONF, mode: str = _MODE, dag_id: str = _DAG,
    crontab_file: Path = _FILE, crontab_cmd: str = _CMD, dry_run: bool = _DRY,
    no_check: bool = typer.Option(False, "--no-check", help="Do not prove the line in cron's environment first."),
) -> None:
    """Write the settings file and the crontab line (replacing an older one), after proving them as cron runs them."""
    from pipekit.airflow_cron import (
        CUSTOMER_DAG_ID,
        build_cron_line,
        build_settings,
        customer_schedule,
        install,
        mask,
        split_cron_line,
    )

    with user_errors():
        spec = _spec(schedule, airflow_home, airflow_bin, lock_file, log_file, conf, mode, dag_id)
        line = build_cron_line(spec)  # validates the spec (mode, dag id, schedule, conf) before anything changes
        if dry_run:
            typer.echo(line)
            typer.echo(f"settings file {spec.settings_file} (mode 0600) would hold:")
            for key, value in build_settings(spec).items():
                if key == "env":
                    for name, val in value.items():
                        typer.echo(f"  env {name}={mask(name, val)}")
                elif key != "format":
                    typer.echo(f"  {key}: {value}")
            return
        if not no_check:
            err_console.print("checking the line in cron's environment (env -i, /bin/sh, cwd /) ...", highlight=False)
        done = install(spec, _backend(crontab_file, crontab_cmd), check=not no_check)
    typer.echo(done.line)
    # Plain echo for paths: rich would wrap long ones mid-path on a terminal.
    if done.check:
        typer.echo(f"checked as cron runs it: DB migrated ({done.check['db']}); DAG {spec.dag_id} found in "
                   f"{done.check.get('dag_file') or done.check['dags_folder']}")
        landing = done.check.get("landing_dir")
        if landing:
            missing = "" if Path(landing).is_dir() else " (does not exist yet: runs find nothing until it does)"
            typer.echo(f"runs pick up files from {landing}{missing}")
    else:
        err_console.print("not checked (--no-check): a missing DAG or DB shows only in the status after a run",
                          style="yellow", highlight=False)
    dag_schedule = customer_schedule()
    if spec.dag_id == CUSTOMER_DAG_ID and split_cron_line(line)[0] != " ".join(dag_schedule.split()):
        typer.echo(f"note: the schedule differs from the DAG's own ({dag_schedule}: $PIPEKIT_CUSTOMER_SCHEDULE or hourly)")
    typer.echo(f"settings: {done.settings_file}")
    typer.echo(f"log: {spec.log_path}")
    typer.echo(f"last run: pipekit airflow cron status --airflow-home {spec.airflow_home}")
    out_console.print("installed" if done.changed else "already installed (unchanged)", style="green", highlight=False)


@cron_app.command("remove", epilog=_CRON_EPILOG)
def cron_remove(
    schedule: str = _SCHEDULE, airflow_home: Path = _HOME, airflow_bin: str = _BIN, lock_file: Path = _LOCK,
    log_file: Path = _LOG, conf: str = _CONF, mode: str = _MODE, dag_id: str = _DAG,
    crontab_file: Path = _FILE, crontab_cmd: str = _CMD, dry_run: bool = _DRY,
) -> None:
    """Remove pipekit's crontab line for the DAG and its settings file (other lines, status and log are kept).

    Takes the same options as install, so the install command line with `remove` works; only --dag-id and
    the crontab options matter.
    """
    from pipekit.airflow_cron import build_cron_line, remove, settings_file_of, show

    with user_errors():
        build_cron_line(_spec(schedule, airflow_home, airflow_bin, lock_file, log_file, conf, mode, dag_id))  # validates
        backend = _backend(crontab_file, crontab_cmd)
        if dry_run:
            for line in show(dag_id, backend):
                typer.echo(line)
                typer.echo(f"  settings file: {settings_file_of(line)}")
            return
        removed, deleted = remove(dag_id, backend)
    if not removed:
        out_console.print("nothing to remove", highlight=False)
        return
    out_console.print(f"removed {removed} line(s)", highlight=False)
    for path in deleted:
        typer.echo(f"deleted {path}")


@cron_app.command("show", epilog=_CRON_EPILOG)
def cron_show(
    schedule: str = _SCHEDULE, airflow_home: Path = _HOME, airflow_bin: str = _BIN, lock_file: Path = _LOCK,
    log_file: Path = _LOG, conf: str = _CONF, mode: str = _MODE, dag_id: str = _DAG,
    crontab_file: Path = _FILE, crontab_cmd: str = _CMD,
    as_json: bool = typer.Option(False, "--json", help="Print installed and proposed lines and differences as JSON."),
) -> None:
    """Show the installed line (if any), the line install would write, and every difference (schedule, settings)."""
    from dataclasses import asdict

    from pipekit.airflow_cron import build_cron_line, differences, installed_settings, settings_file_of, show

    with user_errors():
        spec = _spec(schedule, airflow_home, airflow_bin, lock_file, log_file, conf, mode, dag_id)
        proposed = build_cron_line(spec)
        installed = show(dag_id, _backend(crontab_file, crontab_cmd))
        settings = installed_settings(installed[-1]) if installed else None
        diffs = differences(installed, settings, spec)
    if as_json:
        emit_json({
            "installed": installed, "proposed": proposed, "up_to_date": not diffs,
            "settings_file": (settings_file_of(installed[-1]) if installed else None) or str(spec.settings_file),
            "differences": [asdict(d) for d in diffs],
        })
        return
    out_console.print("installed:", style="bold", highlight=False)
    for line in installed or ["(none)"]:
        typer.echo(f"  {line}")
    out_console.print("install would write:", style="bold", highlight=False)
    typer.echo(f"  {proposed}")
    if not diffs:
        out_console.print("up to date", style="green", highlight=False)
        return
    out_console.print("differences (install with these options would change them):", style="bold", highlight=False)
    for diff in diffs:
        note = ""
        if diff.what == "schedule" and schedule is None:
            note = " (the DAG's schedule: $PIPEKIT_CUSTOMER_SCHEDULE, default hourly)"
        wanted = _shown(diff.wanted, "(not set in this shell: install would drop it)")
        typer.echo(f"  {diff.what}: installed {_shown(diff.installed, '(not set)')}, install would write {wanted}{note}")


def _shown(value: str | None, missing: str) -> str:
    return missing if value is None else repr(value)


@cron_app.command("status", epilog=_CRON_EPILOG)
def cron_status(
    airflow_home: Path = _HOME, dag_id: str = _DAG,
    as_json: bool = typer.Option(False, "--json", help="Print the status file as JSON."),
) -> None:
    """The last cron run: when, result, exit code, log path (and its last lines if it failed). Exit 1 unless it succeeded."""
    from pipekit.airflow_cron import CronSpec, read_status

    with user_errors():
        path = CronSpec.for_customer_dag(airflow_home=str(airflow_home) if airflow_home else None, dag_id=dag_id).status_file
        status = read_status(path)
    if status is None:
        err_console.print(f"no cron run of {dag_id} recorded yet ({path} does not exist)", highlight=False)
        raise typer.Exit(1)
    code = 0 if status.get("result") in ("success", "running") else 1
    if as_json:
        emit_json({**status, "status_file": str(path)})
        raise typer.Exit(code)
    result = status.get("result")
    exit_text = "" if status.get("exit_code") is None else f" (exit {status['exit_code']})"
    out_console.print(f"{dag_id}: last cron run {result}{exit_text}", style="green" if code == 0 else "red",
                      highlight=False)
    typer.echo(f"  started:      {status.get('started')}")
    if status.get("finished"):
        typer.echo(f"  finished:     {status['finished']} ({_seconds(status['started'], status['finished'])})")
    typer.echo(f"  log:          {status.get('log_file')}")
    typer.echo(f"  last success: {status.get('last_success') or 'never'}")
    if status.get("message"):
        typer.echo(f"  message:      {status['message']}")
    if code and status.get("last_lines"):
        typer.echo("  last lines:")
        for line in status["last_lines"][-10:]:
            typer.echo(f"    {line}")
    typer.echo(f"  status file:  {path}")
    raise typer.Exit(code)


def _seconds(started: str, finished: str) -> str:
    try:
        delta = datetime.fromisoformat(finished.replace("Z", "+00:00")) - datetime.fromisoformat(started.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return "?"
    return f"{delta.total_seconds():.0f} s"


@cron_app.command("run", epilog=_CRON_EPILOG)
def cron_run(
    settings_file: Path = typer.Argument(..., help="The settings file install wrote ($AIRFLOW_HOME/pipekit-<dag>.cron.json)."),
    check: bool = typer.Option(False, "--check", help="Only look the DAG up (DB migrated? DAG found?); run nothing."),
    as_json: bool = typer.Option(False, "--json", help="With --check: print the report as JSON."),
) -> None:
    """Run the DAG once as the crontab line does: the file's environment only, under the lock, status recorded.

    The line calls this; run it by hand to get one run now that behaves as under cron.
    """
    from pipekit.airflow_cron import check_job, run_job
    from pipekit.errors import PipekitError

    if not check:
        raise typer.Exit(run_job(settings_file))
    report: dict[str, Any]
    try:
        report = check_job(settings_file)
    except PipekitError as exc:
        if not as_json:
            with user_errors():
                raise
        report = {"ok": False, "settings_file": str(settings_file), "problems": [exc.message],
                  "hints": [exc.hint] if exc.hint else []}
    if as_json:
        emit_json(report)
    else:
        for key in ("db", "dags_folder", "dag_file", "landing_dir"):
            if report.get(key):
                typer.echo(f"{key}: {report[key]}")
        for problem in report["problems"]:
            err_console.print(f"problem: {problem}", style="red", highlight=False)
        for hint in report["hints"]:
            err_console.print(f"  -> {hint}", style="yellow", highlight=False)
        out_console.print("ok" if report["ok"] else "refused", highlight=False)
    raise typer.Exit(0 if report["ok"] else 1)


@airflow_app.command(
    "run-customer",
    epilog=(
        "Runs the same steps as the customer_pipeline DAG (ingest, GX validation, clean, shell future-timestamp "
        "check, publish) once, without Airflow.\n\n"
        "  pipekit airflow run-customer --base-dir .demo/airflow\n\n"
        "  pipekit airflow run-customer --landing-dir /data/in --output-dir /data/out --json\n\n"
        "  pipekit airflow run-customer --base-dir s3://my-bucket/customers"
    ),
)
def run_customer(
    # Text, not Path: a Path would fold "s3://bucket" into "s3:/bucket".
    base_dir: str = typer.Option(None, "--base-dir", help=(
        "Root of landing/, backups/, output/, rejected/, manifest.jsonl: a local path or s3://bucket/prefix "
        "(endpoint and credentials from the usual AWS_* settings).")),
    landing_dir: str = typer.Option(None, "--landing-dir", help="Local path or s3:// URL."),
    output_dir: str = typer.Option(None, "--output-dir", help="Local path or s3:// URL."),
    backup_dir: str = typer.Option(None, "--backup-dir", help="Local path or s3:// URL."),
    manifest: str = typer.Option(None, "--manifest", help="JSON-lines file, or an s3:// prefix (one object per record)."),
    pattern: str = typer.Option(None, "--pattern", help="Glob in the landing dir (default *.csv)."),
    file: str = typer.Option(None, "--file", help="Process this landing file (or s3:// object) instead of searching."),
    now: str = typer.Option(None, "--now", help="ISO-8601 'now' for the future-timestamp rule."),
    policy_file: Path = typer.Option(None, "--policy", help="Masking policy YAML/JSON."),
    keep_source: bool = typer.Option(False, "--keep-source", help="Leave the landing file in place after success."),
    as_json: bool = typer.Option(False, "--json", help="Print the run report as JSON."),
) -> None:
    """Process the oldest landing file once, exactly as the DAG does; exit 1 if required columns are missing."""
    from pipekit.customer_pipeline import CustomerPipelineConfig, run_once

    params = {
        "base_dir": base_dir, "landing_dir": landing_dir, "output_dir": output_dir, "backup_dir": backup_dir,
        "manifest": manifest, "pattern": pattern, "now": now, "policy_file": policy_file,
        "remove_source": False if keep_source else None,
    }
    with user_errors():
        config = CustomerPipelineConfig.resolve({k: (str(v) if isinstance(v, Path) else v) for k, v in params.items()})
        report = run_once(config, path=file or None)
    if as_json:
        emit_json(report)
    elif report["status"] == "no_file":
        out_console.print(f"no file matching {report['pattern']} in {report['landing_dir']}", highlight=False)
    elif report["status"] == "duplicate":
        entry = report["entry"]
        out_console.print(f"{entry['file_name']}: already processed (sha256 {entry['sha256'][:12]}...), skipped",
                          highlight=False)
    else:
        out_console.print(f"[green]completed[/green] {escape(str(report['file']))}", markup=True, highlight=False)
        # Plain echo for paths: rich would wrap long ones mid-path.
        for key, value in report["outputs"].items():
            typer.echo(f"  {key}: {value}")
        typer.echo(f"  backup: {report['backup']}")
        typer.echo(f"  manifest: {report['manifest']}")
        typer.echo(f"  quality report: {report['quality']['gx_html']}")
        typer.echo(f"  run report: {report['run_report']}")
        typer.echo(f"  future rows (shell script / core): {report['future_rows']['shell_script']} / "
                   f"{report['future_rows']['core']}")


def register(app: typer.Typer) -> None:
    """Add ``pipekit airflow ...`` to the root app."""
    app.add_typer(airflow_app, name="airflow")
