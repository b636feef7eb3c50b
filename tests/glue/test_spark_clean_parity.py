"""``clean_file_spark`` against ``clean_file``: the same bytes of CSV, the same Parquet rows in the same
order, the same counts and validation report, on generated and hand-made messy customers."""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipekit import clean_file
from pipekit.core import CleaningConfig, MaskingPolicy
from pipekit.errors import InputError, ValidationError
from pipekit.sample import CUSTOMER_COLUMNS, write_customers_csv

pytestmark = pytest.mark.spark

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PIPEKIT = Path(sys.executable).with_name("pipekit")
KEY = b"k" * 32
#: Fields compared between the engines' reports (timings, settings and paths differ by design).
SAME = ("rows_read", "rows_written", "quarantined", "counts", "csv_formula_guard", "validation")


@pytest.fixture
def small_splits(spark: Any) -> Iterator[Any]:
    """Split every file into ~16 KiB scan partitions, so file order has to survive many of them."""
    old = {
        k: spark.conf.get(k) for k in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    }
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16k")
    spark.conf.set("spark.sql.files.openCostInBytes", "1k")
    yield spark
    for k, v in old.items():
        spark.conf.set(k, v)


def messy_rows() -> list[list[str]]:
    """Hand-made rows (CUSTOMER_COLUMNS): Unicode names, blanks, control characters, formula-like text,
    duplicates that match only once normalised, future and unparsable timestamps, quoted line breaks."""
    rows = [
        ["1", "ǆemal ǉubić", "Dzemal@Example.com", "+1 555 0100", "1 Main St", "2024-01-01T00:00:00Z"],
        ["2", "İSTANBUL kaya", " ISTANBUL@example.com ", "", "Taksim\nBeyoğlu", "2099-06-01 12:00:00"],
        ["3", "o'brien", "obrien@example.com", '=HYPERLINK("x")', "+cmd|' /C calc'!A0", "2023-05-05"],
        ["4", "  ", "blank@example.com", "", "", "2023-01-01"],  # blank required name: dropped
        ["5", "ana\x00 maría", "ana@example.com", "-12.5", "@SUM(A1)", "not a time"],
        ["6", "O'BRIEN", "OBRIEN@EXAMPLE.COM", '=HYPERLINK("x")', "+cmd|' /C calc'!A0", "2023-05-05"],
        ["3", "  o'brien ", "obrien@example.com ", '=HYPERLINK("x")', "+cmd|' /C calc'!A0", "2023-05-05"],
        [
            "7",
            "jean-luc   picard",
            "jl@example.com",
            "\t0123",
            'Line one\r\nline two, "quoted"',
            "2031-13-40",
        ],
        ["8", "", "", "", "", ""],
        ["9", "\x1bzoë", "zoe@exämple.com", "12", "", "2030-01-01T00:00:00+02:00"],
        ["1", "ǆemal ǉubić", "dzemal@example.com", "+1 555 0100", "1 Main St", "2024-01-01T00:00:00Z"],
        ["\x0010", "\u00a0Ünal\u2003", "\x00@\x00", "", "", "2024-02-30"],  # NUL first on its line
        ["11", "ΣΊΣΥΦΟΣ ǅ", "ß@EXAMPLE.ORG", "", "", "2020-01-01T00:00:00.123456+00:00"],
    ]
    return rows


def write_messy(path: Path, n: int = 400, seed: int = 5) -> Path:
    """Generated standard-layout customers with the hand-made rows spread through them."""
    write_customers_csv(path, n, seed=seed)
    with open(path, encoding="utf-8", newline="") as fh:
        records = list(csv.reader(fh))
    header, body = records[0], records[1:]
    assert tuple(header) == CUSTOMER_COLUMNS
    extra = messy_rows()
    for i, row in enumerate(extra):
        body.insert((i * 37) % (len(body) + 1), row)
    body += extra[:3]  # exact duplicates at the end
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *body])
    return path


def both(src: Path, out: Path, spark: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run both engines; assert the outputs agree byte for byte (CSV) and row for row (Parquet)."""
    expected = clean_file(src, out / "file", now=NOW, **kwargs)
    got = clean_file_spark(src, out / "spark", now=NOW, spark=spark, **kwargs)
    paths = {k: Path(v) for k, v in got.outputs.items()}
    assert {k: p.name for k, p in paths.items()} == {k: Path(v).name for k, v in expected.outputs.items()}
    assert paths["csv"].read_bytes() == Path(expected.outputs["csv"]).read_bytes()
    file_rows = pq.read_table(expected.outputs["parquet"])
    spark_rows = pq.read_table(paths["parquet"])
    assert spark_rows.schema == file_rows.schema
    assert spark_rows.to_pylist() == file_rows.to_pylist()  # same rows, same order
    a, b = expected.to_dict(), got.to_dict()
    assert {k: b[k] for k in SAME} == {k: a[k] for k in SAME}
    assert b["input"] == a["input"]  # path, bytes, sha256, encoding
    assert b["settings"]["engine"] == "spark"
    assert not list((out / "spark").glob(".pipekit-staging-*"))
    return a, b


def clean_file_spark(*args: Any, **kwargs: Any) -> Any:
    from pipekit.spark import clean_file_spark as run

    return run(*args, **kwargs)


def test_narrow_sample_over_many_partitions(small_splits: Any, tmp_path: Path) -> None:
    src = write_customers_csv(tmp_path / "narrow.csv", 4000, seed=3, layout="narrow")
    a, b = both(src, tmp_path, small_splits)
    assert b["settings"]["scan_partitions"] > 8
    assert b["settings"]["multiline"] is False and b["settings"]["plan"] == "python-split"
    assert a["counts"]["dropped_duplicate"] > 0 and a["counts"]["dropped_null"] > 0


def test_messy_rows_with_line_breaks_keyed_hash_and_dedup_keys(spark: Any, tmp_path: Path) -> None:
    src = write_messy(tmp_path / "messy.csv")
    a, b = both(src, tmp_path / "all", spark)
    assert b["settings"]["multiline"] is True and b["settings"]["multiline_detected"] is True
    assert b["settings"]["plan"] == "sorted"
    assert a["counts"]["control_chars"] >= 2 and a["csv_formula_guard"]["total"] > 0
    assert a["counts"]["future"] > 0 and a["counts"]["timestamp_unparsable"] > 0
    assert a["counts"]["dropped_duplicate"] >= 5
    policy = MaskingPolicy.from_dict(
        {"columns": {"email": "hash", "phone": {"strategy": "partial", "keep_last": 2}}}
    )
    config = CleaningConfig(dedup_keys=("email",), control_chars="keep")
    a, _ = both(src, tmp_path / "keyed", spark, config=config, policy=policy, key=KEY)
    assert a["counts"]["masked.email"] > 0


def test_split_read_messy_rows_duplicates_across_partitions(small_splits: Any, tmp_path: Path) -> None:
    # The split (no multiLine) path: the rows' hashes decide which later copies to drop, and each scan
    # partition is written from its own normalised rows. A second copy of the body at the end makes
    # whole partitions of duplicates (parts that write nothing) whose first copies sit partitions earlier.
    src = write_customers_csv(tmp_path / "dups.csv", 1200, seed=11, layout="narrow")
    with open(src, encoding="utf-8", newline="") as fh:
        header, *body = list(csv.reader(fh))
    extra = [row[: len(header)] for row in messy_rows() if not any("\n" in v or "\r" in v for v in row)]
    for i, row in enumerate(extra):
        body.insert((i * 53) % (len(body) + 1), row)
    with open(src, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *body, *body[::-1][:700], *extra])
    a, b = both(src, tmp_path / "all", small_splits)
    assert b["settings"]["multiline"] is False and b["settings"]["scan_partitions"] > 8
    assert a["counts"]["dropped_duplicate"] >= 700 and a["counts"]["control_chars"] > 0
    assert a["csv_formula_guard"]["total"] > 0
    policy = MaskingPolicy.from_dict({"columns": {"email": "hash"}})
    config = CleaningConfig(dedup_keys=("email",), control_chars="keep")
    a, b = both(src, tmp_path / "keyed", small_splits, config=config, policy=policy, key=KEY)
    assert b["settings"]["multiline"] is False and a["counts"]["masked.email"] > 0


@pytest.mark.parametrize(
    ("size", "cores", "split"),
    [(480 << 20, 2, 120 << 20), (480 << 20, 1, 120 << 20), (100 << 20, 2, 50 << 20), (1000, 3, 334),
     (2 << 30, 4, 128 << 20), (0, 2, 1)],
)  # fmt: skip
def test_even_splits_give_whole_waves_of_equal_splits(size: int, cores: int, split: int) -> None:
    from types import SimpleNamespace

    from pipekit.spark.clean import _even_splits

    conf: dict[str, str] = {}
    spark = SimpleNamespace(conf=SimpleNamespace(set=conf.__setitem__),
                            sparkContext=SimpleNamespace(defaultParallelism=cores))  # fmt: skip
    _even_splits(spark, size)
    assert int(conf["spark.sql.files.maxPartitionBytes"]) == split


def test_header_only_and_standard_sample(small_splits: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("id,name,email,timestamp\n", encoding="utf-8")
    a, _ = both(empty, tmp_path / "e", small_splits)
    assert a["rows_written"] == 0
    # The standard sample's addresses hold a few quoted line breaks: detected, read with multiLine.
    src = write_customers_csv(tmp_path / "std.csv", 1500, seed=8)
    _, b = both(src, tmp_path / "s", small_splits, config=CleaningConfig(formula_guard=False))
    assert b["settings"]["multiline"] is True and b["settings"]["scan_partitions"] == 1


def test_missing_required_column_fails_before_spark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipekit.spark.clean as module

    def no_spark(*args: Any) -> Any:
        raise AssertionError("Spark was started")

    monkeypatch.setattr(module, "_session", no_spark)
    src = tmp_path / "few.csv"
    src.write_text("id,name\n1,a\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        module.clean_file_spark(src, tmp_path / "out", master="local[1]")
    assert str(src) in info.value.message and "email, timestamp" in info.value.message
    assert not (tmp_path / "out").exists()


def test_rejected_control_character_names_the_row(spark: Any, tmp_path: Path) -> None:
    src = tmp_path / "ctl.csv"
    src.write_text(
        "id,name,email,timestamp\n1,a,a@x.io,2020-01-01\n2,b\x07,b@x.io,2020-01-01\n", encoding="utf-8"
    )
    with pytest.raises(InputError) as info:
        clean_file_spark(src, tmp_path / "out", spark=spark, config=CleaningConfig(control_chars="reject"))
    assert (
        "data row 2" in info.value.message
        and "'name'" in info.value.message
        and "U+0007" in info.value.message
    )
    assert not list((tmp_path / "out").glob("*_cleaned.*"))


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        (b'a,b\n1,"x\ny"\n', True),
        (b'a,b\n1,"x,""y"""\n2,z\n', False),
        (b"a,b\n1,2\r\n3,4\n", False),
        (b'a,b\n1,"""\r"""\n', True),
    ],
)
def test_scan_input_finds_line_breaks_inside_quotes(tmp_path: Path, text: bytes, inside: bool) -> None:
    from pipekit.spark.clean import scan_input

    path = tmp_path / "t.csv"
    path.write_bytes(text)
    for chunk in (1, 2, 3, 64):
        assert scan_input(path, chunk_bytes=chunk).multiline is inside


def test_the_masking_key_is_not_in_the_plan(spark: Any, tmp_path: Path) -> None:
    from pipekit.spark.clean import clean_frame_spark, read_csv_strings, with_row_ids

    src = write_customers_csv(tmp_path / "k.csv", 50, seed=2, layout="narrow")
    frame = with_row_ids(read_csv_strings(spark, str(src), ["id", "name", "email", "timestamp", "phone", "country"],
                                          multiline=False))  # fmt: skip
    policy = MaskingPolicy.from_dict({"columns": {"email": "hash"}})
    cleaned, tally = clean_frame_spark(frame, CleaningConfig(policy=policy), now=NOW, key=KEY)
    rows = cleaned.collect()
    plan = cleaned._jdf.queryExecution().toString() + str(spark.sparkContext.getConf().getAll())
    assert KEY.decode() not in plan and KEY.hex() not in plan
    assert len(rows) == tally.value.written > 0


@pytest.mark.parametrize(
    "data",
    [
        b'\xef\xbb\xbfid,name,email,timestamp\r\n1,a b,A@x.io,2020-01-01\r\n2,"c\r\nd",c@x.io,2099-01-01\r\n'
        b"1,a b,a@x.io,2020-01-01\r\n",
        b'\xef\xbb\xbfid,name,email,timestamp\r\n1,a b,A@x.io,2020-01-01\r\n2,"c, d",c@x.io,2099-01-01\r\n'
        b"1,a b,a@x.io,2020-01-01\r\n\r\n3,x,,\r\n",
    ],
    ids=["bom-crlf-multiline", "bom-crlf-blank-line"],
)
def test_bom_crlf_and_blank_lines(spark: Any, tmp_path: Path, data: bytes) -> None:
    src = tmp_path / "w.csv"
    src.write_bytes(data)
    a, _ = both(src, tmp_path, spark)
    assert a["rows_written"] == 2


def test_local_masters_and_refused_ones(tmp_path: Path) -> None:
    import os

    from pipekit.errors import ConfigError
    from pipekit.spark._clean_input import _cores

    assert (_cores("local"), _cores("local[2]"), _cores("local[3,2]")) == (1, 2, 3)
    assert _cores("local[*]") == (os.cpu_count() or 1)
    for bad in ("yarn", "local[0]", "spark://h:7077"):
        with pytest.raises(ConfigError):
            _cores(bad)
    src = write_customers_csv(tmp_path / "c.csv", 5, seed=1)
    with pytest.raises(ConfigError, match="needs a local master"):
        clean_file_spark(src, tmp_path / "o", master="spark://h:7077")


@pytest.fixture
def tiny_splits(spark: Any) -> Iterator[Any]:
    """Cut every file into ~4 KiB ranges."""
    old = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "4k")
    yield spark
    spark.conf.set("spark.sql.files.maxPartitionBytes", old)


# --- the python-split plan and the others, on Spark -----------------------------------------------


def test_python_split_plan_over_many_ranges_matches_the_file_engine(tiny_splits: Any, tmp_path: Path) -> None:
    src = write_customers_csv(tmp_path / "n.csv", 3000, seed=8, layout="narrow")
    a, b = both(src, tmp_path, tiny_splits)
    assert b["settings"]["plan"] == "python-split" and b["settings"]["scan_partitions"] > 20
    assert a["counts"]["dropped_duplicate"] > 0
    assert {"read_s", "duplicates_s", "finish_s"} <= set(b["timings"])


@pytest.mark.parametrize(
    ("data", "encoding", "plan"),
    [
        ("id,name,email,timestamp\r1,ann lee,A@x.io,2020-01-01\r2,bo,b@x.io,2099-01-01\r1,ann lee,a@x.io,2020-01-01\r",
         "utf-8", "spark-scan"),
        ("id,name,email,timestamp\n1,zoë ångström,Z@x.io,2020-01-01\n2,élan,e@x.io,2099-01-01\n",
         "latin-1", "python-split"),
    ],
    ids=["bare-cr", "latin-1"],
)  # fmt: skip
def test_files_that_cannot_be_cut_or_are_not_utf8(
    spark: Any, tmp_path: Path, data: str, encoding: str, plan: str
) -> None:
    src = tmp_path / "w.csv"
    src.write_bytes(data.encode(encoding))
    a, b = both(src, tmp_path, spark, encoding=encoding)
    assert b["settings"]["plan"] == plan and a["rows_written"] == 2


def test_a_malformed_row_in_a_later_range_is_named_as_the_file_engine_names_it(
    tiny_splits: Any, tmp_path: Path
) -> None:
    src = write_customers_csv(tmp_path / "bad.csv", 2000, seed=4, layout="narrow")
    lines = src.read_bytes().split(b"\n")
    lines[1500] += b",extra"
    src.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError) as file_error:
        clean_file(src, tmp_path / "file", now=NOW)
    with pytest.raises(InputError) as spark_error:
        clean_file_spark(src, tmp_path / "spark", now=NOW, spark=tiny_splits)
    assert spark_error.value.message == file_error.value.message
    assert "line 1501" in spark_error.value.message
    assert not (tmp_path / "spark").exists() or not list((tmp_path / "spark").iterdir())


@pytest.mark.parametrize("quoted_break", [False, True], ids=["python-split", "sorted"])
def test_cli_malformed_row_never_prints_its_values(tmp_path: Path, quoted_break: bool) -> None:
    if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
        pytest.skip("pyspark and Java are needed")
    src = tmp_path / "leak.csv"
    first = '1,"two\nlines",ann@x.io,2020-01-01' if quoted_break else "1,ann,ann@x.io,2020-01-01"
    src.write_text(f"id,name,email,timestamp\n{first}\n2,zed,secret.person@hidden.example,2020-01-01,EXTRA\n")
    env = {k: v for k, v in os.environ.items() if k != "PIPEKIT_SPARK_LOG_LEVEL"}
    done = subprocess.run(
        [str(PIPEKIT), "clean", str(src), "--out", str(tmp_path / "out"), "--engine", "spark",
         "--master", "local[1]"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"line {4 if quoted_break else 3} has 5 field(s)" in done.stderr  # named as --engine file names it
    for value in ("secret.person", "hidden.example", "EXTRA", "zed"):
        assert value not in done.stderr and value not in done.stdout
