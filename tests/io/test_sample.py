"""pipekit.sample's narrow layout (the benchmark's 6-column ~90-100 bytes-a-row customers file)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from pipekit.sample import CUSTOMER_COLUMNS, NARROW_COLUMNS, write_customers_csv


def _read(path: Path) -> pa.Table:
    text_columns = {c: pa.string() for c in NARROW_COLUMNS}
    return pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=text_columns, strings_can_be_null=False),
    )


def test_narrow_layout_columns_and_size(tmp_path: Path) -> None:
    path = write_customers_csv(tmp_path / "n.csv", 10_000, seed=3, layout="narrow")
    assert path.read_text().splitlines()[0] == ",".join(NARROW_COLUMNS)
    assert NARROW_COLUMNS == ("id", "name", "email", "timestamp", "phone", "country")
    table = _read(path)
    assert table.num_rows == 10_000 and table.column_names == list(NARROW_COLUMNS)
    assert 90 <= path.stat().st_size / 10_000 <= 100
    # It is the standard sample's people: same ids, names, emails, timestamps and phones.
    standard = write_customers_csv(tmp_path / "s.csv", 10_000, seed=3)
    wide = pacsv.read_csv(
        standard,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in CUSTOMER_COLUMNS}, strings_can_be_null=False
        ),
    )
    for column in ("id", "name", "email", "timestamp", "phone"):
        assert table[column].equals(wide[column]), column


def test_narrow_layout_is_deterministic_per_seed(tmp_path: Path) -> None:
    a = write_customers_csv(tmp_path / "a.csv", 3_000, seed=5, layout="narrow").read_bytes()
    b = write_customers_csv(tmp_path / "b.csv", 3_000, seed=5, layout="narrow").read_bytes()
    c = write_customers_csv(tmp_path / "c.csv", 3_000, seed=6, layout="narrow").read_bytes()
    assert a == b and a != c


def test_exact_duplicates_keep_their_country(tmp_path: Path) -> None:
    frame = _read(write_customers_csv(tmp_path / "n.csv", 10_000, seed=1, layout="narrow")).to_pandas()
    people = ["id", "name", "email", "timestamp", "phone"]
    # Rows equal on every other column are exact copies: their country must match too.
    assert frame.duplicated(subset=people).sum() > 100
    assert frame.duplicated(subset=people).sum() == frame.duplicated().sum()
    assert frame["country"].nunique() > 10


def test_unknown_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layout"):
        write_customers_csv(tmp_path / "x.csv", 10, layout="wide")
