"""Every file of the hostile corpus through `pipekit clean`, `validate` and `scan-pii`, as a user runs them.

Each process ends with a documented exit code (clean: 0 or 2; validate and scan-pii also 1, their
"problems/PII found"), prints no traceback and no "Exception ignored", and peaks below 1 GiB RSS,
measured per process by a small intermediary (a child of a large process inherits its ru_maxrss).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hostile.corpus import CASES, HUGE_FIELD_BYTES, write_corpus

PIPEKIT = Path(sys.executable).parent / "pipekit"
NOW = "2026-01-01T00:00:00Z"
_PEAK_LIMIT_MIB = 1024
# Runs the command and reports its exit status and peak RSS (wait4) as JSON on its last stderr line.
_MEASURE = (
    "import json, os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(json.dumps({'exit': os.waitstatus_to_exitcode(status), 'peak_mib': usage.ru_maxrss / 1024}),"
    " file=sys.stderr)\n"
)
# The exit code each case must end with under `pipekit clean` (validate/scan-pii: see _expected_other).
CLEAN_EXIT = {
    "binary": 2,
    "nuls": 0,  # stripped, counted
    "huge_field": 2,
    "wide": 0,
    "formulas": 0,
    "unbalanced_quotes": 2,
    "mixed_encodings": 2,
    "bom": 0,
    "crlf": 0,
    "cr": 0,
    "empty": 2,
    "header_only": 0,
    "utf16": 2,
    "ragged": 2,
}


Result = tuple[int, float, str, str]  # exit code, peak RSS (MiB), stdout, stderr
COMMANDS = ("clean", "validate", "scan-pii")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def results(
    corpus: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Result]:
    """Every case through every command, two processes at a time (the machine has two cores)."""
    outs = tmp_path_factory.mktemp("outs")

    def args(case: str, command: str) -> list[str]:
        if command == "clean":
            return ["clean", str(corpus[case]), "--out", str(outs / case), "--now", NOW, "--json"]
        return [command, str(corpus[case])]

    jobs = [(case, command) for case in sorted(CASES) for command in COMMANDS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda job: _run(*args(*job)), jobs)
        return dict(zip(jobs, done, strict=True))


def _run(*args: str) -> Result:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _MEASURE, str(PIPEKIT), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    *lines, last = proc.stderr.rstrip("\n").split("\n")
    measured = json.loads(last)
    return measured["exit"], measured["peak_mib"], proc.stdout, "\n".join(lines)


def _sane(result: Result, allowed: set[int]) -> None:
    code, peak, stdout, stderr = result
    assert code in allowed, (code, stdout, stderr)
    assert "Traceback" not in stderr + stdout and "Exception ignored" not in stderr + stdout, stderr
    assert peak < _PEAK_LIMIT_MIB, f"peak RSS {peak:.0f} MiB"
    if code == 2:
        assert stderr.startswith("error: ") and "\n" not in stderr.split("\n  -> ")[0], stderr


def test_the_corpus_covers_every_case() -> None:
    assert set(CLEAN_EXIT) == set(CASES)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_through_every_reader(
    corpus: dict[str, Path], results: dict[tuple[str, str], Result], case: str
) -> None:
    src = corpus[case]
    clean = results[case, "clean"]
    code, _, stdout, stderr = clean
    _sane(clean, {0, 2})
    assert code == CLEAN_EXIT[case], stderr
    if code == 0:
        report = json.loads(stdout)
        data = Path(report["outputs"]["csv"]).read_text(encoding="utf-8")
        assert not any(ch in data for ch in "\x00\x1b\x7f"), "a control character reached the CSV"
        assert "\n=" not in data and ",=" not in data and '"=' not in data  # formula guard
    else:
        out = Path(src).parent.parent / "outs0" / case
        assert str(src) in stderr and not (out.exists() and any(out.iterdir()))
    for command in ("validate", "scan-pii"):
        _sane(results[case, command], {0, 1, 2})
        # Unreadable for clean is unreadable for the other readers too (and the reverse).
        assert (results[case, command][0] == 2) == (code == 2), (command, results[case, command][3])


def test_a_huge_field_names_its_line_and_the_option(corpus: dict[str, Path], tmp_path: Path) -> None:
    src = corpus["huge_field"]
    code, _, _, stderr = _run("clean", str(src), "--out", str(tmp_path / "o"), "--now", NOW)
    assert code == 2
    assert f"line 7 starts a row of {HUGE_FIELD_BYTES + 22:,} bytes" in stderr, stderr
    assert "limit on one row" in stderr and "--max-row-bytes 16MiB" in stderr
    assert "straddl" not in stderr
    code, _, stdout, stderr = _run(
        "clean", str(src), "--out", str(tmp_path / "o"), "--now", NOW, "--max-row-bytes", "16MiB", "--json"
    )
    assert code == 0, stderr
    assert json.loads(stdout)["settings"]["max_row_bytes"] == 16 << 20
