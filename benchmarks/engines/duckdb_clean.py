"""The cleaning pipeline in DuckDB SQL: read_csv, one CREATE TABLE AS, two COPYs (CSV and Parquet)."""

from __future__ import annotations

import duckdb
from _common import EMAIL_MASK_PATTERN, REQUIRED, parse_args

# Title Case the way pipekit (Arrow utf8_title) and Python's str.title do: upper-case the first letter
# of every run of letters, lower-case the rest. DuckDB has no initcap, so split into letter/non-letter runs.
TITLE = r"array_to_string(list_transform(regexp_extract_all(lower({x}), '\pL+|\PL+'), lambda t: upper(t[1]) || t[2:]), '')"


def main() -> None:
    """Clean one CSV file with DuckDB."""
    src, out, now = parse_args(__doc__ or "")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # naive timestamps are UTC, as in pipekit
    columns = [
        r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_csv('{src}', all_varchar = true)").fetchall()
    ]
    trimmed = ", ".join(
        f"regexp_replace(coalesce(\"{c}\", ''), '^\\s+|\\s+$', '', 'g') AS \"{c}\"" for c in columns
    )
    not_blank = " AND ".join(f"\"{c}\" <> ''" for c in REQUIRED)
    normalised = ", ".join(
        TITLE.format(x=f"regexp_replace(\"{c}\", '\\s+', ' ', 'g')") + f' AS "{c}"' if c == "name"
        else f'lower("{c}") AS "{c}"' if c == "email"
        else f'"{c}"'
        for c in columns
    )  # fmt: skip
    keys = ", ".join(f'"{c}"' for c in columns)
    final = ", ".join(
        f"regexp_replace(\"{c}\", '(?s){EMAIL_MASK_PATTERN}', '\\1***\\2') AS \"{c}\""
        if c == "email"
        else f'"{c}"'
        for c in columns
    )
    con.execute(f"""
        CREATE TEMP TABLE cleaned AS
        WITH raw AS (SELECT row_number() OVER () AS rn, {trimmed} FROM read_csv('{src}', all_varchar = true)),
             kept AS (SELECT rn, {normalised} FROM raw WHERE {not_blank}),
             firsts AS (SELECT min(rn) AS rn, {keys} FROM kept GROUP BY ALL)
        SELECT {final}, TRY_CAST("timestamp" AS TIMESTAMPTZ) > TIMESTAMPTZ '{now.isoformat()}' AS is_future
        FROM firsts ORDER BY rn
    """)
    con.execute(f"COPY cleaned TO '{out}.parquet' (FORMAT parquet, COMPRESSION snappy)")
    con.execute(f"COPY cleaned TO '{out}.csv' (FORMAT csv, HEADER)")


if __name__ == "__main__":
    main()
