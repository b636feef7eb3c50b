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
