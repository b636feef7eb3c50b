"""The ``pipekit`` command: parsing and printing only; the work is done by pipekit's functions.

Each command group lives in its own module with a ``register(app)`` function.
"""

from __future__ import annotations

import importlib

import typer

from pipekit.cli import _common
from pipekit.cli._common import PipekitGroup

app = typer.Typer(
    name="pipekit",
    cls=PipekitGroup,  # off a terminal, usage errors as plain one-line messages (see _common)
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


def _print_version(value: bool) -> None:
    # An eager option's callback runs while the options are parsed, before click asks for a command.
    if value:
        from pipekit import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print pipekit's version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """pipekit's root options."""


def main() -> None:
    """Entry point of the ``pipekit`` console script."""
    _common.OWN_PROCESS = True  # this process is the command's own (see _common.defer_pandas)
    app()
