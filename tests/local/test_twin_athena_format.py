"""Pure checks of the Athena twin's result formatting and statement handling (no server needed)."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from pipekit.aws.athena import is_select
from pipekit.local.athena_twin import _UNLOAD, _athena_csv, _statement_kind

values = st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                             blacklist_characters="\r\x00"), max_size=20))


@given(st.lists(st.lists(values, min_size=2, max_size=2), max_size=20))
def test_result_csv_reads_back_to_the_same_values(rows: list[list[str | None]]) -> None:
    columns = [{"Name": "a"}, {"Name": "b,\"c\""}]
    text = _athena_csv(columns, rows)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == ["a", 'b,"c"']
    # NULL is an empty unquoted field; csv reads it (and an empty string) back as ""
    assert parsed[1:] == [["" if v is None else v for v in row] for row in rows]


def test_every_value_is_quoted_and_null_is_bare() -> None:
    assert _athena_csv([{"Name": "x"}, {"Name": "y"}], [["1", None]]) == '"x","y"\n"1",\n'


def test_statement_kinds_and_unload_parsing() -> None:
    assert _statement_kind("-- note\nSELECT 1") == "SELECT"
    assert _statement_kind("WITH a AS (SELECT 1) SELECT * FROM a") == "SELECT"
    assert _statement_kind("CREATE TABLE t (a int)") == "CREATE"
    m = _UNLOAD.match("UNLOAD (SELECT a FROM t WHERE b = 'x') TO 's3://b/p/' WITH (format = 'PARQUET')")
    assert m and m.group("query") == "SELECT a FROM t WHERE b = 'x'" and m.group("to") == "s3://b/p/"
    assert is_select("SELECT 1") and is_select("WITH a AS (SELECT 1) SELECT * FROM a")
    assert not is_select("SHOW TABLES") and not is_select("UNLOAD (SELECT 1) TO 's3://b/' WITH (format='PARQUET')")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_doubles_print_as_java_and_read_back(value: float) -> None:
    from pipekit.local.athena_format import java_double

    text = java_double(value)
    assert float(text) == value
    assert ("E" in text) == (value != 0 and not 1e-3 <= abs(value) < 1e7)
    assert "." in text and "e" not in text and "+" not in text


def test_trino_text_of_values() -> None:
    import datetime as dt
    from decimal import Decimal

    from pipekit.local.athena_format import format_value, java_float

    utc = dt.UTC
    assert format_value(1e8, "double") == "1.0E8"
    assert java_float(0.1) == "0.1"
    assert format_value(dt.datetime(2024, 1, 2, 3, 4, 5, 123456), "timestamp") == "2024-01-02 03:04:05.123"
    assert format_value(dt.datetime(2024, 1, 2, tzinfo=utc), "timestamp with time zone") == "2024-01-02 00:00:00.000 UTC"
    assert format_value(Decimal("1.50"), "decimal") == "1.50"
    assert format_value(True, "boolean") == "true"
    assert format_value(None, "varchar") is None
    assert format_value(dt.timedelta(days=1, seconds=1), "interval") == "1 00:00:01.000"


def test_parameters_and_statement_types() -> None:
    import pytest

    from pipekit.local.athena_twin import QueryFailed, _bind_parameters, _substatement_type

    assert _bind_parameters("SELECT ? WHERE a = '?' AND b = ?", ["1", "'x'"]) == "SELECT 1 WHERE a = '?' AND b = 'x'"
    with pytest.raises(QueryFailed):
        _bind_parameters("SELECT ?", [])
    assert _substatement_type("CREATE TABLE t WITH (format='PARQUET') AS SELECT 1", "CREATE") == "CREATE_TABLE_AS_SELECT"
    assert _substatement_type("CREATE EXTERNAL TABLE t (a int) LOCATION 's3://b/'", "CREATE") == "CREATE_TABLE"
    assert _substatement_type("-- c\nSHOW TABLES", "SHOW") == "SHOW_TABLES"


def test_glue_types_in_trino_spelling() -> None:
    from pipekit.local.athena_catalog import trino_type

    assert trino_type("string") == "varchar"
    assert trino_type("array<struct<a:int,b:string>>") == "array(row(a integer, b varchar))"
    assert trino_type("map<string,bigint>") == "map(varchar, bigint)"
    assert trino_type("decimal(10,2)") == "decimal(10,2)"
