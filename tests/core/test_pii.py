"""The PII scanner finds planted PII and does not flag masked output or invalid checksums."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest

from pipekit.core import (
    GLUE_CUSTOMER_POLICY,
    CleaningConfig,
    clean_dataframe,
    iban_valid,
    luhn_valid,
    scan_pii,
)
from pipekit.errors import ConfigError

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "entity"),
    [
        ("john.smith@example.com", "email"),
        ("write to Ann <ann.o-brien+news@mail.example.co.uk> today", "email"),
        ("555-123-4567", "phone"),
        ("(555) 123-4567", "phone"),
        ("+1-555-123-4567x123", "phone"),
        ("555.123.4567", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("1 (11) 500 555-0132", "phone"),
        ("001-555-123-4567", "phone"),
        ("4111 1111 1111 1111", "credit_card"),
        ("card: 5500-0000-0000-0004.", "credit_card"),
        ("378282246310005", "credit_card"),
        ("123-45-6789", "us_ssn"),
        ("from 192.168.1.20 at noon", "ipv4"),
        ("GB82 WEST 1234 5698 7654 32", "iban"),
        ("DE89370400440532013000", "iban"),
    ],
)
def test_finds_planted_pii(value: str, entity: str) -> None:
    report = scan_pii(pd.DataFrame({"c": ["nothing here", value]}))
    assert report.findings["c"][entity] == 1, report.findings
    assert report.rows_scanned == 2


@pytest.mark.parametrize(
    "value",
    [
        "j***@example.com",  # partial email mask
        "j***@e***.com",  # domain mask
        "5f1d7a4c2b9e8d3f6a0c1b2e4d7f9a8c5b3e1d0f2a4c6b8e9d7f5a3c1b0e2d4f",  # hash mask
        "***",
        "********4567",
        "XXXX-1234",
        "***-***-4567",
        "4111 1111 1111 1112",  # fails Luhn
        "GB82WEST12345698765433",  # fails mod-97
        "000-12-3456",  # invalid SSN area
        "999.1.1.1",
        "2024-05-05 10:00:00+02:00",
        "2024-05-05",
        "1700000000",  # epoch seconds, not a phone
        "007",
        "Jean-Luc Picard",
        "hu25",
        "86802078-3791-0521-8e3c-2b0f5e4a1d77",  # a GUID whose first 16 digits pass Luhn
    ],
)
def test_does_not_flag_masked_or_invalid_values(value: str) -> None:
    report = scan_pii(pd.DataFrame({"c": [value]}))
    assert report.total == 0, report.findings


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112") and not luhn_valid("41x1")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82WEST1234569876543")
    assert not iban_valid("ZZ82WEST12345698765432")


def test_counts_values_per_column_and_entity() -> None:
    frame = pd.DataFrame(
        {
            "contact": ["a@b.co", "555-123-4567", "a@b.co and 555-123-4567", None],
            "notes": ["ok", "ok", "ssn 123-45-6789", "ok"],
            "n": [1, 2, 3, 4],
        }
    )
    report = scan_pii(frame)
    assert dict(report.findings["contact"]) == {"email": 2, "phone": 2}
    assert dict(report.findings["notes"]) == {"us_ssn": 1}
    assert "n" not in report.findings
    assert report.total == 5
    assert report.to_dict()["findings"]["contact"] == {"email": 2, "phone": 2}
    assert "contact: email 2, phone 2" in report.summary()


def test_columns_and_sample_limit_the_scan() -> None:
    frame = pd.DataFrame({"a": ["x", "a@b.co"], "b": ["a@b.co", "x"]})
    assert list(scan_pii(frame, ["a"]).findings) == ["a"]
    sampled = scan_pii(frame, sample=1)
    assert sampled.rows_scanned == 1 and list(sampled.findings) == ["b"]
    with pytest.raises(ConfigError, match="zzz"):
        scan_pii(frame, ["zzz"])


def test_numeric_card_numbers_are_scanned() -> None:
    table = pa.table({"card": pa.array([4111111111111111, 1234], pa.int64())})
    assert dict(scan_pii(table).findings["card"]) == {"credit_card": 1}


def test_no_pii_in_cleaned_masked_columns(messy_customers: pd.DataFrame) -> None:
    assert scan_pii(messy_customers, ["email"]).total > 0
    out, _ = clean_dataframe(messy_customers, now=NOW)
    assert scan_pii(out).total == 0


def test_no_pii_in_glue_policy_output() -> None:
    customers = pd.DataFrame(
        {
            "CustomerID": ["1", "2"],
            "FirstName": ["Orlando", "Keith"],
            "EmailAddress": ["orlando0@adventure-works.com", "keith0@adventure-works.com"],
            "Phone": ["245-555-0173", "1 (11) 500 555-0132"],
            "PasswordHash": [
                "L/Rlwxzp4w7RWmEgXX+/A7cXaePEPcp+KwQhl2fJL7w=",
                "YPdtRdvqeAhj6wyxEsFdshBDNXxkCXn+CRgbvJItknw=",
            ],
        }
    )
    before = scan_pii(customers)
    assert set(before.findings) == {"EmailAddress", "Phone"}
    config = CleaningConfig(
        required=("CustomerID",),
        name_column="FirstName",
        email_column="EmailAddress",
        timestamp_column="ModifiedDate",
        policy=GLUE_CUSTOMER_POLICY,
    )
    out, _ = clean_dataframe(customers, config, now=NOW)
    assert scan_pii(out).total == 0


def test_empty_report() -> None:
    report = scan_pii(pd.DataFrame({"a": pd.Series([], dtype=object)}))
    assert report.total == 0 and report.rows_scanned == 0 and "no PII" in report.summary()
