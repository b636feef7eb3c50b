"""The shell script agrees with pipekit.core's is_future on the same CSV, quoted fields and offsets included."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipekit.core import flag_future

SCRIPT = Path(__file__).resolve().parents[2] / "adapters" / "airflow" / "scripts" / "flag_future_timestamps.sh"
NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)

TRICKY = [
    ("1", "Smith, John", "2026-06-15T12:00:00Z"),  # exactly now: not future
    ("2", "Line\nBreak", "2026-06-15T12:00:00.000001Z"),
    ("3", 'Quote "Q" Person', "2026-06-15 13:30:00+02:00"),  # 11:30 UTC: past
    ("4", "Offset, West", "2026-06-15T08:00:01-04:00"),  # 12:00:01 UTC: future
    ("5", "naive", "2026-06-15 12:00:01"),  # naive = UTC: future
    ("6", "date only", "2026-06-16"),
    ("7", "lower t z", "2026-06-15t12:30:00z"),
    ("8", "comma fraction", "2026-06-15T12:00:00,5"),
    ("9", "nanos", "2026-06-15T12:00:00.000000999Z"),  # truncated to microseconds: == now
    ("10", "impossible", "2026-02-30T00:00:00"),
    ("11", "garbage", "tomorrow"),
    ("12", "blank", ""),
    ("13", "padded", "  2027-01-01T00:00:00+0530  "),
    ("14", "hour only", "2026-06-15T13"),
    ("15", "hour offset", "2026-06-15T14:00+03"),  # 11:00 UTC: past
    ("16", "far future", "2999-12-31T23:59:59.999999+14:00"),
    ("17", "id, with comma", "2030-01-01T00:00:00Z"),
    ("18", "slashes", "2030/01/01 00:00:00"),
]


def _write_csv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "name", "email", "timestamp"])
        for rid, name, ts in rows:
            writer.writerow([f"{rid}, x" if "comma" in name and rid == "17" else rid, name, "a@b.co", ts])


def _run(csv_path: Path, side: Path, now: datetime | None = NOW, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    if now is not None:
        full["PIPEKIT_NOW"] = now.isoformat()
    return subprocess.run(["bash", str(SCRIPT), str(csv_path), str(side)], env=full, capture_output=True, text=True)


def _side_ids(side: Path) -> list[str]:
    with open(side, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id"]
    return [r[0] for r in rows[1:]]


def _core_ids(csv_path: Path, now: datetime) -> list[str]:
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    flagged, _, _ = flag_future(frame, now=now)
    return flagged.loc[flagged["is_future"].fillna(False).astype(bool), "id"].tolist()


def test_script_matches_core_on_quoted_fields_and_offsets(tmp_path: Path):
    src = tmp_path / "cleaned.csv"
    _write_csv(src, TRICKY)
    side = tmp_path / "out" / "future_ids.csv"
    done = _run(src, side)
    assert done.returncode == 0, done.stderr
    ids = _side_ids(side)
    assert ids == _core_ids(src, NOW)
    assert ids == ["2", "4", "5", "6", "7", "8", "13", "14", "16", "17, x"]
    assert done.stdout.strip().splitlines()[-1] == str(len(ids))
    assert "10 of 18 rows" in done.stderr


_stamp = st.datetimes(min_value=datetime(2026, 6, 14), max_value=datetime(2026, 6, 17))
_offset = st.sampled_from(["", "Z", "z", "+00:00", "-04:00", "+05:30", "+0530", "+14", "-12:00"])
_sep = st.sampled_from(["T", " ", "t"])
_frac = st.sampled_from(["", ".1", ".123456", ",5", ".123456789"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_stamp, _offset, _sep, _frac, st.text(max_size=12)), min_size=1, max_size=30))
def test_script_matches_core_on_generated_timestamps(tmp_path: Path, rows):
    data = []
    for i, (ts, off, sep, frac, name) in enumerate(rows):
        frac = frac if ts.microsecond == 0 else ""
        text = ts.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (frac or (f".{ts.microsecond:06d}" if ts.microsecond else ""))
        data.append((str(i), name.replace("\r", " ").replace("\x00", ""), text + off))
    src = tmp_path / "gen.csv"
    _write_csv(src, data)
    side = tmp_path / "gen_ids.csv"
    done = _run(src, side)
    assert done.returncode == 0, done.stderr
    assert _side_ids(side) == _core_ids(src, NOW)


def _wall_clock() -> datetime:
    """The real current time, which the script's subprocess reads (PIPEKIT_TEST_NOW shifts only this process)."""
    try:
        from time_machine import escape_hatch
    except ImportError:
        return datetime.now(UTC)
    return escape_hatch.datetime.datetime.now(UTC) if escape_hatch.is_travelling() else datetime.now(UTC)


def test_default_now_is_the_current_time(tmp_path: Path):
    src = tmp_path / "c.csv"
    wall = _wall_clock()
    past = (wall - timedelta(days=1)).isoformat()
    future = (wall + timedelta(days=1)).isoformat()
    _write_csv(src, [("p", "past", past), ("f", "future", future)])
    done = _run(src, tmp_path / "ids.csv", now=None)
    assert done.returncode == 0 and _side_ids(tmp_path / "ids.csv") == ["f"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"", "empty"),
        (b"id,name\n1,a\n", "column 'timestamp' not found"),
        (b"id,timestamp\n1,\xff\xfe2030\n", "not a readable UTF-8 CSV"),
        (b'id,timestamp\n1,"2030-01-01\n', "not a readable UTF-8 CSV"),
        (b"id,timestamp\n1,2030-01-01,extra\n", "has 3 fields"),
    ],
)
def test_unreadable_input_exits_non_zero_and_leaves_no_side_file(tmp_path: Path, content, message):
    src = tmp_path / "bad.csv"
    if content is not None:
        src.write_bytes(content)
    side = tmp_path / "ids.csv"
    done = _run(src, side)
    assert done.returncode == 2
    assert message in done.stderr
    assert not side.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".future_ids")]


def test_bad_now_and_usage(tmp_path: Path):
    src = tmp_path / "c.csv"
    _write_csv(src, TRICKY[:1])
    done = _run(src, tmp_path / "ids.csv", now=None, PIPEKIT_NOW="yesterday")
    assert done.returncode == 2 and "PIPEKIT_NOW" in done.stderr
    usage = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_bom_and_crlf_are_read(tmp_path: Path):
    src = tmp_path / "bom.csv"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([["id", "timestamp"], ["1", "2030-01-01"], ["2", "2020-01-01"]])
    src.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode())
    done = _run(src, tmp_path / "ids.csv")
    assert done.returncode == 0 and _side_ids(tmp_path / "ids.csv") == ["1"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_side_file_mode_follows_the_umask(tmp_path: Path, umask: int):
    src = tmp_path / "in.csv"
    _write_csv(src, TRICKY[:2])
    side = tmp_path / "ids.csv"
    done = subprocess.run(
        ["bash", "-c", f'umask {umask:03o} && exec bash "$0" "$1" "$2"', str(SCRIPT), str(src), str(side)],
        env={**os.environ, "PIPEKIT_NOW": NOW.isoformat()}, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert side.stat().st_mode & 0o777 == 0o666 & ~umask
