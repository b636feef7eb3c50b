"""`pipekit clean | validate | scan-pii` through the real CLI: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipekit.cli import app
from pipekit.io.atomic import sha256_file
from pipekit.sample import write_customers_csv

runner = CliRunner()
NOW = "2026-01-01T00:00:00Z"


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, text


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_customers_csv(tmp_path_factory.mktemp("data") / "customers.csv", 3000, seed=11)


def test_clean_writes_three_outputs_and_leaves_input(customers: Path, tmp_path: Path) -> None:
    digest = sha256_file(customers)
    code, text = run("clean", str(customers), "--out", str(tmp_path), "--now", NOW)
    assert code == 0, text
    assert "rows written" in text
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["customers_cleaned.csv", "customers_cleaned.parquet", "customers_report.json"]
    assert sha256_file(customers) == digest


def test_clean_json_and_quiet(customers: Path, tmp_path: Path) -> None:
    code, text = run("clean", str(customers), "--out", str(tmp_path), "--now", NOW, "--json")
    assert code == 0
    report = json.loads(text)
    assert report["rows_read"] == 3000 and report["settings"]["now"].startswith("2026-01-01")
    code, text = run("clean", str(customers), "--out", str(tmp_path), "--now", NOW, "--quiet")
    assert code == 0 and text.strip() == ""


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        ("", 2, "empty"),
        ("id,fullname\n1,x\n", 1, "missing required column(s): name, email, timestamp"),
        (b"id,name,email,timestamp\n1,ok,a@b.io,2020-01-01\n2,caf\xe9,c@d.io,2020-01-01\n", 2, "line 3"),
        (
            "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n2,b,c@d.io\n",
            2,
            "line 3 has 3 field(s), expected 4",
        ),
    ],
    ids=["empty", "missing-columns", "not-utf8", "wrong-field-count"],
)
def test_clean_bad_input(tmp_path: Path, content: str | bytes, code: int, message: str) -> None:
    src = _write(tmp_path / "bad.csv", content)
    exit_code, text = run("clean", str(src), "--out", str(tmp_path / "out"))
    assert exit_code == code, text
    assert message in " ".join(text.split())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_row_text_that_looks_like_markup_prints_literally(tmp_path: Path) -> None:
    src = _write(tmp_path / "m.csv", "id,name,email,timestamp\n1,a,b,c,[/bold]\n")
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"))
    assert code == 2 and "[/bold]" in text


def test_clean_not_utf8_suggests_encoding_and_encoding_works(tmp_path: Path) -> None:
    src = _write(tmp_path / "l.csv", "id,name,email,timestamp\n1,josé,j@x.io,2020-01-01\n".encode("latin-1"))
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"))
    assert code == 2 and "--encoding" in text
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"), "--encoding", "latin-1", "--quiet")
    assert code == 0
    assert pq.read_table(tmp_path / "o" / "l_cleaned.parquet").column("name").to_pylist() == ["José"]


def test_clean_quarantine(tmp_path: Path) -> None:
    src = _write(tmp_path / "q.csv", "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n2,b,c@d.io\n")
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"), "--bad-rows", "quarantine", "--json")
    assert code == 0
    assert json.loads(text)["quarantined"] == 1
    assert (tmp_path / "o" / "q_quarantine.csv").read_text().splitlines()[1] == "2,b,c@d.io"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--now", "tomorrow"], "not an ISO-8601 timestamp"),
        (["--bad-rows", "ignore"], "--bad-rows must be"),
        (["--dedup-keys", "nope"], "duplicate key column(s) not in the file: nope"),
        (["--encoding", "klingon"], "unknown encoding"),
        (["--policy", "/nonexistent/policy.yaml"], "policy"),
    ],
)
def test_clean_bad_usage_exits_2(customers: Path, tmp_path: Path, args: list[str], message: str) -> None:
    code, text = run("clean", str(customers), "--out", str(tmp_path), *args)
    assert code == 2, text
    assert message in " ".join(text.split())


def test_clean_missing_input_exits_2(tmp_path: Path) -> None:
    code, text = run("clean", str(tmp_path / "nope.csv"), "--out", str(tmp_path))
    # one unwrapped line however long pytest's tmp_path is (CliRunner's output is not a terminal)
    assert code == 2 and f"error: {tmp_path / 'nope.csv'}: no such file" in text.splitlines()


def test_validate_reports_problems_with_rows(customers: Path) -> None:
    code, text = run("validate", str(customers))
    assert code == 1
    assert "unparsable timestamp" in text and "rows" in text
    code, text = run("validate", str(customers), "--json")
    assert code == 1 and json.loads(text)["rows"] == 3000


def test_validate_clean_file_exits_0(tmp_path: Path) -> None:
    src = _write(tmp_path / "ok.csv", "id,name,email,timestamp\n1,Ann,ann@x.io,2020-01-01T00:00:00Z\n")
    assert run("validate", str(src), "--quiet") == (0, "")
    code, text = run("validate", str(_write(tmp_path / "m.csv", "id\n1\n")))
    assert code == 1 and "MISSING" in text


PLANTED = (
    "id,note\n"
    "1,mail me at jane.doe@example.com\n"
    "2,card 4111 1111 1111 1111\n"
    "3,ssn 123-45-6789\n"
    "4,iban GB82 WEST 1234 5698 7654 32\n"
    "5,server 192.168.10.20\n"
    "6,call +1 (555) 123-4567\n"
    "7,card 4111 1111 1111 1112\n"
)


def test_scan_pii_finds_planted_pii(tmp_path: Path) -> None:
    src = _write(tmp_path / "pii.csv", PLANTED)
    code, text = run("scan-pii", str(src), "--json")
    assert code == 1
    found = json.loads(text)["findings"]["note"]
    assert {"email", "credit_card", "us_ssn", "iban", "ipv4", "phone"} <= set(found)
    assert found["credit_card"] == 1  # the invalid-Luhn number is not a card


def test_scan_pii_finds_none_in_masked_columns_of_clean_output(customers: Path, tmp_path: Path) -> None:
    code, text = run("scan-pii", str(customers), "--columns", "email", "--json")
    assert code == 1 and json.loads(text)["findings"]["email"]["email"] > 2000
    assert run("clean", str(customers), "--out", str(tmp_path), "--now", NOW, "--quiet")[0] == 0
    for output in ("customers_cleaned.parquet", "customers_cleaned.csv"):
        code, text = run("scan-pii", str(tmp_path / output), "--columns", "email")
        assert code == 0, text
        assert "no PII found" in text


def test_scan_pii_with_glue_policy_masks_every_sensitive_column(tmp_path: Path) -> None:
    from pipekit.sample import write_adventureworks_csv

    src = write_adventureworks_csv(tmp_path / "aw.csv", 500, seed=1)
    policy = _write(
        tmp_path / "policy.yaml",
        "columns:\n  FirstName: {strategy: literal, value: hu25}\n  EmailAddress: {strategy: email}\n"
        "  Phone: {strategy: partial, keep_last: 4}\n  PasswordHash: {strategy: redact}\n  PasswordSalt: {strategy: redact}\n",
    )
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"), "--policy", str(policy), "--required",
                     "CustomerID,EmailAddress", "--quiet")  # fmt: skip
    assert code == 0, text
    assert run("scan-pii", str(tmp_path / "o" / "aw_cleaned.parquet"))[0] == 0
    names = pq.read_table(tmp_path / "o" / "aw_cleaned.parquet").column("FirstName").to_pylist()
    assert set(names) == {"hu25"}


def test_scan_pii_unreadable_file(tmp_path: Path) -> None:
    code, text = run("scan-pii", str(_write(tmp_path / "x.parquet", b"PAR1 not really")))
    assert code == 2 and "Parquet" in text


def test_help_texts_teach() -> None:
    for command in ("clean", "validate", "scan-pii"):
        code, text = run(command, "--help")
        assert code == 0 and "Examples" in text and "Exit codes" in text
