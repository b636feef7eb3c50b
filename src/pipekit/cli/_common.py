"""Shared CLI plumbing: turn pipekit errors into a clear message and an exit code, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from pipekit.errors import PipekitError

#: Exit codes: 0 success, 1 data-quality failure, 2 bad usage or unreadable input.
EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2

err_console = Console(stderr=True)
out_console = Console()


@contextmanager
def user_errors() -> Iterator[None]:
    """Map PipekitError (and a missing file) to a one-paragraph message and the right exit code."""
    try:
        yield
    except PipekitError as exc:
        # Messages quote user data (row text, file names): escape it so "[/bold]" in a row is just text.
        err_console.print(f"[bold red]error:[/bold red] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err_console.print(f"  [yellow]->[/yellow] {escape(exc.hint)}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except FileNotFoundError as exc:
        err_console.print(f"[bold red]error:[/bold red] no such file: {escape(str(exc.filename))}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def emit_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (for --json)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
