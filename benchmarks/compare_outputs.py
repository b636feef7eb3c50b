"""Compare two cleaned Parquet outputs as multisets of rows (DuckDB EXCEPT ALL), column by column.

The columns compared are the reference file's (so every input layout works); a column the other file
lacks makes the outputs differ and is listed under ``missing_columns``.
"""

from __future__ import annotations

import argparse
import json
import sys

import duckdb


def _columns(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]


def compare(reference: str, other: str, *, examples: int = 0) -> dict[str, object]:
    """Rows in each file, rows only in one of them, and how many differ per column (as multisets)."""
    con = duckdb.connect()
    ref_cols, other_cols = _columns(con, reference), _columns(con, other)
    missing = [c for c in ref_cols if c not in other_cols]
    extra = [c for c in other_cols if c not in ref_cols]
    shared = [c for c in ref_cols if c in other_cols]
    cols = ", ".join(f'"{c}"' for c in shared)
    a, b = (
        f"(SELECT {cols} FROM read_parquet('{reference}'))",
        f"(SELECT {cols} FROM read_parquet('{other}'))",
    )
    rows_a, rows_b = (con.execute(f"SELECT count(*) FROM {x}").fetchone()[0] for x in (a, b))
    only_a = con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0]
    only_b = con.execute(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})").fetchone()[0]
    result: dict[str, object] = {
        "rows_reference": rows_a,
        "rows_other": rows_b,
        "only_reference": only_a,
        "only_other": only_b,
    }
    if missing or extra:
        result["missing_columns"] = missing
        result["extra_columns"] = extra
    if only_a or only_b:
        # Which columns explain the difference: compare the multiset of each column on its own.
        per_column = {}
        for c in shared:
            n = con.execute(
                f'SELECT count(*) FROM ((SELECT "{c}" FROM {a}) EXCEPT ALL (SELECT "{c}" FROM {b}))'
            ).fetchone()[0]
            if n:
                per_column[c] = n
        result["differing_columns"] = per_column
        if examples:
            result["examples_only_reference"] = con.execute(
                f"SELECT * FROM ({a} EXCEPT ALL {b}) LIMIT {examples}"
            ).fetchall()
            result["examples_only_other"] = con.execute(
                f"SELECT * FROM ({b} EXCEPT ALL {a}) LIMIT {examples}"
            ).fetchall()
    result["same_rows"] = not only_a and not only_b and not missing and not extra
    return result


def main() -> None:
    """CLI: compare REFERENCE.parquet OTHER.parquet [--examples N]."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("reference")
    parser.add_argument("other")
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    result = compare(args.reference, args.other, examples=args.examples)
    if args.json:
        print(json.dumps(result, default=str))
        sys.exit(0)
    for k, v in result.items():
        print(f"{k}: {v}")
    sys.exit(0 if result["same_rows"] else 1)


if __name__ == "__main__":
    main()
