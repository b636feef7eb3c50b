"""How `pipekit` prints: plain unwrapped lines off a terminal (logs, pipes, CI), rich's pretty output on one.

Most tests run the installed console script as a subprocess, so stdout and stderr are real pipes (or a real
pseudo-terminal), as in CI; COLUMNS must make no difference off a terminal.
"""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipekit.cli import app
from pipekit.sample import write_customers_csv

PIPEKIT = Path(sys.executable).parent / "pipekit"
ESC = "\x1b["
SGR = re.compile(r"\x1b\[([0-9;]*)m")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Variables that would make rich (or typer) colour or size output regardless of the stream.
_TERMINAL_ENV = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERMINAL_WIDTH")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _TERMINAL_ENV}
    return {**env, **extra}


def _run(*args: str, columns: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(PIPEKIT), *args], capture_output=True, text=True, env=_env(COLUMNS=columns),
                            timeout=120)  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _long_missing_path(tmp_path: Path) -> Path:
    path = tmp_path / ("a" * 90) / ("b" * 90) / "no such dir" / "customers.csv"
    assert len(str(path)) > 200
    return path


@pytest.mark.parametrize("command", ["clean", "validate", "scan-pii"])
def test_missing_file_error_is_one_plain_line_whatever_columns(tmp_path: Path, command: str) -> None:
    missing = _long_missing_path(tmp_path)
    args = [command, str(missing), *(["--out", str(tmp_path / "out")] if command == "clean" else [])]
    results = {columns: _run(*args, columns=columns) for columns in ("40", "300")}
    for columns, result in results.items():
        assert result.returncode == 2, (columns, result.stderr)
        lines = result.stderr.splitlines()
        assert f"error: {missing}: no such file" in lines, (columns, lines)
        assert "  -> check the path" in lines
        assert ESC not in result.stdout + result.stderr
    assert results["40"].stderr == results["300"].stderr  # COLUMNS changes nothing off a terminal


def test_usage_error_is_one_plain_line(tmp_path: Path) -> None:
    # typer's own errors (here click's exists=True check) too: no box that wraps the path inside it
    missing = _long_missing_path(tmp_path).parent
    result = _run("glue", "plan", str(missing), "--bucket", "b", columns="40")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and str(missing) in errors[0] and errors[0].endswith("does not exist."), errors
    assert ESC not in result.stderr and "╭" not in result.stderr
    result = _run("clean", str(missing), columns="40")
    assert result.returncode == 2 and "Error: Missing option '--out' / '-o'." in result.stderr.splitlines()


def test_tables_and_paths_are_not_wrapped_or_cut_when_piped(tmp_path: Path) -> None:
    src = write_customers_csv(tmp_path / ("d" * 150) / "customers.csv", 200, seed=3)
    out = tmp_path / ("o" * 120)
    result = _run("clean", str(src), "--out", str(out), "--now", "2026-01-01T00:00:00Z", columns="40")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"pipekit clean: {src}"
    assert f"  parquet: {out / 'customers_cleaned.parquet'}" in lines
    assert any(re.fullmatch(r"│ rows written +│ +\d+ │", line) for line in lines), lines
    assert "…" not in result.stdout and ESC not in result.stdout + result.stderr
    assert result.stderr == ""  # no progress bar, no status spinner


def test_markup_like_user_data_prints_literally(tmp_path: Path) -> None:
    # a path with "[/bold]" in it (closing tag with no opening: rich would raise) and "[red]" in a file name
    src = tmp_path / "x[" / "bold]y" / "[red]customers.csv"
    src.parent.mkdir(parents=True)
    src.write_text(
        "id,name,email,timestamp,[bold]note[/bold]\n"
        "1,Ann,ann@x.io,2020-01-01T00:00:00Z,mail jane.doe@example.com\n"
        "2,Bob,bob@x.io,2020-01-01T00:00:00Z,:smile: [blink]hi[/blink]\n"
    )
    result = _run("validate", str(src), columns="40")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == str(src)
    result = _run("scan-pii", str(src), columns="40")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[0] == f"PII in {src} (2 rows scanned)"
    assert "│ [bold]note[/bold] │ email" in result.stdout
    result = _run("clean", str(src), "--out", str(tmp_path / "out"), "--now", "2026-01-01T00:00:00Z", columns="40")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"pipekit clean: {src}"
    assert ESC not in result.stdout + result.stderr


def _run_in_pty(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_output_stays_pretty_and_wraps_to_its_width(tmp_path: Path) -> None:
    missing = _long_missing_path(tmp_path)
    code, text = _run_in_pty([str(PIPEKIT), "clean", str(missing), "--out", str(tmp_path)], _env(COLUMNS="40"))
    assert code == 2, text
    assert "\x1b[1;31merror:" in text  # colour on a terminal
    plain = ANSI.sub("", text).replace("\r", "")
    lines = [line for line in plain.splitlines() if line]
    assert max(len(line) for line in lines) <= 40, lines  # rich wraps to the terminal's width
    assert len(lines) > 2  # the message was wrapped, and all of it is there
    assert re.sub(r"\s", "", f"error: {missing}: no such file") in re.sub(r"\s", "", plain), plain


def test_on_a_terminal_no_color_means_no_colour(tmp_path: Path) -> None:
    missing = _long_missing_path(tmp_path)
    code, text = _run_in_pty([str(PIPEKIT), "clean", str(missing), "--out", str(tmp_path)],
                             _env(COLUMNS="300", NO_COLOR="1"))  # fmt: skip
    assert code == 2, text
    assert "no such file" in text
    params = {p for seq in SGR.findall(text) for p in seq.split(";") if p}
    colours = {p for p in params if 30 <= int(p) <= 49 or 90 <= int(p) <= 107}
    assert not colours, params  # bold is fine (NO_COLOR is about colour), colours are not


def test_progress_bar_only_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipekit.cli import clean

    monkeypatch.setattr(clean._progress, "_MIN_BYTES", 0)  # every file is "large enough to wait for"
    src = write_customers_csv(tmp_path / "c.csv", 500, seed=5)
    result = CliRunner().invoke(app, ["clean", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and ESC not in result.stdout


def test_console_off_a_terminal_ignores_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipekit.cli._common import PLAIN_WIDTH, make_console, out_console

    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("FORCE_COLOR", "1")
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buffer)
    console = make_console()
    assert not console.is_terminal and console.width == PLAIN_WIDTH and console.color_system is None
    # out_console follows sys.stdout as it is when used (typer's CliRunner swaps it after import)
    out_console.print("x" * 100 + " [bold]literal[/bold]", style="bold")
    out_console.print("[green]ok[/green]", markup=True)
    assert buffer.getvalue() == "x" * 100 + " [bold]literal[/bold]\nok\n"


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = _run("--version", columns="80")
    assert result.returncode == 0, result.stderr
    assert result.stdout == version("pipekit") + "\n"
