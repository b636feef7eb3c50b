"""Validation collects every problem at once and never raises."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

from pipekit.core import DEFAULT_REQUIRED, Problem, ValidationReport, validate


def test_validate_collects_every_problem_at_once(messy_customers: pd.DataFrame) -> None:
    report = validate(messy_customers)
    assert report.ok and report.rows == 8 and report.required == DEFAULT_REQUIRED
    assert report.problems == (
        Problem("name", "null", 2, (4, 6)),
        Problem("email", "malformed_email", 1, (7,)),
        Problem("timestamp", "unparsable_timestamp", 1, (3,)),
    )


def test_missing_columns_and_data_problems_reported_together() -> None:
    frame = pd.DataFrame({"id": ["1", ""], "timestamp": ["nope", "2020-01-01"]})
    report = validate(frame)
    assert not report.ok
    assert report.missing_columns == ("name", "email")
    kinds = [(p.column, p.kind) for p in report.problems]
    assert kinds == [
        ("id", "null"),
        ("name", "missing_column"),
        ("email", "missing_column"),
        ("timestamp", "unparsable_timestamp"),
    ]
    assert "MISSING required column(s): name, email" in report.summary()


def test_row_numbers_are_one_based_with_offset_and_capped() -> None:
    frame = pd.DataFrame(
        {"id": [None] * 25, "name": ["a"] * 25, "email": ["a@b.co"] * 25, "timestamp": ["2020-01-01"] * 25}
    )
    report = validate(frame, row_offset=1000)
    (problem,) = report.problems
    assert problem.count == 25
    assert problem.sample_rows == tuple(range(1001, 1011))


def test_custom_required_and_column_names() -> None:
    frame = pd.DataFrame({"CustomerID": ["1"], "Mail": ["bad"], "When": ["2020-13-01"]})
    report = validate(frame, ["CustomerID"], email_column="Mail", timestamp_column="When")
    assert report.ok
    assert {(p.column, p.kind) for p in report.problems} == {
        ("Mail", "malformed_email"),
        ("When", "unparsable_timestamp"),
    }


def test_whitespace_around_an_email_is_not_malformed() -> None:
    frame = pd.DataFrame({"id": ["1"], "name": ["a"], "email": ["  A@B.co "], "timestamp": ["2020-01-01"]})
    assert validate(frame).problems == ()


def test_validate_accepts_arrow_tables_and_empty_data() -> None:
    table = pa.table({"id": pa.array([], pa.string()), "name": pa.array([], pa.string())})
    report = validate(table)
    assert report.rows == 0 and report.missing_columns == ("email", "timestamp")


def test_merge_adds_counts_and_keeps_first_samples() -> None:
    frame = pd.DataFrame(
        {
            "id": ["1", None, None],
            "name": ["a", "b", "c"],
            "email": ["x", "a@b.co", "y"],
            "timestamp": ["2020-01-01"] * 3,
        }
    )
    first = validate(frame.iloc[:2].reset_index(drop=True))
    second = validate(frame.iloc[2:].reset_index(drop=True), row_offset=2)
    merged = first.merge(second)
    assert merged == validate(frame)
    assert merged.rows == 3


def test_report_to_dict_is_json_and_summary_is_text(messy_customers: pd.DataFrame) -> None:
    report = validate(messy_customers)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and data["rows"] == 8
    assert data["problems"][0] == {"column": "name", "kind": "null", "count": 2, "sample_rows": [4, 6]}
    text = report.summary()
    assert "name: 2 null (rows 4, 6)" in text and "timestamp: 1 unparsable timestamp (rows 3)" in text
    assert report.count("null") == 2 and report.count("null", "email") == 0


def test_clean_data_has_no_problems() -> None:
    report = validate(
        pd.DataFrame({"id": ["1"], "name": ["A"], "email": ["a@b.co"], "timestamp": ["2020-01-01T00:00:00Z"]})
    )
    assert report == ValidationReport(DEFAULT_REQUIRED, (), (), 1)
    assert "no data problems" in report.summary()
