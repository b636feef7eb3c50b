"""Timestamp parsing (ISO-8601, naive = UTC) and the future flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipekit.core import UTC_US, flag_future, future_flags, parse_timestamps
from pipekit.errors import ValidationError

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-01-15", datetime(2023, 1, 15, tzinfo=UTC)),
        ("2023-01-15T10:30:00", datetime(2023, 1, 15, 10, 30, tzinfo=UTC)),
        ("2023-01-15 10:30:00", datetime(2023, 1, 15, 10, 30, tzinfo=UTC)),
        ("2023-01-15 10:30", datetime(2023, 1, 15, 10, 30, tzinfo=UTC)),
        ("2023-01-15T10:30:00Z", datetime(2023, 1, 15, 10, 30, tzinfo=UTC)),
        ("2023-01-15t10:30:00z", datetime(2023, 1, 15, 10, 30, tzinfo=UTC)),
        ("2023-01-15T10:30:00+05:30", datetime(2023, 1, 15, 5, 0, tzinfo=UTC)),
        ("2023-01-15T10:30:00-0200", datetime(2023, 1, 15, 12, 30, tzinfo=UTC)),
        ("2023-01-15T10:30:00.123456Z", datetime(2023, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)),
        ("2023-01-15T10:30:00.5", datetime(2023, 1, 15, 10, 30, 0, 500000, tzinfo=UTC)),
        ("2023-01-15T10:30:00,25+01:00", datetime(2023, 1, 15, 9, 30, 0, 250000, tzinfo=UTC)),
        ("2023-01-15T10:30:00.123456789Z", datetime(2023, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)),
        ("  2023-01-15T10:30:00Z  ", datetime(2023, 1, 15, 10, 30, tzinfo=UTC)),
    ],
)
def test_parse_timestamps_iso_forms(raw: str, expected: datetime) -> None:
    out = parse_timestamps(pa.array([raw]))
    assert out.type == UTC_US
    assert out[0].as_py() == expected


@pytest.mark.parametrize(
    "raw",
    ["garbage", "", "15/01/2023", "2023-13-01", "2023-02-30T00:00:00", "2023-01-15T25:00:00", "1700000000"],
)
def test_unparsable_values_become_null(raw: str) -> None:
    out = parse_timestamps(pa.array(["2023-01-15", raw, None]))
    assert out.to_pylist() == [datetime(2023, 1, 15, tzinfo=UTC), None, None]


def test_parse_accepts_pandas_series_and_timestamp_arrays() -> None:
    assert parse_timestamps(pd.Series(["2023-01-15", None]))[0].as_py() == datetime(2023, 1, 15, tzinfo=UTC)
    naive = pa.array([datetime(2023, 1, 15)], type=pa.timestamp("ms"))
    assert parse_timestamps(naive)[0].as_py() == datetime(2023, 1, 15, tzinfo=UTC)
    chunked = pa.chunked_array([["2023-01-15"], ["bad"]])
    assert parse_timestamps(chunked).null_count == 1


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from([None, 0, 330, -120, 60]),
    st.sampled_from(["T", " "]),
)
def test_parse_round_trips_isoformat(moment: datetime, offset_minutes: int | None, sep: str) -> None:
    if offset_minutes is not None:
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    parsed = parse_timestamps(pa.array([moment.isoformat(sep=sep)]))[0].as_py()
    expected = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    assert parsed == expected


def test_flag_future_counts_and_keeps_unparsable_rows() -> None:
    frame = pd.DataFrame(
        {"timestamp": ["2024-12-31T23:59:59", "2025-01-01T00:00:01", "bad", None, "2099-01-01"]}
    )
    out, n_future, n_unparsable = flag_future(frame, now=NOW)
    assert (n_future, n_unparsable) == (2, 1)
    assert len(out) == 5
    assert out["is_future"].tolist() == [False, True, pd.NA, pd.NA, True]
    assert "is_future" not in frame.columns, "the input must not be modified"


def test_flag_future_naive_now_is_utc_and_offsets_count() -> None:
    # 2025-01-01T01:30+02:00 is 2024-12-31T23:30Z: in the past relative to a naive midnight "now".
    frame = pd.DataFrame({"ts": ["2025-01-01T01:30:00+02:00", "2025-01-01T00:30:00"]})
    out, n_future, _ = flag_future(frame, "ts", now=datetime(2025, 1, 1), flag_column="later")
    assert out["later"].tolist() == [False, True] and n_future == 1


def test_flag_future_missing_column_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="'timestamp'"):
        flag_future(pd.DataFrame({"id": ["1"]}), now=NOW)


def test_future_flags_kernel_matches_wrapper() -> None:
    values = ["2024-01-01", "2030-01-01", "x"]
    flags, n_future, n_bad = future_flags(pa.array(values), now=NOW)
    out, p_future, p_bad = flag_future(pd.DataFrame({"timestamp": values}), now=NOW)
    assert (n_future, n_bad) == (p_future, p_bad) == (1, 1)
    assert flags.to_pylist() == [False, True, None]
    assert out["is_future"].tolist() == [False, True, pd.NA]


def test_mixed_array_goes_through_every_fallback() -> None:
    """Naive, zoned, lower-case, long-fraction and impossible values in one array each parse as alone."""
    values = [
        "2023-01-15T10:30:00",
        "2023-01-15T10:30:00+05:30",
        "2023-01-15t10:30:00z",
        "2023-01-15T10:30:00.1234567",
        "2023-02-30",
        "nope",
        None,
        "2023-01-15",
    ]
    together = parse_timestamps(pa.array(values)).to_pylist()
    alone = [parse_timestamps(pa.array([v], pa.string()))[0].as_py() for v in values]
    assert together == alone
    assert together[4] is None and together[5] is None and together[6] is None
    assert together[1] == datetime(2023, 1, 15, 5, 0, tzinfo=UTC)


@given(
    st.lists(
        st.tuples(
            st.integers(1, 9999),
            st.integers(0, 14),
            st.integers(0, 33),
            st.integers(0, 25),
            st.integers(0, 61),
        ),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=150, deadline=None)
def test_impossible_dates_are_null_and_do_not_disturb_the_rest(parts: list[tuple[int, ...]]) -> None:
    # Grammar-valid but impossible values (month 13, Feb 30, hour 24, minute 60) are nulled before the
    # fast whole-array cast; every value must agree with Python's own ISO parser.
    raw = [f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00" for y, mo, d, h, mi in parts]

    def expected(value: str) -> datetime | None:
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            return None

    assert parse_timestamps(pa.array(raw)).to_pylist() == [expected(v) for v in raw]


_ISO_PARTS = st.tuples(
    st.sampled_from(["2024-02-29", "1999-12-31", "2023-01-15"]),
    st.sampled_from(["", "T10", "T10:30", " 10:30:05", "t10:30:05.123", "T10:30:05,123456789"]),
    st.sampled_from(["", "Z", "z", "+05", "-05", "+0530", "-05:30", "+00:00"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), _ISO_PARTS, st.text(alphabet="0123456789-+:TZ .", max_size=25)), max_size=15
    )
)
def test_zone_detection_matches_the_pattern_on_valid_values(items: list[object]) -> None:
    """The byte-level zone test equals the _HAS_ZONE regex wherever the _ISO grammar matched."""
    import pyarrow.compute as pc

    from pipekit.core.timestamps import _HAS_ZONE, _ISO, _zoned

    values = [
        None
        if item is None
        else (item[0] + (item[1] + item[2] if item[1] else "") if isinstance(item, tuple) else item)
        for item in items
    ]
    text = pa.array(values, pa.string())
    valid = pc.fill_null(pc.match_substring_regex(text, _ISO), False)
    expected = pc.and_(valid, pc.fill_null(pc.match_substring_regex(text, _HAS_ZONE), False))
    assert _zoned(text, valid).to_pylist() == expected.to_pylist()
    sliced = text.slice(1)
    assert _zoned(sliced, valid.slice(1)).to_pylist() == expected.slice(1).to_pylist()


# --- the common-shape reader against the general path ---------------------------------------------

_PIECES = st.one_of(
    st.sampled_from(["", " ", "T", "t", "Z", "z", ".", ",", ":", "+", "-", "x", "\u00a0"]),
    st.integers(0, 9999).map(lambda v: f"{v:02d}"),
    st.integers(0, 9999).map(lambda v: f"{v:04d}"),
)


@st.composite
def _spellings(draw: st.DrawFn) -> str:
    """Timestamps of every shape the grammar knows, near-misses of them, and noise."""
    year = draw(st.integers(0, 9999))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if draw(st.booleans()):
        text += draw(st.sampled_from("Tt ")) + f"{hour:02d}"
        if draw(st.integers(0, 4)):
            text += f":{minute:02d}"
            if draw(st.integers(0, 4)):
                text += f":{second:02d}"
                if draw(st.booleans()):
                    text += draw(st.sampled_from(".,")) + draw(st.text("0123456789", min_size=0, max_size=11))
        zone = draw(st.integers(0, 5))
        zh, zm = draw(st.integers(0, 30)), draw(st.integers(0, 70))
        text += ["", "Z", "z", f"+{zh:02d}", f"-{zh:02d}{zm:02d}", f"+{zh:02d}:{zm:02d}"][zone]
    if draw(st.integers(0, 5)) == 0:  # a near-miss: one piece added, dropped or swapped
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(_PIECES) + text[at + draw(st.integers(0, 2)) :]
    if draw(st.integers(0, 6)) == 0:
        text = draw(st.sampled_from([" ", "  ", "\t"])) + text + draw(st.sampled_from(["", " "]))
    return text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_spellings(), st.none(), st.text(max_size=30)), min_size=1, max_size=60))
def test_common_shape_reader_matches_the_general_path(values: list[str | None]) -> None:
    import pyarrow.compute as pc

    from pipekit.core.timestamps import _parse_trimmed

    array = pa.array(values, pa.string())
    expected = _parse_trimmed(pc.utf8_trim_whitespace(array))
    got = parse_timestamps(array)
    assert got.type == UTC_US
    # As microseconds: the general path reads year 0, which Python's datetime cannot hold.
    assert got.cast(pa.int64()).to_pylist() == expected.cast(pa.int64()).to_pylist()


def test_common_shapes_are_read_without_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipekit.core.timestamps as ts

    calls: list[int] = []
    general = ts._parse_trimmed
    monkeypatch.setattr(ts, "_parse_trimmed", lambda text: calls.append(len(text)) or general(text))
    values = ["2016-12-29T13:03:43", "2018-05-09 13:25:30", "2019-05-16T17:36:06.314", "", None,
              "2017-04-18T02:21:09+00:00", "2020-10-10T05:18:54-05:00", "2022-07-11T11:38:08Z",
              "2023-02-30 10:00:00", "2024-02-29T23:59:59.1234567+05:30"]  # fmt: skip
    got = ts.parse_timestamps(pa.array(values)).to_pylist()
    assert calls == []
    assert got[0] == datetime(2016, 12, 29, 13, 3, 43, tzinfo=UTC)
    assert got[2] == datetime(2019, 5, 16, 17, 36, 6, 314000, tzinfo=UTC)
    assert got[3] is None and got[4] is None and got[8] is None  # empty, null, Feb 30
    assert got[6] == datetime(2020, 10, 10, 10, 18, 54, tzinfo=UTC)
    assert got[9] == datetime(2024, 2, 29, 18, 29, 59, 123456, tzinfo=UTC)
    assert ts.parse_timestamps(pa.array(["2024-01-01", "not a date"])).to_pylist()[0] == datetime(
        2024, 1, 1, tzinfo=UTC
    )
    assert calls == [2]  # date only and text: the general path, for those rows only
