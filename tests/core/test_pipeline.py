"""The whole pipeline: order of steps, counts, errors, and that pandas and Arrow paths agree."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipekit.core import (
    CleaningConfig,
    ColumnRule,
    MaskingPolicy,
    apply_policy,
    clean_dataframe,
    clean_table,
    dedup_batch,
    drop_duplicates,
    drop_nulls,
    finalize_batch,
    flag_future,
    normalize_batch,
    normalize_emails,
    normalize_names,
)
from pipekit.errors import ConfigError, ValidationError

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_clean_dataframe_end_to_end(messy_customers: pd.DataFrame) -> None:
    original = messy_customers.copy()
    out, report = clean_dataframe(messy_customers, now=NOW)
    pd.testing.assert_frame_equal(messy_customers, original)
    # Rows 4 ("  " name) and 6 (None name) are dropped; none of the rest are exact duplicates (ids differ).
    assert out["id"].tolist() == ["007", "2", "3", "5", "7", "8"]
    assert out["name"].tolist() == ["O'Brien", "Jean-Luc Picard", "Élodie", "O'Brien", "Ana", "X"]
    assert out["email"].tolist() == [
        "j***@example.com",
        "j***@x.com",
        "e***@x.fr",
        "j***@example.com",
        "n***",
        "x***@y.org",
    ]
    assert out["is_future"].tolist() == [False, True, pd.NA, False, False, False]
    assert report.rows_in == 8 and report.rows_out == 6
    assert report.counts == {
        "dropped_null": 2,
        "control_chars": 0,
        "dropped_duplicate": 0,
        "masked.email": 6,
        "future": 1,
        "timestamp_unparsable": 1,
    }
    data = json.loads(json.dumps(report.to_dict()))
    assert data["validation"]["problems"][0]["kind"] == "null"


def test_dedup_runs_on_normalised_values_before_masking() -> None:
    frame = pd.DataFrame(
        {
            "id": ["1", "1", "2"],
            "name": ["ann lee", " ANN  LEE ", "ann lee"],
            "email": ["Ann@X.com", "ann@x.com ", "anna@x.com"],  # 3rd masks to the same "a***@x.com"
            "timestamp": ["2020-01-01"] * 3,
        }
    )
    out, report = clean_dataframe(frame, CleaningConfig(dedup_keys=("id", "email")), now=NOW)
    assert report.counts["dropped_duplicate"] == 1, "normalised spellings of one person are merged"
    assert out["id"].tolist() == ["1", "2"], "distinct people with equal masked emails are kept"
    assert out["email"].tolist() == ["a***@x.com", "a***@x.com"]


def test_exact_duplicates_after_normalisation_are_dropped() -> None:
    frame = pd.DataFrame(
        {
            "id": ["1", " 1"],
            "name": ["bo", "BO"],
            "email": ["b@x.co", "B@X.CO"],
            "timestamp": ["2020-01-01"] * 2,
        }
    )
    out, report = clean_dataframe(frame, now=NOW)
    assert len(out) == 1 and report.counts["dropped_duplicate"] == 1


def test_missing_required_columns_raise_with_report() -> None:
    with pytest.raises(ValidationError) as info:
        clean_dataframe(pd.DataFrame({"id": ["1"], "email": ["a@b.co"]}), now=NOW)
    assert "name, timestamp" in str(info.value)
    assert info.value.report.missing_columns == ("name", "timestamp")
    assert info.value.exit_code == 1


def test_unknown_dedup_key_is_a_config_error(messy_customers: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="customer_id"):
        clean_dataframe(messy_customers, CleaningConfig(dedup_keys=("customer_id",)), now=NOW)


def test_header_only_input_gives_empty_output() -> None:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in ("id", "name", "email", "timestamp")})
    out, report = clean_dataframe(frame, now=NOW)
    assert len(out) == 0 and list(out.columns) == ["id", "name", "email", "timestamp", "is_future"]
    assert report.rows_in == report.rows_out == 0


def test_ids_are_not_converted(messy_customers: pd.DataFrame) -> None:
    out, _ = clean_dataframe(messy_customers, now=NOW)
    assert out["id"].iloc[0] == "007"


def test_glue_policy_runs_through_the_pipeline() -> None:
    from pipekit.core import GLUE_CUSTOMER_POLICY

    frame = pd.DataFrame(
        {
            "CustomerID": ["1", "2"],
            "FirstName": ["orlando", "keith"],
            "EmailAddress": ["Orlando0@adventure-works.com", "keith0@adventure-works.com"],
            "Phone": ["245-555-0173", "170-555-0127"],
            "ModifiedDate": ["2005-08-01 00:00:00", "2006-08-01 00:00:00"],
        }
    )
    config = CleaningConfig(
        required=("CustomerID",),
        name_column="FirstName",
        email_column="EmailAddress",
        timestamp_column="ModifiedDate",
        policy=GLUE_CUSTOMER_POLICY,
    )
    out, report = clean_dataframe(frame, config, now=NOW)
    assert out["FirstName"].tolist() == ["hu25", "hu25"]
    assert out["EmailAddress"].tolist() == ["o***@adventure-works.com", "k***@adventure-works.com"]
    assert out["Phone"].tolist() == ["********0173", "********0127"]
    assert report.counts["masked.Phone"] == 2 and report.counts["future"] == 0


def test_hash_policy_without_key_fails_before_any_output(
    monkeypatch: pytest.MonkeyPatch, messy_customers: pd.DataFrame
) -> None:
    monkeypatch.delenv("PIPEKIT_MASK_KEY", raising=False)
    config = CleaningConfig(policy=MaskingPolicy({"email": ColumnRule("email", email_mode="hash")}))
    with pytest.raises(ConfigError, match="PIPEKIT_MASK_KEY"):
        clean_dataframe(messy_customers, config, now=NOW)
    out, _ = clean_dataframe(messy_customers, config, now=NOW, key=b"pipeline-test-key-0123")
    assert out["email"].str.len().eq(64).all()


def test_rerun_is_idempotent(messy_customers: pd.DataFrame) -> None:
    first, _ = clean_dataframe(messy_customers, now=NOW)
    second, _ = clean_dataframe(messy_customers, now=NOW)
    pd.testing.assert_frame_equal(first, second)


def test_pandas_steps_agree_with_arrow_pipeline(messy_customers: pd.DataFrame) -> None:
    """The per-step pandas wrappers, chained by hand, give what the Arrow pipeline gives."""
    config = CleaningConfig()
    arrow_out, _ = clean_dataframe(messy_customers, config, now=NOW)
    frame = messy_customers.apply(lambda s: s.str.strip())
    frame, _ = drop_nulls(frame, config.required)
    frame["name"] = normalize_names(frame["name"])
    frame["email"] = normalize_emails(frame["email"])
    frame, _ = drop_duplicates(frame)
    frame, _ = apply_policy(frame, config.policy)
    frame, _, _ = flag_future(frame, now=NOW)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), arrow_out, check_dtype=False)


NAMES = st.sampled_from(["ann lee", "ANN LEE", " Ann  Lee", "o'brien", "ÉLODIE", "", "  ", None, "jean-luc"])
EMAILS = st.sampled_from(["a@x.com", " A@X.com", "b@y.org", "bad", "", None, "john.smith@example.com"])
TIMES = st.sampled_from(["2020-01-01", "2099-01-01T00:00:00Z", "2024-12-31 23:59:59+01:00", "nope", "", None])
IDS = st.sampled_from(["1", "2", "007", " 3 ", None])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(IDS, NAMES, EMAILS, TIMES), max_size=60), st.sampled_from([1, 7, 64]))
def test_batched_kernels_match_whole_table(rows: list[tuple], batch_size: int) -> None:
    """What a streaming engine does (normalise per batch, dedup globally, finalise per batch) equals the in-memory path."""
    frame = pd.DataFrame(rows, columns=["id", "name", "email", "timestamp"], dtype=object)
    table = pa.Table.from_pandas(frame, preserve_index=False).cast(
        pa.schema([(c, pa.string()) for c in frame.columns])
    )
    config = CleaningConfig()
    whole, report = clean_table(table, config, now=NOW)

    normalized = []
    counts: dict[str, int] = {}
    for batch in table.to_batches(max_chunksize=batch_size):
        part, step = normalize_batch(pa.Table.from_batches([batch], schema=table.schema), config)
        normalized.append(part)
        counts["dropped_null"] = counts.get("dropped_null", 0) + step["dropped_null"]
    deduped, step = dedup_batch(pa.concat_tables(normalized) if normalized else table.slice(0, 0), config)
    finals = []
    for batch in deduped.to_batches(max_chunksize=batch_size) or []:
        part, step2 = finalize_batch(pa.Table.from_batches([batch], schema=deduped.schema), config, now=NOW)
        finals.append(part)
        for k, v in step2.items():
            counts[k] = counts.get(k, 0) + v
    streamed = pa.concat_tables(finals) if finals else whole.slice(0, 0)
    assert streamed.to_pylist() == whole.to_pylist()
    assert counts.get("dropped_null", 0) == report.counts["dropped_null"]
    assert step["dropped_duplicate"] == report.counts["dropped_duplicate"]
    for key in ("future", "timestamp_unparsable", "masked.email"):
        assert counts.get(key, 0) == report.counts[key]


ANY_TEXT = st.one_of(st.none(), st.text(max_size=15))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(ANY_TEXT, ANY_TEXT, ANY_TEXT, ANY_TEXT), max_size=25))
def test_any_text_is_cleaned_without_errors_and_masked(rows: list[tuple]) -> None:
    """Arbitrary Unicode never crashes a kernel, and no surviving email keeps more than one local character."""
    frame = pd.DataFrame(rows, columns=["id", "name", "email", "timestamp"], dtype=object)
    out, report = clean_dataframe(frame, now=NOW)
    assert report.rows_out == len(out) <= len(frame)
    assert report.counts["dropped_null"] + report.counts["dropped_duplicate"] == len(frame) - len(out)
    for masked in out["email"]:
        local = masked.rsplit("@", 1)[0] if "@" in masked else masked
        assert local.endswith("***") and len(local) <= 4


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(IDS, NAMES, EMAILS, TIMES), max_size=40))
def test_pandas_wrappers_agree_with_arrow_pipeline_on_random_rows(rows: list[tuple]) -> None:
    """Chaining the pandas step functions gives the same frame as the Arrow pipeline, on random data."""
    frame = pd.DataFrame(rows, columns=["id", "name", "email", "timestamp"], dtype=object)
    config = CleaningConfig()
    arrow_out, report = clean_dataframe(frame, config, now=NOW)
    steps = frame.apply(lambda s: s.str.strip())
    steps, n_null = drop_nulls(steps, config.required)
    steps["name"] = normalize_names(steps["name"])
    steps["email"] = normalize_emails(steps["email"])
    steps, n_dup = drop_duplicates(steps)
    steps, masked = apply_policy(steps, config.policy)
    steps, n_future, n_bad = flag_future(steps, now=NOW)
    assert (n_null, n_dup, n_future, n_bad) == (
        report.counts["dropped_null"],
        report.counts["dropped_duplicate"],
        report.counts["future"],
        report.counts["timestamp_unparsable"],
    )
    assert masked.get("email", 0) == report.counts["masked.email"]
    assert steps.reset_index(drop=True).astype(object).to_dict("list") == arrow_out.astype(object).to_dict(
        "list"
    )
