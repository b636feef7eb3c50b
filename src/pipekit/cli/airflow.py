"""`pipekit airflow`: run the customer job without Airflow, and manage its crontab entry (flock, no overlap)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from pipekit.cli._common import emit_json, out_console, user_errors

airflow_app = typer.Typer(
    help="The customer-drop Airflow job: run it once in-process, or manage a cron entry that triggers the DAG.",
    no_args_is_help=True,
)
cron_app = typer.Typer(
    help="Install, remove or show the crontab line that runs the customer DAG with the `airflow` CLI under flock.",
    no_args_is_help=True,
)
airflow_app.add_typer(cron_app, name="cron")

_CRON_EPILOG = (
    "Examples:\n\n"
    "  pipekit airflow cron install --dry-run\n\n"
    "  pipekit airflow cron install --schedule '*/15 * * * *' --airflow-home ~/airflow\n\n"
    "  pipekit airflow cron show\n\n"
    "  pipekit airflow cron remove\n\n"
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
_LOG = typer.Option(None, "--log-file", help="Where cron appends the run's output.")
_CONF = typer.Option(None, "--conf", help='DAG run conf JSON, e.g. \'{"landing_dir": "/data/in"}\'.')
_MODE = typer.Option("test", "--mode", help="test: run the DAG in-process (no scheduler); trigger: queue a run for a scheduler.")
_DAG = typer.Option("customer_pipeline", "--dag-id", help="DAG to run.")
_FILE = typer.Option(None, "--crontab-file", help="Edit this file instead of the user's crontab.")
_CMD = typer.Option("crontab", "--crontab-cmd", help="crontab command to use (reads with -l, writes with -).")


@cron_app.command("install", epilog=_CRON_EPILOG)
def cron_install(
    schedule: str = _SCHEDULE, airflow_home: Path = _HOME, airflow_bin: str = _BIN, lock_file: Path = _LOCK,
    log_file: Path = _LOG, conf: str = _CONF, mode: str = _MODE, dag_id: str = _DAG,
    crontab_file: Path = _FILE, crontab_cmd: str = _CMD,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the line; change nothing."),
) -> None:
    """Add (or replace) the crontab line that runs the DAG; idempotent."""
    from pipekit.airflow_cron import build_cron_line, install

    with user_errors():
        spec = _spec(schedule, airflow_home, airflow_bin, lock_file, log_file, conf, mode, dag_id)
        line = build_cron_line(spec)  # validates the spec (mode, dag id, schedule) before anything changes
        if dry_run:
            typer.echo(line)
            return
        line, changed = install(spec, _backend(crontab_file, crontab_cmd))
    typer.echo(line)
    out_console.print("installed" if changed else "already installed (unchanged)", style="green", highlight=False)


@cron_app.command("remove", epilog=_CRON_EPILOG)
def cron_remove(
    dag_id: str = _DAG, crontab_file: Path = _FILE, crontab_cmd: str = _CMD,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be removed; change nothing."),
) -> None:
    """Remove pipekit's crontab line for the DAG (other lines are kept)."""
    from pipekit.airflow_cron import remove, show

    with user_errors():
        backend = _backend(crontab_file, crontab_cmd)
        if dry_run:
            for line in show(dag_id, backend):
                typer.echo(line)
            return
        removed = remove(dag_id, backend)
    out_console.print(f"removed {removed} line(s)" if removed else "nothing to remove", highlight=False)


@cron_app.command("show", epilog=_CRON_EPILOG)
def cron_show(
    schedule: str = _SCHEDULE, airflow_home: Path = _HOME, airflow_bin: str = _BIN, lock_file: Path = _LOCK,
    log_file: Path = _LOG, conf: str = _CONF, mode: str = _MODE, dag_id: str = _DAG,
    crontab_file: Path = _FILE, crontab_cmd: str = _CMD,
    as_json: bool = typer.Option(False, "--json", help="Print installed and proposed lines as JSON."),
) -> None:
    """Show the installed line (if any) and the line `install` would write."""
    from pipekit.airflow_cron import build_cron_line, show

    with user_errors():
        proposed = build_cron_line(_spec(schedule, airflow_home, airflow_bin, lock_file, log_file, conf, mode, dag_id))
        installed = show(dag_id, _backend(crontab_file, crontab_cmd))
    if as_json:
        emit_json({"installed": installed, "proposed": proposed, "up_to_date": installed == [proposed]})
        return
    out_console.print("installed:", style="bold", highlight=False)
    for line in installed or ["(none)"]:
        typer.echo(f"  {line}")
    out_console.print("install would write:", style="bold", highlight=False)
    typer.echo(f"  {proposed}")


@airflow_app.command(
    "run-customer",
    epilog=(
        "Runs the same steps as the customer_pipeline DAG (ingest, GX validation, clean, shell future-timestamp "
        "check, publish) once, without Airflow.\n\n"
        "  pipekit airflow run-customer --base-dir .demo/airflow\n\n"
        "  pipekit airflow run-customer --landing-dir /data/in --output-dir /data/out --json"
    ),
)
def run_customer(
    base_dir: Path = typer.Option(None, "--base-dir", help="Root of landing/, backups/, output/, manifest.jsonl."),
    landing_dir: Path = typer.Option(None, "--landing-dir"),
    output_dir: Path = typer.Option(None, "--output-dir"),
    backup_dir: Path = typer.Option(None, "--backup-dir"),
    manifest: Path = typer.Option(None, "--manifest"),
    pattern: str = typer.Option(None, "--pattern", help="Glob in the landing dir (default *.csv)."),
    file: Path = typer.Option(None, "--file", help="Process this landing file instead of searching."),
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
        report = run_once(config, path=str(file) if file else None)
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
