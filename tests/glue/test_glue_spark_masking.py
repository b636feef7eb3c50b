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


@pytest.fixture(scope="module")
def values() -> list[str | None]:
    return TRICKY + _fuzz(1500)


def _spark_masks(
    spark, values: list[object], rules: dict[str, ColumnRule], value_type: str = "string", partitions: int = 1
) -> dict:
    """Each rule applied by apply_policy_spark to its own copy of ``values``: {rule name: masked values in order}."""
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([(i, v) for i, v in enumerate(values)], f"i int, v {value_type}")
    if partitions > 1:
        frame = frame.repartition(partitions)
    frame = frame.select("i", *[F.col("v").alias(name) for name in rules])
    masked, _ = apply_policy_spark(frame, MaskingPolicy(rules), key=KEY, detect_pii=False)
    rows = sorted(masked.collect(), key=lambda r: r["i"])
    return {name: [r[name] for r in rows] for name in rules}


def test_every_rule_matches_the_arrow_kernel(spark, values: list[str | None]) -> None:
    """Every rule, keyed ones included, gives exactly the core kernel's output, row for row."""
    # Several partitions and small Arrow batches: the keyed UDF sees many batches, some of a few rows.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "97")
    try:
        got = _spark_masks(spark, values, RULES, partitions=3)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    source = pa.array(values, pa.string())
    for name, rule in RULES.items():
        expected = mask_column(source, rule, key=KEY)[0].to_pylist()
        mismatches = [(values[i], expected[i], got[name][i]) for i in range(len(values)) if expected[i] != got[name][i]]
        assert not mismatches, f"{name}: {len(mismatches)} mismatch(es), first: {mismatches[:3]}"


def test_hash_is_the_keyed_hmac_of_the_pandas_path(spark) -> None:
    import hashlib
    import hmac

    got = _spark_masks(spark, ["alice", "", None, "zoë 😀"], {"hash": RULES["hash"]})["hash"]
    assert got == [hmac.new(KEY, b"alice", hashlib.sha256).hexdigest(), hmac.new(KEY, b"", hashlib.sha256).hexdigest(),
                   None, hmac.new(KEY, "zoë 😀".encode(), hashlib.sha256).hexdigest()]  # fmt: skip


def test_keyed_hash_of_a_non_string_column_hashes_its_text(spark) -> None:
    got = _spark_masks(spark, [7, None, -120, 2**40], {"hash": RULES["hash"]}, value_type="bigint")["hash"]
    assert got == mask_column(pa.array(["7", None, "-120", str(2**40)]), RULES["hash"], key=KEY)[0].to_pylist()


def test_the_udf_batch_function_takes_any_pandas_string_series() -> None:
    """pyspark hands the UDF object Series (pandas 1/2, as on Glue) or str Series (pandas 3); None and NaN are null."""
    import pandas as pd

    from pipekit.spark._keyed import mask_series

    values = ["a", None, "", "zoë 😀", " X@Y.com "]
    for rule in (RULES["hash"], RULES["email_hash"]):
        expected = mask_column(pa.array(values, pa.string()), rule, key=KEY)[0].to_pylist()
        for series in (pd.Series([*values, float("nan")], dtype=object), pd.Series([*values, None], dtype="string")):
            got = [None if pd.isna(v) else v for v in mask_series(series, rule, KEY)]
            assert got == [*expected, None]


def test_a_short_key_is_refused_before_spark_runs(spark) -> None:
    from pipekit.errors import ConfigError

    frame = spark.createDataFrame([("x",)], "v string")
    with pytest.raises(ConfigError, match="at least 16"):
        apply_policy_spark(frame, MaskingPolicy({"v": ColumnRule("hash")}), key=b"fifteen-bytes!!", detect_pii=False)


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
def test_property_spark_equals_arrow_for_emails_partials_and_hashes(spark, values: list[str | None]) -> None:
    """Hypothesis finds (and shrinks) any text where the Spark and Arrow masks disagree."""
    names = ("email_partial", "email_domain", "partial4", "literal", "hash", "email_hash")
    got = _spark_masks(spark, list(values), {n: RULES[n] for n in names})
    for name in names:
        assert got[name] == mask_column(pa.array(values, pa.string()), RULES[name], key=KEY)[0].to_pylist(), name
