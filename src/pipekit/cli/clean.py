"""`pipekit clean | validate | scan-pii`: parse arguments, call pipekit, print the result."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from pipekit.cli._common import (
    EXIT_DATA,
    EXIT_OK,
    defer_pandas,
    emit_json,
    err_console,
    escape,
    out_console,
    stop_signals,
    tune_allocator,
    user_errors,
)
from pipekit.errors import ConfigError

_CLEAN_EPILOG = """\
[bold]Examples[/bold]

  pipekit clean customers.csv --out out/
  pipekit clean customers.csv --out out/ --now 2026-01-01T00:00:00Z --json
  pipekit clean export.csv --out out/ --encoding latin-1 --bad-rows quarantine
  pipekit clean export.csv --out out/ --bad-rows quarantine --quarantine-dir /secure/quarantine
  pipekit clean customers.csv --out out/ --policy policy.yaml --dedup-keys id,email
  pipekit clean customers.csv --out out/ --engine spark --master local[2]

Writes out/<stem>_cleaned.csv, out/<stem>_cleaned.parquet and out/<stem>_report.json
(all renamed into place only when the run succeeds; the input is never modified).
In the CSV, text a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading '
(plain numbers such as -12.5 are left alone); the Parquet file keeps the true values.
Malformed rows under --bad-rows quarantine go, raw, to a private file (mode 0600) outside --out;
messages name lines and columns, never values.
Exit codes: 0 done, 1 required columns missing, 2 bad usage, unreadable or changing input, or an
output folder that cannot be written (full, read-only); then nothing is published.
"""

_VALIDATE_EPILOG = """\
[bold]Examples[/bold]

  pipekit validate customers.csv
  pipekit validate customers.csv --required id,email --json

Exit codes: 0 no problems, 1 problems found (listed with row numbers), 2 unreadable input.
"""

_SCAN_EPILOG = """\
[bold]Examples[/bold]

  pipekit scan-pii customers.csv
  pipekit scan-pii out/customers_cleaned.parquet --columns email,phone
  pipekit scan-pii big.csv --sample 100000 --json

Detects emails, phone numbers, payment cards (Luhn-checked), US SSNs, IPv4 addresses and IBANs
(mod-97 checked); masked values such as j***@example.com do not count.
Exit codes: 0 nothing found, 1 PII found, 2 unreadable input.
"""


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    return items or None


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}  # fmt: skip


def parse_bytes(value: str, option: str) -> int:
    """'4MiB' -> 4194304, '512k' -> 524288, '1000' -> 1000 (binary units: 1 MB = 1 MiB here)."""
    text = value.strip().lower().replace(" ", "")
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(digits) :]
    try:
        number = float(digits)
    except ValueError:
        number = -1.0
    if unit not in _UNITS or number <= 0:
        raise ConfigError(f"{option} {value!r} is not a size", hint=f"e.g. {option} 64MiB (or 512KiB, 1GiB)")
    return max(1, int(number * _UNITS[unit]))


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError as exc:
        raise ConfigError(
            f"--now {value!r} is not an ISO-8601 timestamp", hint="e.g. --now 2026-01-01T00:00:00Z"
        ) from exc


def _config(required: str | None, dedup_keys: str | None) -> Any:
    from pipekit.core import CleaningConfig

    config = CleaningConfig()
    if required is not None:
        config = replace(config, required=_split(required) or ())
    if dedup_keys is not None:
        config = replace(config, dedup_keys=_split(dedup_keys))
    return config


def clean_cmd(
    input_csv: Path = typer.Argument(
        ..., metavar="IN.csv", help="Customers CSV to clean (any size: it is streamed)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Directory for the cleaned CSV, Parquet and JSON report."
    ),
    policy: Path | None = typer.Option(
        None, "--policy", help="Masking policy file (YAML or JSON); default masks email."
    ),
    now: str | None = typer.Option(
        None, "--now", help="ISO-8601 'now' for the future-timestamp flag (default: current UTC time)."
    ),
    encoding: str = typer.Option("utf-8", "--encoding", help="Input text encoding, e.g. latin-1 or cp1252."),
    bad_rows: str = typer.Option(
        "error",
        "--bad-rows",
        help="Rows with the wrong number of fields: 'error' (stop) or 'quarantine' (set aside, raw, in a "
        "private file outside --out; see --quarantine-dir).",
    ),
    quarantine_dir: Path | None = typer.Option(
        None,
        "--quarantine-dir",
        help="Private folder for quarantined rows, outside --out (default: $XDG_STATE_HOME/pipekit/quarantine, "
        "i.e. ~/.local/state/pipekit/quarantine).",
    ),
    formula_guard: bool = typer.Option(
        True,
        "--formula-guard/--no-formula-guard",
        help="Prefix CSV cells a spreadsheet would run as formulas with ' (the Parquet file is never changed).",
    ),
    dedup_keys: str | None = typer.Option(
        None,
        "--dedup-keys",
        help="Comma-separated columns that identify a duplicate (default: the whole row).",
    ),
    required: str | None = typer.Option(
        None, "--required", help="Comma-separated required columns (default id,name,email,timestamp)."
    ),
    control_chars: str = typer.Option(
        "strip",
        "--control-chars",
        help="Control characters in values (NUL, ESC, DEL, C1; not tab/CR/LF): 'strip' (remove, counted "
        "in the report), 'reject' (stop with the row and column, nothing written) or 'keep'.",
    ),
    max_row_bytes: str = typer.Option(
        "4MiB",
        "--max-row-bytes",
        help="Longest row accepted, all its fields together (e.g. 64MiB); a longer row stops the run "
        "with its line number. Memory use grows with it.",
    ),
    batch_rows: int = typer.Option(
        1 << 17, "--batch-rows", min=1, help="Rows per batch (memory vs. overhead)."
    ),
    engine: str = typer.Option(
        "file",
        "--engine",
        help="'file' (streamed on this machine) or 'spark' (local Spark, the same results; needs pipekit[spark] "
        "and Java).",
    ),
    master: str | None = typer.Option(
        None,
        "--master",
        metavar="URL",
        help="Spark master for --engine spark (default local[N], N = CPU count).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Clean a customers CSV: drop incomplete and duplicate rows, normalise names and emails, mask PII, flag future timestamps."""
    from pipekit.io.engine import BadRows, clean_file

    with stop_signals(), user_errors():  # Ctrl-C/SIGTERM/SIGHUP: staging removed, nothing published
        if bad_rows not in ("error", "quarantine"):
            raise ConfigError(f"--bad-rows must be 'error' or 'quarantine', not {bad_rows!r}")
        bad_rows_mode: BadRows = "quarantine" if bad_rows == "quarantine" else "error"
        if control_chars not in ("strip", "reject", "keep"):
            raise ConfigError(f"--control-chars must be 'strip', 'reject' or 'keep', not {control_chars!r}")
        row_limit = parse_bytes(max_row_bytes, "--max-row-bytes")
        config = replace(
            _config(required, dedup_keys), formula_guard=formula_guard, control_chars=control_chars
        )
        if engine not in ("file", "spark"):
            raise ConfigError(f"--engine must be 'file' or 'spark', not {engine!r}")
        if master is not None and engine != "spark":
            raise ConfigError(
                "--master applies only to --engine spark", hint="add --engine spark, or drop --master"
            )
        if engine == "spark":
            report = _clean_spark(
                input_csv, out, config, policy, _parse_now(now), encoding, bad_rows_mode, master
            )
        else:
            defer_pandas()  # the file engine hands pyarrow no pandas object
            tune_allocator(_input_bytes(input_csv))  # its batches reuse freed heap pages (see there)
            with _progress(input_csv, enabled=not (quiet or as_json)) as progress:
                report = clean_file(
                    input_csv,
                    out,
                    config=config,
                    policy=policy,
                    now=_parse_now(now),
                    encoding=encoding,
                    bad_rows=bad_rows_mode,
                    batch_rows=batch_rows,
                    progress=progress,
                    quarantine_dir=quarantine_dir,
                    max_row_bytes=row_limit,
                )
    if as_json:
        emit_json(report.to_dict())
    elif not quiet:
        _print_clean(report)
    raise typer.Exit(EXIT_OK)


def _clean_spark(
    input_csv: Path, out: Path, config: Any, policy: Path | None, now: datetime | None, encoding: str,
    bad_rows: str, master: str | None,
) -> Any:  # fmt: skip
    """``pipekit clean --engine spark``: pyspark is imported only here."""
    if bad_rows != "error":
        raise ConfigError("--bad-rows quarantine needs --engine file", hint="Spark stops at a malformed row")
    from pipekit.spark import clean_file_spark

    return clean_file_spark(
        input_csv, out, config=config, policy=policy, now=now, encoding=encoding, master=master
    )


def validate_cmd(
    input_csv: Path = typer.Argument(..., metavar="IN.csv", help="CSV file to validate."),
    required: str | None = typer.Option(
        None, "--required", help="Comma-separated required columns (default id,name,email,timestamp)."
    ),
    encoding: str = typer.Option("utf-8", "--encoding", help="Input text encoding, e.g. latin-1."),
    max_row_bytes: str = typer.Option(
        "4MiB",
        "--max-row-bytes",
        help="Longest row accepted, all its fields together (e.g. 64MiB); a longer row stops the run "
        "with its line number. Memory use grows with it.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing; only the exit code tells."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Check required columns, blanks, unparsable timestamps and malformed emails; list every problem."""
    from pipekit.api import validate_file

    with user_errors():
        report = validate_file(input_csv, config=_config(required, None), encoding=encoding,
                               max_row_bytes=parse_bytes(max_row_bytes, "--max-row-bytes"))
    problems = bool(report.missing_columns or report.problems)
    if as_json:
        emit_json(report.to_dict())
    elif not quiet:
        style = "red" if problems else "green"
        out_console.print(f"[bold]{escape(str(input_csv))}[/bold]", markup=True, highlight=False)
        for line in report.summary().splitlines():
            out_console.print(
                f"  [{style}]{escape(line)}[/{style}]" if "MISSING" in line else f"  {escape(line)}",
                markup=True, highlight=False,
            )
    raise typer.Exit(EXIT_DATA if problems else EXIT_OK)


def scan_pii_cmd(
    file: Path = typer.Argument(..., metavar="FILE", help="CSV or Parquet file to scan."),
    columns: str | None = typer.Option(
        None, "--columns", help="Comma-separated columns to scan (default: all)."
    ),
    sample: int | None = typer.Option(None, "--sample", min=1, help="Scan only the first N rows."),
    encoding: str = typer.Option("utf-8", "--encoding", help="CSV text encoding."),
    max_row_bytes: str = typer.Option(
        "4MiB",
        "--max-row-bytes",
        help="Longest row accepted, all its fields together (e.g. 64MiB); a longer row stops the run "
        "with its line number. Memory use grows with it.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing; only the exit code tells."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON on stdout."),
) -> None:
    """Find unmasked PII (emails, phones, cards, SSNs, IPv4, IBANs) per column; exit 1 when any is found."""
    from pipekit.api import scan_file

    with user_errors():
        report = scan_file(file, columns=_split(columns), sample=sample, encoding=encoding,
                           max_row_bytes=parse_bytes(max_row_bytes, "--max-row-bytes"))
    if as_json:
        emit_json(report.to_dict())
    elif not quiet:
        _print_pii(file, report)
    raise typer.Exit(EXIT_DATA if report.total else EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add `clean`, `validate` and `scan-pii` to the root app."""
    app.command("clean", epilog=_CLEAN_EPILOG, rich_help_panel="Data")(clean_cmd)
    app.command("validate", epilog=_VALIDATE_EPILOG, rich_help_panel="Data")(validate_cmd)
    app.command("scan-pii", epilog=_SCAN_EPILOG, rich_help_panel="Data")(scan_pii_cmd)


# --- printing --------------------------------------------------------------------------------------


class _progress:
    """A rich progress bar by bytes read, on stderr, for files large enough to wait for."""

    _MIN_BYTES = 16 << 20

    def __init__(self, path: Path, *, enabled: bool) -> None:
        self._enabled = (
            enabled and err_console.is_terminal and path.is_file() and path.stat().st_size >= self._MIN_BYTES
        )
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not self._enabled:
            return None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=err_console.console, transient=True,
        )  # fmt: skip
        self._bar.start()
        self._task = self._bar.add_task("cleaning", total=None)

        def update(done: int, total: int) -> None:
            self._bar.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _print_clean(report: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    c = report.counts
    # The path is a line of its own, not the table's title: rich wraps a title to the table's width.
    out_console.print(f"pipekit clean: {report.input['path']}", style="table.title", highlight=False)
    table = Table(show_header=True, header_style="bold")
    table.add_column("step")
    table.add_column("rows / values", justify="right")
    table.add_row("rows read", f"{report.rows_read:,}")
    if report.quarantined:
        table.add_row("malformed rows quarantined", f"{report.quarantined:,}")
    table.add_row("dropped: missing required value", f"{c.get('dropped_null', 0):,}")
    table.add_row("dropped: duplicate", f"{c.get('dropped_duplicate', 0):,}")
    for name, n in c.items():
        if name.startswith("masked."):
            table.add_row(Text(f"masked: {name[7:]}"), f"{n:,}")
    if c.get("control_chars"):
        mode = report.settings.get("control_chars", "strip")
        table.add_row(f"values with control characters ({mode})", f"{c['control_chars']:,}")
    table.add_row("future timestamps flagged", f"{c.get('future', 0):,}")
    table.add_row("unparsable timestamps (kept, flag empty)", f"{c.get('timestamp_unparsable', 0):,}")
    guard = report.formula_guard
    if not guard.get("enabled", True):
        table.add_row("CSV formula guard", "off")
    elif not guard.get("total"):
        table.add_row("CSV cells formula-guarded (')", "0")
    else:
        for name, n in guard.get("cells", {}).items():
            table.add_row(Text(f"CSV formula-guarded: {name}"), f"{n:,}")  # a column name is data, not markup
        if guard.get("header_cells"):
            table.add_row("CSV formula-guarded: header", f"{guard['header_cells']:,}")
    table.add_row(Text("rows written", style="bold"), Text(f"{report.rows_written:,}", style="bold"))
    out_console.print(table)
    for problem in report.validation.problems:
        rows = ", ".join(map(str, problem.sample_rows))
        out_console.print(
            f"  validation: {problem.column}: {problem.count:,} {problem.kind.replace('_', ' ')} (rows {rows}...)",
            highlight=False,
            soft_wrap=True,
        )
    seconds = report.timings.get("total_s", 0.0)
    rate = report.rows_read / seconds if seconds else 0.0
    out_console.print(f"  {seconds:.2f} s, {rate:,.0f} rows/s", highlight=False)
    for name, path in report.outputs.items():
        out_console.print(f"  {name}: {path}", highlight=False, soft_wrap=True)
    if report.stale_staging_removed:
        out_console.print(
            f"  removed {report.stale_staging_removed} stale staging folder(s) left by interrupted runs",
            highlight=False,
        )
    if report.quarantine:
        # Not an output: the rows could not be masked, so they stay in a private folder.
        out_console.print(
            f"  quarantine (raw rows, private, mode 0600): {report.quarantine['path']}",
            highlight=False,
            soft_wrap=True,
        )


def _print_pii(file: Path, report: Any) -> None:
    if not report.total:
        out_console.print(
            f"[green]no PII found[/green] in {report.rows_scanned:,} row(s) of {escape(str(file))}", markup=True,
            highlight=False,
        )
        return
    from rich.table import Table

    out_console.print(f"PII in {file} ({report.rows_scanned:,} rows scanned)", style="table.title", highlight=False)
    table = Table(header_style="bold")
    table.add_column("column")
    table.add_column("entity")
    table.add_column("values", justify="right")
    for column, entities in report.findings.items():
        for entity, n in entities.items():
            table.add_row(column, entity, f"{n:,}")
    out_console.print(table)
    err_console.print(f"[red]{report.total:,} finding(s)[/red]: mask these columns before sharing the file",
                      markup=True)


def _input_bytes(path: Path) -> int:
    """The input's size, 0 when it cannot be read (clean_file then names the problem)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
