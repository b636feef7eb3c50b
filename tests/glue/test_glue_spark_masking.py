"""The policy on Spark gives exactly what the Arrow/pandas kernels give, value for value."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipekit.core import GLUE_CUSTOMER_POLICY, ColumnRule, MaskingPolicy
from pipekit.core.masking import mask_column
from pipekit.spark import apply_policy_spark, detect_pii_columns
from pipekit.spark._sql import rule_sql

pytestmark = pytest.mark.spark

KEY = b"pipekit-test-key"

TRICKY = [
    None, "", " ", "a", "ab", "abcd", "abcde", "john.smith@example.com", "J@x.io", "a@b@c.com", "@example.com",
    "noatsign", "trailing@", "x@y", "john@example", "  Mixed.Case@Example.COM \u00a0", "zoë@exämple.com",
    "😀smile@emoji.example", "line\nbreak@example.com", "ends-with-newline@example.com\n", "O'Brien",
    "back\\slash", "dollar$1@example.com", "245-555-0173", "1 (11) 500 555-0132", "\u3000ideographic\u3000",
    "tab\tinside", "ß", "İstanbul@EXAMPLE.com",
]  # fmt: skip

RULES = {
    "literal": ColumnRule("literal", value="hu25"),
    "redact": ColumnRule("redact"),
    "redact_value": ColumnRule("redact", value="[gone]"),
    "partial0": ColumnRule("partial", keep_last=0),
    "partial1": ColumnRule("partial", keep_last=1),
    "partial4": ColumnRule("partial", keep_last=4),
    "partial20": ColumnRule("partial", keep_last=20),
    "hash": ColumnRule("hash"),
    "email_partial": ColumnRule("email", email_mode="partial"),
    "email_domain": ColumnRule("email", email_mode="domain"),
    "email_hash": ColumnRule("email", email_mode="hash"),
}


def _fuzz(n: int, seed: int = 7) -> list[str | None]:
    """Seeded random strings built from the characters masking cares about (@ . whitespace, non-ASCII)."""
    rng = random.Random(seed)
    alphabet = [*"abcXYZ019@@..-_ +'\"\\$", "é", "ß", "\u00a0", "\n", "😀", "中", "\t", "İ"]
    out: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.05:
            out.append(None)
            continue
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))))
    return out


# Java lower-cases a few characters differently from Arrow's utf8proc (e.g. "İ" -> "i̇" vs "i"), which
# only matters where the text is lower-cased: the email *hash* mode. Such values are compared separately.
def _java_lower_differs(value: str | None) -> bool:
    return value is not None and any(c in value for c in "İ")


@pytest.fixture(scope="module")
def values() -> list[str | None]:
    return TRICKY + _fuzz(1500)


def test_every_rule_matches_the_arrow_kernel(spark, values: list[str | None]) -> None:
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    frame = spark.createDataFrame([(i, v) for i, v in enumerate(values)],
                                  StructType([StructField("i", StringType()), StructField("v", StringType())]))  # fmt: skip
    got_rows = frame.select(
        F.col("i").cast("int").alias("i"), *[F.expr(rule_sql("v", rule, KEY)).alias(name) for name, rule in RULES.items()]
    ).collect()
    got = {name: [None] * len(values) for name in RULES}
    for row in got_rows:
        for name in RULES:
            got[name][row["i"]] = row[name]
    source = pa.array(values, pa.string())
    for name, rule in RULES.items():
        expected = mask_column(source, rule, key=KEY)[0].to_pylist()
        mismatches = [
            (values[i], expected[i], got[name][i])
            for i in range(len(values))
            if expected[i] != got[name][i] and not (name == "email_hash" and _java_lower_differs(values[i]))
        ]
        assert not mismatches, f"{name}: {len(mismatches)} mismatch(es), first: {mismatches[:3]}"


def test_hash_is_the_keyed_hmac_of_the_pandas_path(spark) -> None:
    import hashlib
    import hmac

    frame = spark.createDataFrame([("alice",)], "v string")
    (value,) = frame.select(__import__("pyspark.sql.functions", fromlist=["expr"]).expr(
        rule_sql("v", ColumnRule("hash"), KEY))).first()  # fmt: skip
    assert value == hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()


def test_apply_policy_spark_counts_and_keeps_nulls(spark) -> None:
    rows = [("1", "Ann", "ann@example.com", "245-555-0173", "h", "s"),
            ("2", None, None, None, None, None)]  # fmt: skip
    frame = spark.createDataFrame(rows, "CustomerID string, first_name string, EmailAddress string, "
                                        "Phone string, PasswordHash string, PasswordSalt string")  # fmt: skip
    masked, counts = apply_policy_spark(frame, GLUE_CUSTOMER_POLICY, detect_pii=False)
    out = [r.asDict() for r in masked.orderBy("CustomerID").collect()]
    assert out[0] == {"CustomerID": "1", "first_name": "hu25", "EmailAddress": "a***@example.com",
                      "Phone": "********0173", "PasswordHash": "***", "PasswordSalt": "***"}  # fmt: skip
    assert out[1] == {"CustomerID": "2", "first_name": None, "EmailAddress": None, "Phone": None,
                      "PasswordHash": None, "PasswordSalt": None}  # fmt: skip
    assert dict(counts) == {"first_name": 1, "EmailAddress": 1, "Phone": 1, "PasswordHash": 1, "PasswordSalt": 1}
    assert counts.detected == () and counts.pii is None


def test_columns_the_scanner_flags_are_masked_and_reported(spark) -> None:
    rows = [(str(i), f"Name{i}", f"call me at 555-867-53{i:02d} or mail p{i}@example.org", "green")
            for i in range(20)]  # fmt: skip
    rows.append(("99", "Zed", "SSN 078-05-1120", "blue"))
    frame = spark.createDataFrame(rows, "CustomerID string, FirstName string, Notes string, Colour string")
    policy = MaskingPolicy({"FirstName": ColumnRule("literal", value="hu25")})
    masked, counts = apply_policy_spark(frame, policy)
    assert counts.detected == ("Notes",)
    assert set(counts.pii.findings) == {"Notes"} and counts.pii.findings["Notes"]["email"] == 20
    assert counts["Notes"] == 21
    out = masked.collect()
    assert {r["Notes"] for r in out} == {"***"}
    assert {r["Colour"] for r in out} == {"green", "blue"}
    assert {r["FirstName"] for r in out} == {"hu25"}


def test_detection_threshold_and_sample(spark) -> None:
    rows = [(f"plain text {i}",) for i in range(99)] + [("reach me: someone@example.com",)]
    frame = spark.createDataFrame(rows, "Notes string")
    assert detect_pii_columns(frame, ["Notes"], sample=100)[0] == ["Notes"]
    assert detect_pii_columns(frame, ["Notes"], sample=100, threshold=0.5)[0] == []
    flagged, report = detect_pii_columns(frame, ["Notes"], sample=10)
    assert flagged == [] and report.rows_scanned == 10


def test_hash_policy_reads_the_key_from_the_environment(spark, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipekit.errors import ConfigError

    policy = MaskingPolicy({"v": ColumnRule("hash")}, key_env="PIPEKIT_TEST_SPARK_KEY")
    frame = spark.createDataFrame([("x",)], "v string")
    monkeypatch.delenv("PIPEKIT_TEST_SPARK_KEY", raising=False)
    with pytest.raises(ConfigError, match="PIPEKIT_TEST_SPARK_KEY"):
        apply_policy_spark(frame, policy, detect_pii=False)
    monkeypatch.setenv("PIPEKIT_TEST_SPARK_KEY", "a")
    with pytest.raises(ConfigError, match="PIPEKIT_TEST_SPARK_KEY is 1 byte"):
        apply_policy_spark(frame, policy, detect_pii=False)
    monkeypatch.setenv("PIPEKIT_TEST_SPARK_KEY", KEY.decode())
    masked, _ = apply_policy_spark(frame, policy, detect_pii=False)
    assert masked.first()["v"] == mask_column(pa.array(["x"]), ColumnRule("hash"), key=KEY)[0][0].as_py()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=30), st.emails()), min_size=1, max_size=40))
def test_property_spark_equals_arrow_for_emails_and_partials(spark, values: list[str | None]) -> None:
    """Hypothesis finds (and shrinks) any text where the Spark and Arrow masks disagree."""
    from pyspark.sql import functions as F

    rules = {n: RULES[n] for n in ("email_partial", "email_domain", "partial4", "literal")}
    frame = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    rows = frame.select("i", *[F.expr(rule_sql("v", r)).alias(n) for n, r in rules.items()]).orderBy("i").collect()
    for name, rule in rules.items():
        expected = mask_column(pa.array(values, pa.string()), rule)[0].to_pylist()
        assert [r[name] for r in rows] == expected, name
