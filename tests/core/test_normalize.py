"""Names, emails, null/blank rows and duplicates: real cases and hypothesis properties."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipekit.core import (
    drop_duplicates,
    drop_duplicates_table,
    drop_nulls,
    drop_nulls_table,
    normalize_emails,
    normalize_names,
    title_case_name,
)
from pipekit.errors import ConfigError

# Characters real names use: Latin letters incl. accents, apostrophes, hyphens, spaces and tabs.
NAME_ALPHABET = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéÉèàÀçÇöÖüÜñÑåÅøØłŁșȘžŽıİßẞ'’- \t\u00a0")
)
EMAIL_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("o'brien", "O'Brien"),
        ("jean-luc", "Jean-Luc"),
        ("ÉLODIE", "Élodie"),
        ("  mary   ann\tsmith ", "Mary Ann Smith"),
        ("JOSÉ   garcía-lópez", "José García-López"),
        ("d’angelo", "D’Angelo"),
        ("O'Brien", "O'Brien"),
        ("", ""),
    ],
)
def test_title_case_name_real_names(raw: str, expected: str) -> None:
    assert title_case_name(raw) == expected


def test_normalize_names_keeps_nulls_index_and_name() -> None:
    names = pd.Series(["o'brien", None, "ÉLODIE"], index=[10, 11, 12], name="name")
    out = normalize_names(names)
    assert list(out.index) == [10, 11, 12]
    assert out.name == "name"
    assert out.iloc[0] == "O'Brien" and pd.isna(out.iloc[1]) and out.iloc[2] == "Élodie"


def test_normalize_emails_trims_and_lowercases() -> None:
    out = normalize_emails(pd.Series(["  John.Smith@Example.COM\t", None, "a@b.co"]))
    assert out.iloc[0] == "john.smith@example.com"
    assert pd.isna(out.iloc[1])
    assert out.iloc[2] == "a@b.co"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=NAME_ALPHABET, max_size=25), min_size=1, max_size=20))
def test_normalizing_names_twice_equals_once(names: list[str]) -> None:
    once = normalize_names(pd.Series(names, dtype=object))
    twice = normalize_names(once)
    assert once.tolist() == twice.tolist()
    for value in once:
        assert value == value.strip() and "  " not in value


@settings(max_examples=300, deadline=None)
@given(st.lists(EMAIL_TEXT, min_size=1, max_size=20))
def test_normalizing_emails_twice_equals_once(emails: list[str]) -> None:
    once = normalize_emails(pd.Series(emails, dtype=object))
    assert normalize_emails(once).tolist() == once.tolist()


def test_drop_nulls_counts_empty_and_whitespace_as_null() -> None:
    frame = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4", "5", "6"],
            "name": ["a", "", "   ", None, "\t\n", "b"],
            "email": ["x@y.z"] * 5 + [float("nan")],
            "timestamp": ["2020-01-01"] * 6,
            "notes": [None] * 6,  # not required: nulls here keep the row
        }
    )
    out, dropped = drop_nulls(frame)
    assert dropped == 5
    assert out["id"].tolist() == ["1"]
    assert frame.shape == (6, 5), "the input must not be modified"


def test_drop_nulls_only_checks_given_present_columns() -> None:
    frame = pd.DataFrame({"id": ["1", None], "name": [None, "b"]})
    out, dropped = drop_nulls(frame, ["name", "not_there"])
    assert dropped == 1 and len(out) == 1 and pd.isna(out["id"].iloc[0])


def test_drop_nulls_on_non_string_columns() -> None:
    frame = pd.DataFrame({"id": [1.0, float("nan"), 3.0], "name": ["a", "b", "c"]})
    out, dropped = drop_nulls(frame, ["id", "name"])
    assert dropped == 1 and out["name"].tolist() == ["a", "c"]


def test_drop_duplicates_exact_rows_keeps_first_in_order() -> None:
    frame = pd.DataFrame(
        {"id": ["1", "2", "1", "3", "2"], "v": ["a", "b", "a", "c", "x"]}, index=[5, 6, 7, 8, 9]
    )
    out, dropped = drop_duplicates(frame)
    assert dropped == 1
    assert list(out.index) == [5, 6, 8, 9]


def test_drop_duplicates_by_keys() -> None:
    frame = pd.DataFrame({"id": ["1", "2", "1", "3", "2"], "v": ["a", "b", "z", "c", "x"]})
    out, dropped = drop_duplicates(frame, ["id"])
    assert dropped == 2
    assert out["v"].tolist() == ["a", "b", "c"]


def test_drop_duplicates_unknown_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nope"):
        drop_duplicates(pd.DataFrame({"id": ["1"]}), ["nope"])


def test_drop_duplicates_treats_nulls_as_equal_like_pandas() -> None:
    frame = pd.DataFrame({"id": [None, None, "1"], "v": ["a", "a", "a"]})
    out, dropped = drop_duplicates(frame)
    assert dropped == 1 and len(out) == 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["1", "2", "3", None]), st.sampled_from(["a", "b", ""])), max_size=40),
    st.sampled_from([None, ("k",), ("v",), ("k", "v")]),
)
def test_drop_duplicates_matches_reference(
    rows: list[tuple[str | None, str]], keys: tuple[str, ...] | None
) -> None:
    frame = pd.DataFrame(rows, columns=["k", "v"], dtype=object)
    out, dropped = drop_duplicates(frame, keys)
    # Reference: walk the rows once, keep a row the first time its key is seen.
    seen: set[tuple] = set()
    expected = []
    for i, row in enumerate(rows):
        key = row if keys is None else tuple(row[["k", "v"].index(k)] for k in keys)
        if key not in seen:
            seen.add(key)
            expected.append(i)
    assert list(out.index) == expected
    assert dropped == len(rows) - len(expected)


def test_table_kernels_match_pandas_wrappers() -> None:
    table = pa.table({"id": ["1", "2", "2", None], "name": ["a", " ", "b", "c"]})
    t_out, t_dropped = drop_nulls_table(table, ["id", "name"])
    p_out, p_dropped = drop_nulls(table.to_pandas(), ["id", "name"])
    assert t_dropped == p_dropped == 2
    assert t_out.column("id").to_pylist() == p_out["id"].tolist()
    d_out, d_dropped = drop_duplicates_table(pa.table({"k": ["x", "y", "x"]}))
    assert d_dropped == 1 and d_out.column("k").to_pylist() == ["x", "y"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(
                list("ab \t\n\r\x0b\x0c\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000\u200b-'é")
            ),
            max_size=12,
        ),
        max_size=10,
    )
)
def test_names_kernel_only_rewrites_what_collapsing_changes(names: list[str]) -> None:
    """The cheap "needs collapsing" test never misses a value the full regex rewrite would change."""
    import pyarrow.compute as pc

    from pipekit.core.normalize import _WHITESPACE_RUN, names_kernel

    array = pa.array([*names, None, "  x\t\ty  "], pa.string())

    def reference(values: pa.Array) -> list[str | None]:
        collapsed = pc.replace_substring_regex(values, _WHITESPACE_RUN, " ")
        return pc.utf8_title(pc.utf8_trim_whitespace(collapsed)).to_pylist()

    assert names_kernel(array).to_pylist() == reference(array)
    # Sliced arrays (a batch of a bigger one) and large_string take the byte-level path too.
    assert names_kernel(array.slice(1)).to_pylist() == reference(array.slice(1))
    assert names_kernel(array.cast(pa.large_string())).to_pylist() == reference(array)


_EDGE_TEXT = st.text(
    alphabet=st.sampled_from(list("aZ0 \t\n\r\x0b\x0c\x1c\x1f\x7f\x85\xa0\u1680\u2003\u3000\ufeffé~")),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), _EDGE_TEXT), max_size=12))
def test_trim_and_blank_fast_paths_match_the_full_kernels(values: list[str | None]) -> None:
    """Skipping the trim of a column that needs none, and the blank test on trimmed columns, change nothing."""
    import pyarrow.compute as pc

    from pipekit.core.normalize import required_mask, trim_kernel

    column = pa.array(values, pa.string())
    assert trim_kernel(column).to_pylist() == pc.utf8_trim_whitespace(column).to_pylist()
    table = pa.table({"a": column, "b": pa.array(list(reversed(values)), pa.string())})
    trimmed = pa.table({name: trim_kernel(table.column(name)) for name in table.column_names})
    fast = required_mask(trimmed, ["a", "b"], trimmed=True)
    full = required_mask(table, ["a", "b"])
    assert fast is not None and full is not None
    assert fast.to_pylist() == full.to_pylist()
