"""`pipekit etl ...`: deploy the Glue job, run the whole pipeline, verify its output."""

from __future__ import annotations

from pathlib import Path

import typer

from pipekit.cli._common import EXIT_DATA, emit_json, err_console, escape, out_console, user_errors

etl_app = typer.Typer(help="The whole AWS ETL: deploy, run, verify (real AWS or the offline twin).",
                      no_args_is_help=True)

_STACK = typer.Option("pipekit-etl", "--stack", help="CloudFormation stack that holds the ETL resources.")


@etl_app.command("deploy")
def deploy_cmd(
    stack: str = _STACK,
    script: Path = typer.Option(None, "--script", help="Glue entrypoint (default adapters/glue/customers_etl.py)."),
    visual: bool = typer.Option(True, "--visual/--no-visual", help="Attach the Glue Studio visual graph."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Upload the Glue script and pipekit.zip into scripts/ and update the (visual) Glue job."""
    from pipekit import etl

    with user_errors():
        report = etl.deploy(stack, script=script, visual=visual)
    if as_json:
        emit_json(report.to_dict())
        return
    out_console.print(report.script.describe(), highlight=False, soft_wrap=True)
    out_console.print(report.package.describe(), highlight=False, soft_wrap=True)
    out_console.print(f"Glue job {report.job}: {'updated' if report.job_updated else 'unchanged'}", highlight=False, soft_wrap=True)
    for line in report.graph:
        out_console.print(f"  {line}", highlight=False, soft_wrap=True)


@etl_app.command("run")
def run_cmd(
    file: Path = typer.Argument(..., help="Customers CSV (AdventureWorks Customer columns)."),
    stack: str = _STACK,
    poll: float = typer.Option(5.0, "--poll", help="Seconds between state checks."),
    ingest_date: str = typer.Option(None, "--ingest-date", help="Partition (YYYY-MM-DD) the job writes; default today."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Ingest FILE, crawl, query, run the masking Glue job (only files its bookmark has not seen), query."""
    from pipekit import etl

    with user_errors():
        report = etl.run(file, stack, poll_s=poll, ingest_date=ingest_date,
                         progress=lambda msg: err_console.print(f"[dim]>[/dim] {escape(msg)}", markup=True, highlight=False,
                                                                soft_wrap=True))
    if as_json:
        emit_json(report.to_dict())
        return
    out_console.print(f"raw rows {report.raw_rows} -> Glue job {report.job_state} ({report.job_seconds}s) -> "
                      f"parquet rows {report.parquet_rows}", highlight=False, soft_wrap=True)
    bookmark = (report.job_stats or {}).get("bookmark", "?")
    out_console.print(f"  job run {report.job_run_id} ({bookmark}): {report.describe_job()}", highlight=False,
                      soft_wrap=True)
    if report.partitions_added:
        out_console.print(f"  new partition(s): {', '.join(report.partitions_added)}", highlight=False, soft_wrap=True)
    for q in report.queries:
        out_console.print(f"  {q['sql']}\n    CSV {q['csv']}\n    Parquet {q['parquet']}", highlight=False, soft_wrap=True)


@etl_app.command("verify")
def verify_cmd(
    stack: str = _STACK,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Row counts reconcile, every first name is hu25, no unmasked PII, Athena reads the Parquet table."""
    from pipekit import etl

    with user_errors():
        report = etl.verify(stack)
    if as_json:
        emit_json(report.to_dict())
    else:
        for check in report.checks:
            mark = "[green]PASS[/green]" if check.ok else "[red]FAIL[/red]"
            out_console.print(f"{mark} {escape(check.name)}: {escape(check.detail)}", markup=True,
                              highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(EXIT_DATA)


@etl_app.command("layout")
def layout_cmd(stack: str = _STACK) -> None:
    """What is under each prefix of the bucket (objects, bytes)."""
    from pipekit import etl

    with user_errors():
        rows = etl.describe_layout(stack)
    for role, uri, n, size in rows:
        out_console.print(f"{role:18} {n:4} objects {size:>12,} bytes  {uri}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `pipekit etl` to the root app."""
    app.add_typer(etl_app, name="etl")
