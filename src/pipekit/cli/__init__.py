"""The ``pipekit`` command: parsing and printing only; the work is done by pipekit's functions.

Each command group lives in its own module with a ``register(app)`` function.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="pipekit",
    help=(
        "pipekit: clean and mask customer data, run the AWS ETL (for real or on the offline twin), "
        "deploy Glue jobs from git, and drive the Airflow DAGs.\n\n"
        "Start with [bold]pipekit clean customers.csv --out out/[/bold], or see README.md."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Command groups, in the order `pipekit --help` lists them.
_GROUPS = ("clean", "airflow", "aws", "etl", "local", "glue", "lambda_cmd", "ml")

for _name in _GROUPS:
    importlib.import_module(f"pipekit.cli.{_name}").register(app)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print pipekit's version and exit.", is_eager=True),
) -> None:
    if version:
        from pipekit import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


def main() -> None:
    """Entry point of the ``pipekit`` console script."""
    app()
