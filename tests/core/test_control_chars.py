"""Control characters in values: stripped, rejected or kept per CleaningConfig.control_chars, counted."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipekit.core import (
    CONTROL_CHAR_MODES,
    CleaningConfig,
    ControlCharacterError,
    apply_control_chars,
    clean_table,
    normalize_batch,
)
from pipekit.errors import ConfigError, InputError

_TABLE = pa.table(
    {
        "id": ["1", "2", "3", "4"],
        "name": ["a\x00b", "tab\there", "\x1b[31mred", "ok"],
        "email": ["a@x.io", "b@x.io", "c@x.io", "d\x7f@x.io"],
        "timestamp": ["2020-01-01"] * 4,
        "note": ["line\nbreak\r\n", "c1\x85", None, "\x00"],
    }
)


def test_strip_removes_every_control_character_but_tab_cr_lf_and_counts_values() -> None:
    table, n = apply_control_chars(_TABLE, "strip")
    assert n == 5
    assert table.column("name").to_pylist() == ["ab", "tab\there", "[31mred", "ok"]
    assert table.column("email").to_pylist()[3] == "d@x.io"
    assert table.column("note").to_pylist() == ["line\nbreak\r\n", "c1", None, ""]


def test_reject_names_the_first_column_and_row_and_never_the_value() -> None:
    with pytest.raises(ControlCharacterError) as caught:
        apply_control_chars(_TABLE, "reject")
    error = caught.value
    assert isinstance(error, InputError) and error.exit_code == 2
    assert (error.column, error.row, error.codepoint) == ("name", 0, 0)
    assert "a\x00b" not in str(error) and "ab" not in error.message.split("(")[0].split("'")[-1]


def test_keep_leaves_values_and_still_counts_them() -> None:
    table, n = apply_control_chars(_TABLE, "keep")
    assert n == 5 and table.equals(_TABLE)


def test_the_pipeline_strips_by_default_and_a_nul_only_value_is_blank() -> None:
    assert CleaningConfig().control_chars == "strip" and set(CONTROL_CHAR_MODES) == {
        "strip",
        "reject",
        "keep",
    }
    table = _TABLE.set_column(0, "id", pa.array(["1", "\x00 ", "3", "4"]))
    out, counts = normalize_batch(table, CleaningConfig())
    assert counts["control_chars"] == 6 and counts["dropped_null"] == 1
    assert not any("\x00" in (v or "") for column in out.columns for v in column.to_pylist())
    cleaned, report = clean_table(_TABLE, CleaningConfig(control_chars="keep"))
    assert report.counts["control_chars"] == 5 and cleaned.column("name").to_pylist()[0] == "A\x00B"


def test_an_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="control_chars"):
        CleaningConfig(control_chars="drop")
