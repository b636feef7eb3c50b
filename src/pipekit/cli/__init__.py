"""The ``pipekit`` command: parsing and printing only; the work is done by pipekit's functions.

Each command group lives in its own module with a ``register(app)`` function.
"""

from __future__ import annotations

import importlib
import sys

import typer

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
    _defer_pandas()
    app()


def _defer_pandas() -> None:
    """Keep pyarrow from importing pandas (~0.15 s of start-up) in this process until it needs it.

    pyarrow tries ``import pandas`` on its first conversion of any Python value (``pc.fill_null(x,
    False)`` is one), to tell pandas objects apart; ``pipekit clean`` never hands it one. One
    conversion while ``import pandas`` fails makes pyarrow record "no pandas" and stop looking; every
    pyarrow call that really needs pandas (``to_pandas``, ``from_pandas``) still imports it then. Only
    the console script does this: it owns its process, a notebook's ``import pipekit`` never does.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    sys.meta_path.insert(0, _NoPandas)
    try:
        pa.scalar(0)
    finally:
        sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """A meta path finder under which ``import pandas`` raises ImportError (see ``_defer_pandas``)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is deferred while pipekit starts", name=name)
        return None
