"""The real Glue entrypoint on local pyspark: output equals the pandas path's; bad input fails clearly."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipekit.core import GLUE_CUSTOMER_POLICY, ColumnRule, MaskingPolicy, apply_policy, scan_pii
from pipekit.sample import ADVENTUREWORKS_COLUMNS, make_adventureworks_customers

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "adapters" / "glue" / "customers_etl.py"
COLUMNS = [*ADVENTUREWORKS_COLUMNS, "Notes"]
# The twin (and Glue) take the last "SomethingError: ..." line of stderr as the run's ErrorMessage.
ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b:?.*$")


def _tricky_rows() -> list[dict[str, str]]:
    """Rows that break naive CSV handling or masking: nulls, unicode, quoted commas and quotes."""
    base = dict.fromkeys(COLUMNS, "")
    rows = [
        {**base, "CustomerID": "900001", "FirstName": "Zoë", "LastName": "Núñez, Jr.", "CompanyName": 'Bikes, "Best" Inc.',
         "EmailAddress": "zoë.núñez@exämple.com", "Phone": "245-555-0173", "PasswordHash": "abc=", "PasswordSalt": "x="},
        {**base, "CustomerID": "900002", "FirstName": "", "EmailAddress": "", "Phone": "", "PasswordHash": ""},
        {**base, "CustomerID": "900003", "FirstName": "  O'Brien  ", "EmailAddress": " MIXED@Example.COM ", "Phone": "12"},
        {**base, "CustomerID": "900004", "FirstName": "😀", "EmailAddress": "not-an-email", "Phone": "1 (11) 500 555-0132",
         "Notes": "ssn 078-05-1120, card 4111 1111 1111 1111"},
        {**base, "CustomerID": "007", "FirstName": "Jean-Luc", "EmailAddress": "a@b@c.com", "Phone": "+44 20 7946 0958",
         "Notes": "call +1 212-555-0199"},
    ]  # fmt: skip
    return rows


def write_input(path: Path, n: int = 300, *, with_newline: bool = False) -> Path:
    """AdventureWorks-shaped rows plus the tricky ones, as RFC 4180 CSV."""
    frame = make_adventureworks_customers(n, seed=4).astype(object).where(lambda f: f.notna(), "")
    records = frame.to_dict("records")
    for i, rec in enumerate(records):
        rec["Notes"] = f"contact me at person{i}@example.net" if i % 3 == 0 else "prefers email"
    records += _tricky_rows()
    if with_newline:
        records[0]["CompanyName"] = "Line one\nline two, with comma"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    return path


def pandas_reference(path: Path, policy: MaskingPolicy = GLUE_CUSTOMER_POLICY, sample: int = 1000) -> pd.DataFrame:
    """The pandas path: read every value as a string ('' = null), detect PII in unruled columns, apply_policy."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    unruled = [c for c in frame.columns if c not in policy.resolve(list(frame.columns))]
    findings = scan_pii(frame[unruled].head(sample)).findings
    rules = dict(policy.rules) | {c: ColumnRule("redact") for c in findings}
    masked, _ = apply_policy(frame, MaskingPolicy(rules, key_env=policy.key_env))
    return masked


def read_output(target: Path) -> pd.DataFrame:
    """The job's rows without the ``ingest_date`` partition column (it is the folder, not the data)."""
    frame = pd.read_parquet(target)
    return frame.drop(columns=["ingest_date"], errors="ignore")


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("CustomerID", kind="stable").reset_index(drop=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(entrypoint, spark, capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = entrypoint.main(list(argv), spark=spark)
    out, err = capsys.readouterr()
    stats = json.loads(out.strip().splitlines()[-1]) if code == 0 else None
    return code, stats, err


def test_spark_output_equals_pandas_output(entrypoint, spark, tmp_path: Path, capsys) -> None:
    source = write_input(tmp_path / "customers.csv")
    before = _digest(source)
    target = tmp_path / "out"
    code, stats, err = _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(source),
                            "--target_path", str(target))  # fmt: skip
    assert code == 0, err
    got, expected = _sorted(read_output(target)), _sorted(pandas_reference(source))
    assert list(got.columns) == COLUMNS
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    # The policy did what the issue asks, and the scanner's verdict on the result is clean.
    assert set(got["FirstName"].dropna()) == {"hu25"}
    assert got["FirstName"].isna().sum() == 1  # the row whose first name was empty stays null
    assert stats["rows_in"] == stats["rows_out"] == 305
    assert stats["masked"]["FirstName"] == 304 and stats["pii_masked"] == ["Notes"]
    assert scan_pii(got).total == 0 or set(scan_pii(got).findings) <= {"rowguid"}
    assert list(tmp_path.glob("out/ingest_date=*/*.snappy.parquet"))  # one partition per ingest day
    assert _digest(source) == before  # the raw input is never modified
    # No raw sensitive value survives anywhere in the output.
    raw = pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])
    secrets = {v for c in ("EmailAddress", "Phone", "PasswordHash", "PasswordSalt") for v in raw[c].dropna() if len(v) > 4}
    cells = {v for c in got.columns for v in got[c].dropna()}
    assert not secrets & cells, secrets & cells


def test_rerun_overwrites_the_same_output(entrypoint, spark, tmp_path: Path, capsys) -> None:
    source = write_input(tmp_path / "c.csv", n=50)
    target = tmp_path / "out"
    args = ("--JOB_NAME", "t", "--source_path", str(source), "--target_path", str(target), "--detect_pii", "false")
    assert _run(entrypoint, spark, capsys, *args)[0] == 0
    first = _sorted(read_output(target))
    assert _run(entrypoint, spark, capsys, *args)[0] == 0
    pd.testing.assert_frame_equal(_sorted(read_output(target)), first)
    assert first["Notes"].str.contains("@example.net").any()  # detection off: Notes left as it was


def test_multiline_fields_need_and_work_with_the_flag(entrypoint, spark, tmp_path: Path, capsys) -> None:
    source = write_input(tmp_path / "nl.csv", n=20, with_newline=True)
    target = tmp_path / "out"
    code, _, err = _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(source),
                        "--target_path", str(target), "--multiline", "true")  # fmt: skip
    assert code == 0, err
    pd.testing.assert_frame_equal(_sorted(read_output(target)), _sorted(pandas_reference(source)), check_dtype=False)


def test_policy_file_is_used(entrypoint, spark, tmp_path: Path, capsys) -> None:
    source = write_input(tmp_path / "c.csv", n=10)
    policy = tmp_path / "policy.yaml"
    policy.write_text("columns:\n  first_name: {strategy: literal, value: hu25}\n  LastName: redact\n")
    target = tmp_path / "out"
    code, stats, err = _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(source),
                            "--target_path", str(target), "--policy", str(policy), "--detect_pii", "false")  # fmt: skip
    assert code == 0, err
    got = read_output(target)
    assert set(got["LastName"].dropna()) == {"***"} and "@" in got["EmailAddress"].iloc[0]
    assert set(stats["masked"]) == {"FirstName", "LastName"}


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        ("CustomerID,LastName\n1,Smith\n", 1, "column 'FirstName' not found in {src}"),
        ("", 2, "{src} is empty"),
        ("CustomerID,FirstName\n", 2, "{src} has a header but no data rows"),
        ('CustomerID,FirstName\n1,Ann\n2,Bob,extra\n"3,"Unclosed\n', 2, "{src} has a malformed CSV row"),
    ],
    ids=["missing-first-name", "empty-file", "header-only", "malformed-row"],
)
def test_bad_input_fails_with_a_clear_message(entrypoint, spark, tmp_path: Path, capsys, content, code, message) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(content)
    before = _digest(source)
    target = tmp_path / "out"
    got, _, err = _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(source),
                       "--target_path", str(target))  # fmt: skip
    assert got == code
    last = err.strip().splitlines()[-1]
    assert message.format(src=source) in last and ERROR_LINE.match(last), last
    assert "Traceback" not in err
    assert _digest(source) == before and not target.exists()


def test_missing_source_and_missing_arguments(entrypoint, spark, tmp_path: Path, capsys) -> None:
    code, _, err = _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(tmp_path / "nope.csv"),
                        "--target_path", str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "does not exist" in err
    code, _, err = _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", "x.csv")
    assert code == 2 and "--target_path" in err


def test_runs_as_the_twin_runs_it_in_a_subprocess(spark, tmp_path: Path) -> None:  # spark: skip without Java
    """`python customers_etl.py --JOB_NAME ... ` with Glue's extra arguments, as the twin's job runner does."""
    source = write_input(tmp_path / "customers.csv", n=100)
    target = tmp_path / "customers_parquet"
    env = {**os.environ, "PIPEKIT_SPARK_MASTER": "local[1]", "SPARK_LOCAL_IP": "127.0.0.1"}
    proc = subprocess.run(
        [sys.executable, str(ENTRYPOINT), "--JOB_NAME", "customers-etl", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1",
         "--job-bookmark-option", "job-bookmark-enable", "--TempDir", str(tmp_path / "temp-dir"),
         "--enable-metrics", "true", "--source_path", str(source), "--target_path", str(target)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["job"] == "customers-etl" and stats["rows_out"] == 105
    got = _sorted(read_output(target))
    pd.testing.assert_frame_equal(got, _sorted(pandas_reference(source)), check_dtype=False)

    # A failure before Spark starts is just as clear, and costs no JVM.
    proc = subprocess.run([sys.executable, str(ENTRYPOINT), "--JOB_NAME", "x"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ConfigError: Glue job argument(s) missing: --source_path, --target_path")


def test_a_failed_rerun_keeps_the_previous_output(entrypoint, spark, tmp_path: Path, capsys) -> None:
    good = write_input(tmp_path / "good.csv", n=30)
    target = tmp_path / "out"
    assert _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(good),
                "--target_path", str(target))[0] == 0  # fmt: skip
    previous = _sorted(read_output(target))
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text(encoding="utf-8") + "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n", encoding="utf-8")
    code, _, err = _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(bad),
                        "--target_path", str(target))  # fmt: skip
    assert code == 2 and "malformed" in err
    pd.testing.assert_frame_equal(_sorted(read_output(target)), previous)
    assert not list(tmp_path.glob(".out.pipekit-staging-*"))  # the failed run's partial output is gone


def test_under_awsglue_the_job_is_initialised_and_committed(entrypoint, spark, tmp_path: Path, capsys,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """With a stand-in ``awsglue`` (the real one exists only on Glue) the Glue branch runs: init, run, commit."""
    fake = tmp_path / "fakeglue" / "awsglue"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("CALLS = []\n")
    (fake / "context.py").write_text(
        "import awsglue\n"
        "from pyspark.sql import SparkSession\n"
        "class _Frame:\n"
        "    def __init__(self, df): self.df = df\n"
        "    def toDF(self): return self.df\n"
        "class _Source:\n"
        "    def __init__(self, spark): self.spark = spark\n"
        "    def from_options(self, connection_type, connection_options, format, format_options,\n"
        "                     transformation_ctx):\n"
        "        awsglue.CALLS.append(('source', transformation_ctx, connection_options['paths']))\n"
        "        return _Frame(self.spark.read.option('header', True).csv(connection_options['paths']))\n"
        "class GlueContext:\n"
        "    def __init__(self, sc):\n"
        "        self.spark_session = SparkSession.builder.getOrCreate()\n"
        "        self.create_dynamic_frame = _Source(self.spark_session)\n"
    )
    (fake / "job.py").write_text(
        "import awsglue\n"
        "class Job:\n"
        "    def __init__(self, ctx): self.ctx = ctx\n"
        "    def init(self, name, args): awsglue.CALLS.append(('init', name, dict(args)))\n"
        "    def commit(self): awsglue.CALLS.append(('commit',))\n"
    )
    monkeypatch.syspath_prepend(str(fake.parent))
    for name in [m for m in sys.modules if m.startswith("awsglue")]:
        monkeypatch.delitem(sys.modules, name)
    import awsglue

    source = write_input(tmp_path / "c.csv", n=20)
    argv = ["--JOB_NAME", "glue-job", "--source_path", str(source), "--target_path", str(tmp_path / "out"),
            "--TempDir", str(tmp_path / "temp-dir"), "--job-bookmark-option", "job-bookmark-enable"]  # fmt: skip
    assert entrypoint.main(argv) == 0
    # The source is a DynamicFrame with transformation_ctx, so Glue's bookmark filters what is read.
    assert [c[0] for c in awsglue.CALLS] == ["init", "source", "commit"]
    assert awsglue.CALLS[1][1] == "customers_source"
    assert awsglue.CALLS[0][1] == "glue-job" and awsglue.CALLS[0][2]["job-bookmark-option"] == "job-bookmark-enable"
    # With bookmarks the run appends into its ingest_date partition: no staging copy of the whole table.
    assert list((tmp_path / "out").glob("ingest_date=*/*.parquet"))
    assert not (tmp_path / "temp-dir" / "pipekit-staging").exists()

    # On Glue a failure is raised (that is what marks the run FAILED), and the bookmark is not committed.
    awsglue.CALLS.clear()
    bad = tmp_path / "bad.csv"
    bad.write_text("CustomerID,LastName\n1,Smith\n")
    from pipekit.errors import ValidationError

    with pytest.raises(ValidationError, match="FirstName"):
        entrypoint.main(["--JOB_NAME", "glue-job", "--source_path", str(bad), "--target_path", str(tmp_path / "o2")])
    assert [c[0] for c in awsglue.CALLS] == ["init", "source"]
    capsys.readouterr()


def test_bookmarks_read_only_new_files_and_commit_only_on_success(entrypoint, spark, tmp_path: Path,
                                                                  capsys) -> None:  # fmt: skip
    """The local bookmark (the twin hands state.json in, takes commit.json back): enable reads new files
    and appends them to today's partition; a failed run commits nothing; pause reads without committing."""
    raw = tmp_path / "raw"
    raw.mkdir()
    write_input(raw / "a.csv", n=10)
    store, target = tmp_path / "bookmark", tmp_path / "out"
    store.mkdir()

    def run(option: str, day: str) -> tuple[int, dict | None, str]:
        return _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(raw), "--target_path",
                    str(target), "--job-bookmark-option", option, "--pipekit_bookmark_dir", str(store),
                    "--ingest_date", day)  # fmt: skip

    def adopt() -> None:  # what the twin does when it sees the run SUCCEEDED
        (store / "state.json").write_text((store / "commit.json").read_text())
        (store / "commit.json").unlink()

    code, stats, _ = run("job-bookmark-enable", "2026-01-01")
    assert code == 0 and stats["files_read"] == ["a.csv"] and stats["rows_in"] == 15
    assert stats["partition"] == "ingest_date=2026-01-01" and stats["write_mode"] == "append"
    adopt()
    write_input(raw / "b.csv", n=4)
    bad = raw / "c.csv"
    bad.write_text((raw / "b.csv").read_text(encoding="utf-8") + "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n",
                   encoding="utf-8")
    code, _, err = run("job-bookmark-enable", "2026-01-02")
    assert code == 2 and "malformed" in err and not (store / "commit.json").exists()
    bad.unlink()
    code, stats, _ = run("job-bookmark-pause", "2026-01-02")
    assert code == 0 and stats["files_read"] == ["b.csv"] and not (store / "commit.json").exists()
    code, stats, _ = run("job-bookmark-enable", "2026-01-02")
    assert code == 0 and stats["files_read"] == ["b.csv"] and stats["files_skipped"] == 1
    adopt()
    code, stats, _ = run("job-bookmark-enable", "2026-01-03")
    assert code == 0 and stats["files_read"] == [] and stats["rows_in"] == 0
    state = json.loads((store / "state.json").read_text())
    assert sorted(state["states"]["customers_source"]["files"]) == ["a.csv", "b.csv"]
    out = pd.read_parquet(target)
    # a once, b twice (the paused run appended too: pause does not advance, it does not hold back output)
    assert out.groupby("ingest_date", observed=True).size().to_dict() == {"2026-01-01": 15, "2026-01-02": 18}
    code, stats, _ = run("job-bookmark-disable", "2026-01-04")
    assert code == 0 and stats["files_read"] == ["a.csv", "b.csv"] and stats["write_mode"] == "overwrite"
    assert len(pd.read_parquet(target)) == 24


def test_clean_full_runs_the_whole_customer_cleaning(entrypoint, spark, tmp_path: Path, capsys) -> None:
    from pipekit import clean_file
    from pipekit.sample import write_customers_csv

    source = write_customers_csv(tmp_path / "customers.csv", 800, seed=21, layout="narrow")
    target = tmp_path / "out"
    code, stats, err = _run(entrypoint, spark, capsys, "--JOB_NAME", "t", "--source_path", str(source),
                            "--target_path", str(target), "--clean", "full", "--ingest_date", "2026-01-02")  # fmt: skip
    assert code == 0, err
    expected = clean_file(source, tmp_path / "file")
    assert stats["clean"] == "full" and stats["rows_in"] == expected.rows_read == 800
    assert stats["rows_out"] == expected.rows_written and stats["masked"] == {"email": expected.rows_written}
    assert stats["counts"]["dropped_duplicate"] == expected.counts["dropped_duplicate"] > 0
    assert stats["counts"]["dropped_null"] == expected.counts["dropped_null"] > 0
    got = pd.read_parquet(target / "ingest_date=2026-01-02")
    want = pd.read_parquet(expected.outputs["parquet"])
    # The flag depends on "now" (the job's own clock): compare it apart from the values.
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.drop(columns="is_future").sort_values("id").reset_index(drop=True),
                                  want.drop(columns="is_future").sort_values("id").reset_index(drop=True))  # fmt: skip
    assert list(got["id"]) == list(want["id"])  # file order, across the part files


def test_clean_full_needs_the_customer_columns_and_a_known_mode(
    entrypoint, spark, tmp_path: Path, capsys
) -> None:
    source = write_input(tmp_path / "aw.csv", n=5)
    args = ("--JOB_NAME", "t", "--source_path", str(source), "--target_path", str(tmp_path / "o"))
    code, _, err = _run(entrypoint, spark, capsys, *args, "--clean", "full")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"ValidationError: {source}: missing required column(s): id, name")
    code, _, err = _run(entrypoint, spark, capsys, *args, "--clean", "yes")
    assert code == 2
    assert "ConfigError: --clean must be one of none, full, got 'yes'" in err
    assert not (tmp_path / "o").exists()
