"""Shared CLI plumbing: the consoles (pretty on a terminal, plain lines elsewhere), and pipekit errors turned
into a clear message and an exit code, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from pipekit.errors import PipekitError

if TYPE_CHECKING:
    from rich.console import Console

#: Exit codes: 0 success, 1 data-quality failure, 2 bad usage or unreadable input.
EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2

#: Width of a console that is not on a terminal: plain lines are never wrapped there (soft wrap), and a
#: table is laid out as wide as its content, so nothing is folded or cut to "..." - whatever COLUMNS says.
PLAIN_WIDTH = 1 << 16


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is an interactive terminal (a pipe, a file, a closed or fake stream is not)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # closed stream
        return False


#: True in the ``pipekit`` console script's process (set by ``pipekit.cli.main``), never in a host
#: process that calls the commands (typer's CliRunner, a notebook): see ``defer_pandas``.
OWN_PROCESS = False


def defer_pandas() -> None:
    """Keep pyarrow from importing pandas (~0.15 s of start-up) for the rest of this command.

    pyarrow tries ``import pandas`` on its first conversion of any Python value (``pc.fill_null(x,
    False)`` is one), to tell pandas objects apart. One conversion while ``import pandas`` fails makes
    pyarrow record "no pandas" and stop looking; pyarrow calls that need pandas (``to_pandas``,
    ``Table.from_pandas``) still import it then. The price: until one of those runs, ``pa.array`` no
    longer recognises a pandas Series (a datetime Series fails). So this runs only in the console
    script's own process, and only for commands that never hand pyarrow a pandas object (the file
    engine of ``pipekit clean``); nothing happens when pandas is loaded already.
    """
    if not OWN_PROCESS or "pandas" in sys.modules:
        return
    import pyarrow as pa

    sys.meta_path.insert(0, _NoPandas)
    try:
        pa.scalar(0)
    finally:
        sys.meta_path.remove(_NoPandas)


#: glibc ``mallopt`` parameters (malloc.h) and the values ``tune_allocator`` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20  # glibc's ceiling on 64-bit
_TRIM_THRESHOLD = 256 << 20
_TUNE_FROM_BYTES = 64 << 20


def tune_allocator(input_bytes: int) -> bool:
    """Let glibc's malloc keep freed memory for the next batch (the console script's own process only).

    The file engine allocates the same few-MiB numpy arrays batch after batch. glibc serves an array
    above its (dynamic) mmap threshold with a fresh mapping and returns freed heap tops to the OS, so
    each batch faults its pages in again: ~350k page faults and ~1.8 s of system time for 5M rows.
    Fixed thresholds (mmap 32 MiB, trim 256 MiB) reuse the heap instead: ~140k faults, ~0.4 s less
    wall time, ~30 MiB more peak RSS. Nothing happens outside the console script's process, off glibc,
    for an input under 64 MiB (a few batches: nothing to gain), or
    with PIPEKIT_MALLOC_TUNING=0. Returns whether the thresholds were set.
    """
    if not OWN_PROCESS or input_bytes < _TUNE_FROM_BYTES or os.environ.get("PIPEKIT_MALLOC_TUNING") == "0":
        return False
    try:
        glibc = sys.platform == "linux" and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        glibc = False
    if not glibc:
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )


class _NoPandas:
    """A meta path finder under which ``import pandas`` raises ImportError (see ``defer_pandas``)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is deferred while pipekit cleans a file", name=name)
        return None


def escape(text: str) -> str:
    """rich's ``escape``: user data in a markup string prints literally (rich loads only when printing)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def make_console(*, stderr: bool = False) -> Console:
    """The one place the CLI builds a rich Console: for sys.stdout (or sys.stderr) as it is now.

    On a terminal: rich's pretty output - colour (NO_COLOR turns it off), lines wrapped to the terminal
    width, live progress bars. Anywhere else (a pipe, a log file, CI, typer's CliRunner): plain text for
    grep - no ANSI codes, no live display, and no line ever wrapped or cropped (COLUMNS is ignored), so an
    error message that quotes a long path stays on one line.

    Markup is off by default in both: user data (paths, row text, column names) prints literally. For
    pipekit's own styling pass ``markup=True`` and ``escape()`` the data that goes into that string.
    """
    from rich.console import Console  # ~40 ms to import: only once something is printed

    stream = sys.stderr if stderr else sys.stdout
    if is_terminal(stream):
        return Console(file=stream, stderr=stderr, markup=False, emoji=False)
    return Console(
        file=stream, stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=True,
        width=PLAIN_WIDTH, color_system=None, force_terminal=False, force_interactive=False,
        legacy_windows=False,
    )  # fmt: skip


class StdConsole:
    """``out_console`` / ``err_console``: make_console()'s Console for sys.stdout / sys.stderr as they are
    when used (typer's CliRunner swaps the streams after import), made again only when the stream changes.

    Attributes and methods are the Console's (``print``, ``status``, ``is_terminal``...). Where rich wants
    a Console object itself, pass ``.console``: ``Progress(..., console=err_console.console)``.
    """

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._made: tuple[object, Console] | None = None

    @property
    def console(self) -> Console:
        stream = sys.stderr if self._stderr else sys.stdout
        if self._made is None or self._made[0] is not stream:
            self._made = (stream, make_console(stderr=self._stderr))
        return self._made[1]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not half-made (copy, pickle) nor rich's internals: only the public API
            raise AttributeError(name)
        return getattr(self.console, name)


err_console = StdConsole(stderr=True)
out_console = StdConsole(stderr=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Map PipekitError (and a missing file) to a one-paragraph message and the right exit code."""
    try:
        yield
    except PipekitError as exc:
        # Messages quote user data (row text, file names): escape it so "[/bold]" in a row is just text.
        err_console.print(f"[bold red]error:[/bold red] {escape(exc.message)}", markup=True, highlight=False)
        if exc.hint:
            err_console.print(f"  [yellow]->[/yellow] {escape(exc.hint)}", markup=True, highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except FileNotFoundError as exc:
        err_console.print(f"[bold red]error:[/bold red] no such file: {escape(str(exc.filename))}", markup=True,
                          highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt as exc:
        err_console.print("interrupted")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP under ``stop_signals()``: unwinds like Ctrl-C, so staged files are removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: The signals that stop a command cleanly (temp files removed, nothing published, exit 128 + signal).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP (Ctrl-C, ``kill``, a scheduler stopping the task, a closed
    terminal) raise ``Interrupted`` in the main thread; a second signal while unwinding is ignored, so
    the clean-up runs to its end. Put it outside ``user_errors()``, which prints the one "interrupted" line;
    then the process exits 128 + signal.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    stopped: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not stopped:
            stopped.append(signum)
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        if stopped:
            # The block has unwound (staged files removed). Leave now, without interpreter finalisation:
            # an Arrow I/O thread still finishing a read into Python would abort it (SIGABRT, exit -6).
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(128 + stopped[0])
        for sig, old in previous.items():
            if old is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(sig, old)


def emit_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (for --json)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


# --- typer's own usage errors ----------------------------------------------------------------------

#: click's base exception class as typer raises it (typer >= 0.29 ships its own copy of click), reached
#: through the public typer.BadParameter rather than a private module path.
_ClickException: type[Exception] = next(
    (c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"), typer.BadParameter
)


@contextmanager
def _plain_usage_errors() -> Iterator[None]:
    try:
        yield
    except _ClickException as exc:
        # NoArgsIsHelpError is typer printing the help page, not an error line: leave it to typer.
        if is_terminal(sys.stderr) or type(exc).__name__ == "NoArgsIsHelpError":
            raise
        error: Any = exc
        error.show()  # click's plain "Usage: ...", "Try ...", "Error: <message>" lines, unwrapped
        raise typer.Exit(error.exit_code) from None


class PipekitGroup(TyperGroup):
    """The root ``pipekit`` group. Off a terminal a usage error (missing option, bad value, no such command)
    prints as click's plain lines, with the message on one ``Error: ...`` line, instead of typer's boxed
    panel, which rich wraps inside the box. On a terminal typer's panel is kept.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with _plain_usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with _plain_usage_errors():
            return super().invoke(ctx)
