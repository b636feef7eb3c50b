"""GX 1.x suite built from the core's rules: missing columns fail with a list, reports saved, no raw PII."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pipekit.core import EMAIL_PATTERN
from pipekit.errors import InputError, ValidationError

gx = pytest.importorskip("great_expectations", reason='needs pipekit[gx]: pip install "pipekit[gx]"')

from pipekit.quality import QualityRules, build_suite, check_csv, validate_csv  # noqa: E402

GOOD = (
    'id,name,email,timestamp,extra\n'
    '1,"Smith, John",john.smith@example.com,2024-01-01T10:00:00+02:00,x\n'
    '2,"Multi\nLine",ANNA@Example.org ,2030-01-01 00:00:00Z,y\n'
)
MESSY = (
    "id,name,email,timestamp\n"
    "1,Ann,ann.secret@example.com,2024-01-01\n"
    "2,   ,bob.private@nowhere,not a date\n"
    "3,Cy,,2024-02-30T00:00:00\n"
)


def test_suite_is_built_from_core_rules():
    rules = QualityRules.from_core()
    assert rules.required == ("id", "name", "email", "timestamp")
    assert EMAIL_PATTERN.strip("^$") in rules.email_regex
    suite = build_suite(rules)
    kinds = [e.expectation_type for e in suite.expectations]
    assert kinds.count("expect_column_values_to_not_be_null") == 4
    assert "expect_table_columns_to_match_set" in kinds
    assert kinds.count("expect_column_values_to_match_regex") == 1
    assert "expect_column_values_to_be_pipekit_timestamps" in kinds


def test_clean_file_passes_and_reports_are_saved(tmp_path: Path):
    src = tmp_path / "good.csv"
    src.write_text(GOOD)
    result, json_path, html_path = check_csv(src, tmp_path / "out")
    assert result.success and result.ok and result.rows == 2
    saved = json.loads(json_path.read_text())
    assert saved["success"] is True and saved["gx_result"]["statistics"]["evaluated_expectations"] == 7
    page = html_path.read_text()
    assert "<html" in page and "Gate (required columns): PASSED" in page
    assert "all 6 checks passed on the raw file" in page


def test_data_problems_are_listed_masked_and_do_not_fail_by_default(tmp_path: Path):
    src = tmp_path / "messy.csv"
    src.write_text(MESSY)
    result, json_path, html_path = check_csv(src, tmp_path / "out")
    assert result.ok and not result.success
    summary = result.summary()
    assert "column 'name': expect_column_values_to_not_be_null failed 1 of 3 rows (rows 2)" in summary
    assert "column 'email': expect_column_values_to_match_regex failed 1 of 3 rows (rows 2)" in summary
    assert "column 'timestamp': expect_column_values_to_be_pipekit_timestamps failed 2 of 3 rows (rows 2, 3)" in summary
    # Offending values of sensitive columns are masked in every artefact; non-sensitive ones are kept.
    for text in (json_path.read_text(), html_path.read_text(), summary):
        assert "bob.private" not in text and "ann.secret" not in text
    assert "b***@nowhere" in json_path.read_text()
    # The gate passed: problems in the raw file are a profile (the clean step removes them), not a FAILED report.
    page = html_path.read_text()
    assert "Gate (required columns): PASSED" in page and "FAILED" not in page
    assert "4 of 6 checks found values in the raw file" in page
    assert json.loads(json_path.read_text())["gate"] == "PASS"
    assert "not a date" in json_path.read_text()
    with pytest.raises(ValidationError):
        check_csv(src, tmp_path / "strict", fail_on_data_problems=True)


def test_missing_columns_fail_with_a_clear_list_after_saving_reports(tmp_path: Path):
    src = tmp_path / "no_email.csv"
    src.write_text("id,name,timestamp\n1,Ann,2024-01-01\n")
    before = src.read_bytes()
    with pytest.raises(ValidationError) as err:
        check_csv(src, tmp_path / "out", label="no_email.csv (landing)")
    message = str(err.value)
    assert "no_email.csv (landing): data quality check failed" in message
    assert "required columns missing: email (found: id, name, timestamp)" in message
    assert "Traceback" not in message
    assert err.value.report.missing_columns == ("email",)
    assert (tmp_path / "out" / "no_email_gx.json").exists() and (tmp_path / "out" / "no_email_gx.html").exists()
    assert "Gate (required columns): FAILED: required columns missing: email" in (tmp_path / "out" / "no_email_gx.html").read_text()
    assert src.read_bytes() == before


def test_unreadable_input_is_an_input_error(tmp_path: Path):
    src = tmp_path / "latin.csv"
    src.write_bytes("id,name,email,timestamp\n1,Jos\xe9,j@x.com,2024-01-01\n".encode("latin-1"))
    with pytest.raises(InputError, match="encoding"):
        validate_csv(src)
    assert validate_csv(src, encoding="latin-1").ok
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError):
        validate_csv(empty)


def test_gx_info_noise_stays_out_of_the_log(tmp_path: Path, caplog):
    src = tmp_path / "good.csv"
    src.write_text(GOOD)
    with caplog.at_level(logging.INFO):
        validate_csv(src)
    noise = [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]
    assert noise == []
