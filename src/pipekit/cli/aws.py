"""`pipekit aws ...`: ingest, crawl, query and run the Glue job, one service call at a time."""

from __future__ import annotations

from pathlib import Path

import typer

from pipekit.cli._common import emit_json, err_console, escape, out_console, user_errors

aws_app = typer.Typer(help="AWS building blocks of the ETL: ingest, crawl, query, run-job. "
                      "Names come from the CloudFormation stack's Outputs (--stack).", no_args_is_help=True)

_STACK = typer.Option("pipekit-etl", "--stack", help="CloudFormation stack that holds the ETL resources.")


@aws_app.command("ingest")
def ingest_cmd(
    file: Path = typer.Argument(..., help="Customers CSV to upload into data/customers_database/customers_csv/."),
    stack: str = _STACK,
    force: bool = typer.Option(False, "--force", help="Upload even if the same sha256 is already there."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Upload FILE with its sha256; an identical object is not uploaded twice."""
    from pipekit import etl

    with user_errors():
        result = etl.ingest(file, stack, force=force)
    if as_json:
        emit_json(result.__dict__)
    else:
        out_console.print(result.describe(), highlight=False, soft_wrap=True)


@aws_app.command("crawl")
def crawl_cmd(
    stack: str = _STACK,
    poll: float = typer.Option(5.0, "--poll", help="Seconds between state checks."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Start the crawler, wait with progress, and report the tables it created or changed."""
    from pipekit import etl
    from pipekit.aws import catalog

    with user_errors():
        res = etl.resources(stack)
        with err_console.status(escape(f"crawling {res.raw_prefix} ...")) as status:  # status text is markup
            report = catalog.run_crawler(res.crawler, res.database, poll_s=poll,
                                         on_poll=lambda s: status.update(escape(f"crawler {res.crawler}: {s}")))
        tables = catalog.get_tables(res.database)
    if as_json:
        emit_json(report.to_dict())
        return
    out_console.print(f"crawler {report.crawler}: {report.status} in {report.seconds}s", highlight=False, soft_wrap=True)
    for label, names in (("created", report.created), ("changed", report.changed), ("unchanged", report.unchanged)):
        for name in names:
            t = tables.get(name, {})
            cols = ", ".join(f"{n} {ty}" for n, ty in catalog.table_columns(t))
            out_console.print(f"  {label:9} {res.database}.{name} [{catalog.table_serde(t).rsplit('.', 1)[-1]}] "
                              f"({cols})", highlight=False, soft_wrap=True)


@aws_app.command("query")
def query_cmd(
    sql: str = typer.Argument(..., help="Athena (Trino) SQL."),
    stack: str = _STACK,
    parquet: bool = typer.Option(True, "--parquet/--no-parquet", help="Also UNLOAD a Parquet copy of a SELECT."),
    max_rows: int = typer.Option(50, "--max-rows", help="Rows to print (all rows are in the CSV result)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run SQL in the stack's workgroup; the CSV result and a Parquet copy land in athena_results/."""
    from pipekit import etl
    from pipekit.aws import athena

    with user_errors():
        res = etl.resources(stack)
        result = athena.run_query(sql, workgroup=res.workgroup, database=res.database, parquet_copy=parquet)
    if as_json:
        emit_json(result.to_dict())
        return
    from rich.table import Table

    table = Table(*result.columns, title=f"{len(result.rows)} row(s)")
    for row in result.rows[:max_rows]:
        table.add_row(*["NULL" if v is None else v for v in row])
    out_console.print(table)
    out_console.print(f"CSV result:   {result.csv_uri}", highlight=False, soft_wrap=True)
    if result.parquet_uri:
        out_console.print(f"Parquet copy: {result.parquet_uri}", highlight=False, soft_wrap=True)


@aws_app.command("run-job")
def run_job_cmd(
    name: str = typer.Argument(..., help="Glue job name."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the run to end; fail with the job's error."),
    arg: list[str] = typer.Option([], "--arg", help="Run argument KEY=VALUE (e.g. --arg --policy=s3://...)."),
    poll: float = typer.Option(10.0, "--poll", help="Seconds between state checks."),
) -> None:
    """Start Glue job NAME; with --wait, stream its state and exit 1 with Glue's ErrorMessage if it fails."""
    from pipekit.aws import glue
    from pipekit.errors import ConfigError

    with user_errors():
        arguments = {}
        for item in arg:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"--arg {item!r} is not KEY=VALUE")
            arguments[key if key.startswith("--") else f"--{key}"] = value
        run_id = glue.start_job_run(name, arguments or None)
        out_console.print(f"started {name} run {run_id}", highlight=False, soft_wrap=True)
        if not wait:
            return
        seen: list[str] = []

        def show(run: glue.JobRun) -> None:
            if not seen or seen[-1] != run.state:
                seen.append(run.state)
                err_console.print(f"  {name}: {run.state}", highlight=False, soft_wrap=True)

        run = glue.wait_for_job_run(name, run_id, poll_s=poll, on_poll=show)
    out_console.print(f"{name} run {run_id}: {run.state} in {run.execution_time_s}s", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `pipekit aws` to the root app."""
    app.add_typer(aws_app, name="aws")
