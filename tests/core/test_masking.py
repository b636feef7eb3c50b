"""Email masking, the masking policy (data, files, matching) and applying it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipekit.core import (
    CUSTOMER_POLICY,
    GLUE_CUSTOMER_POLICY,
    MIN_KEY_BYTES,
    ColumnRule,
    MaskingPolicy,
    apply_policy,
    check_key,
    column_key,
    hash_kernel,
    mask_column,
    mask_email,
    mask_table,
    partial_kernel,
    resolve_key,
)
from pipekit.errors import ConfigError

KEY = b"test-key-not-secret"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.mark.parametrize(
    ("email", "mode", "expected"),
    [
        ("john.smith@example.com", "partial", "j***@example.com"),
        ("john.smith@example.com", "domain", "j***@e***.com"),
        ("jo@mail.example.co.uk", "domain", "j***@m***.uk"),
        ("a@localhost", "domain", "a***@l***"),
        ("a@b@c.com", "partial", "a***@c.com"),
        ("no-at-sign", "partial", "n***"),
        ("@example.com", "partial", "***@example.com"),
        ("ab@", "domain", "a***@"),
        ("élodie@exemple.fr", "partial", "é***@exemple.fr"),
    ],
)
def test_mask_email_modes(email: str, mode: str, expected: str) -> None:
    assert mask_email(email, mode=mode) == expected


def test_mask_email_hash_is_keyed_stable_and_normalised() -> None:
    first = mask_email("john.smith@example.com", mode="hash", key=KEY)
    assert HEX64.match(first)
    assert mask_email("  John.Smith@Example.com ", mode="hash", key=KEY) == first, "joinable across spellings"
    assert mask_email("john.smith@example.com", mode="hash", key=b"another-key-for-tests") != first
    assert mask_email("jane@example.com", mode="hash", key=KEY) != first


def test_mask_email_hash_reads_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPEKIT_MASK_KEY", KEY.decode())
    assert mask_email("a@b.co", mode="hash") == mask_email("a@b.co", mode="hash", key=KEY)


def test_hash_without_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPEKIT_MASK_KEY", raising=False)
    with pytest.raises(ConfigError, match="PIPEKIT_MASK_KEY"):
        mask_email("a@b.co", mode="hash")
    policy = MaskingPolicy({"ssn": ColumnRule("hash")}, key_env="MY_KEY")
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(ConfigError, match="MY_KEY"):
        apply_policy(pd.DataFrame({"SSN": ["1"]}), policy)


SHORT_KEY_CALLS = {
    "env var": lambda: mask_email("a@b.co", mode="hash"),
    "policy env var": lambda: apply_policy(pd.DataFrame({"SSN": ["1"]}), MaskingPolicy({"ssn": ColumnRule("hash")})),
    "key= argument": lambda: mask_table(pa.table({"c": ["x"]}), MaskingPolicy({"c": ColumnRule("hash")}), key=b"a"),
    "key= as text": lambda: resolve_key("a" * (MIN_KEY_BYTES - 1)),
    "hash_kernel": lambda: hash_kernel(pa.array(["x"]), b"short"),
    "mask_column": lambda: mask_column(pa.array(["x"]), ColumnRule("email", email_mode="hash"), key=b"short"),
}


@pytest.mark.parametrize("call", SHORT_KEY_CALLS.values(), ids=SHORT_KEY_CALLS.keys())
def test_short_keys_are_refused_everywhere_a_key_is_read(call: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # "a" came back from a 3-word dictionary: a key anyone can guess protects nothing.
    monkeypatch.setenv("PIPEKIT_MASK_KEY", "a")
    with pytest.raises(ConfigError, match=f"at least {MIN_KEY_BYTES}") as info:
        call()  # type: ignore[operator]
    assert "PIPEKIT_MASK_KEY" in str(info.value)
    assert "secrets.token_hex(32)" in (info.value.hint or "")


def test_short_key_message_names_the_variable_and_its_length_not_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "hunter2")
    with pytest.raises(ConfigError) as info:
        resolve_key(None, "MY_KEY")
    assert info.value.message.startswith("MY_KEY is 7 byte(s) long")
    assert "export MY_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')" in (info.value.hint or "")
    assert "hunter2" not in str(info.value)


def test_a_key_of_min_length_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPEKIT_MASK_KEY", "k" * MIN_KEY_BYTES)
    assert resolve_key(None) == b"k" * MIN_KEY_BYTES
    assert check_key(b"\x00" * MIN_KEY_BYTES) == b"\x00" * MIN_KEY_BYTES
    assert HEX64.match(mask_email("a@b.co", mode="hash"))


def test_unknown_email_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="email"):
        mask_email("a@b.co", mode="rot13")


LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=2, max_size=20)
DOMAIN = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z]{2,5}){1,2}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(LOCAL, DOMAIN, st.sampled_from(["partial", "domain", "hash"]))
def test_no_raw_local_part_survives_masking(local: str, domain: str, mode: str) -> None:
    email = f"{local}@{domain}"
    masked = mask_email(email, mode=mode, key=KEY)
    if mode == "hash":
        assert HEX64.match(masked) and "@" not in masked
    else:
        masked_local = masked.rsplit("@", 1)[0]
        assert masked_local == local[0] + "***"
        assert local not in masked_local


@settings(max_examples=200, deadline=None)
@given(st.lists(st.emails(), min_size=1, max_size=10))
def test_masked_emails_carry_no_local_part(emails: list[str]) -> None:
    frame = pd.DataFrame({"email": emails})
    out, counts = apply_policy(frame, CUSTOMER_POLICY)
    assert counts == {"email": len(emails)}
    for raw, masked in zip(emails, out["email"], strict=True):
        local = raw.rsplit("@", 1)[0]
        assert masked.rsplit("@", 1)[0] == local[0] + "***"


@pytest.mark.parametrize(
    "column", ["FirstName", "first_name", "firstname", "First Name", "FIRST-NAME", "firstName"]
)
def test_policy_matches_case_and_separator_insensitively(column: str) -> None:
    resolved = GLUE_CUSTOMER_POLICY.resolve([column, "LastName"])
    assert list(resolved) == [column]
    assert resolved[column] == ColumnRule("literal", value="hu25")


def test_column_key() -> None:
    assert column_key("First Name") == column_key("first_name") == column_key("FirstName") == "firstname"


def test_glue_policy_on_adventureworks_customer() -> None:
    customers = pd.DataFrame(
        {
            "CustomerID": ["1", "2"],
            "Title": ["Mr.", "Ms."],
            "FirstName": ["Orlando", "Keith"],
            "LastName": ["Gee", "Harris"],
            "EmailAddress": ["orlando0@adventure-works.com", None],
            "Phone": ["245-555-0173", "1 (11) 500 555-0132"],
            "PasswordHash": [
                "L/Rlwxzp4w7RWmEgXX+/A7cXaePEPcp+KwQhl2fJL7w=",
                "YPdtRdvqeAhj6wyxEsFdshBDNXxkCXn+CRgbvJItknw=",
            ],
            "PasswordSalt": ["1KjXYs4=", "fs1ZGhY="],
        }
    )
    original = customers.copy()
    out, counts = apply_policy(customers, GLUE_CUSTOMER_POLICY)
    assert out["FirstName"].tolist() == ["hu25", "hu25"]
    assert out["EmailAddress"].iloc[0] == "o***@adventure-works.com" and pd.isna(out["EmailAddress"].iloc[1])
    assert out["Phone"].tolist() == ["********0173", "***************0132"]
    assert out["PasswordHash"].tolist() == ["***", "***"] and out["PasswordSalt"].tolist() == ["***", "***"]
    assert out["LastName"].tolist() == ["Gee", "Harris"] and out["CustomerID"].tolist() == ["1", "2"]
    assert counts == {"FirstName": 2, "EmailAddress": 1, "Phone": 2, "PasswordHash": 2, "PasswordSalt": 2}
    pd.testing.assert_frame_equal(customers, original)


def test_partial_keeps_last_n_and_fully_masks_short_values() -> None:
    out = partial_kernel(pa.array(["555-123-4567", "1234", "12345", None, ""]), 4)
    assert out.to_pylist() == ["********4567", "****", "*2345", None, ""]
    assert partial_kernel(pa.array(["abc"]), 0).to_pylist() == ["***"]


def test_literal_redact_and_hash_keep_nulls() -> None:
    policy = MaskingPolicy(
        {
            "a": ColumnRule("literal", value="X"),
            "b": ColumnRule("redact", value="[gone]"),
            "c": ColumnRule("hash"),
            "d": ColumnRule("redact"),
        }
    )
    table = pa.table({"a": ["1", None], "b": [None, "2"], "c": ["same", "same"], "d": ["x", None]})
    out, counts = mask_table(table, policy, key=KEY)
    assert out.column("a").to_pylist() == ["X", None]
    assert out.column("b").to_pylist() == [None, "[gone]"]
    c = out.column("c").to_pylist()
    assert c[0] == c[1] and HEX64.match(c[0])
    assert out.column("d").to_pylist() == ["***", None]
    assert counts == {"a": 1, "b": 1, "c": 2, "d": 1}


def test_hash_of_non_string_column_uses_its_text() -> None:
    out, _ = mask_table(
        pa.table({"c": pa.array([7, None])}), MaskingPolicy({"c": ColumnRule("hash")}), key=KEY
    )
    assert HEX64.match(out.column("c")[0].as_py()) and out.column("c")[1].as_py() is None


POLICY_YAML = """\
# AdventureWorks customer masking
key_env: MY_MASK_KEY
columns:
  FirstName: {strategy: literal, value: hu25}
  EmailAddress: {strategy: email, email_mode: domain}
  Phone: {strategy: partial, keep_last: 2}
  PasswordHash: redact
"""


def test_policy_from_yaml_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML, encoding="utf-8")
    policy = MaskingPolicy.from_file(path)
    assert policy.key_env == "MY_MASK_KEY"
    assert policy.rules["Phone"] == ColumnRule("partial", keep_last=2)
    assert policy.rules["PasswordHash"] == ColumnRule("redact")
    assert MaskingPolicy.from_dict(policy.to_dict()) == policy
    json_path = tmp_path / "policy.json"
    json_path.write_text(json.dumps(policy.to_dict()), encoding="utf-8")
    assert MaskingPolicy.from_file(json_path) == policy


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"columns": {"Phone": {"strategy": "partial", "keep_last": -1}}}, "columns.Phone"),
        ({"columns": {"Phone": {"strategy": "partial", "keepLast": 2}}}, "keepLast"),
        ({"columns": {"Phone": {"strategy": "shred"}}}, "shred"),
        ({"columns": {"FirstName": {"strategy": "literal"}}}, "columns.FirstName"),
        ({"columns": {"Email": {"strategy": "email", "email_mode": "x"}}}, "email_mode"),
        ({"columns": {"Email": {"value": "x"}}}, "columns.Email.strategy"),
        ({"columns": {"a": 3}}, "columns.a"),
        ({"columns": {}}, "columns"),
        ({"colums": {"a": "redact"}}, "colums"),
        ({"columns": {"a": "redact"}, "key_env": ""}, "key_env"),
        ({"columns": {"first_name": "redact", "FirstName": "redact"}}, "same column"),
        (["redact"], "mapping"),
    ],
)
def test_bad_policy_names_the_field(data: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        MaskingPolicy.from_dict(data)  # type: ignore[arg-type]
    assert field in str(info.value)


def test_bad_policy_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        MaskingPolicy.from_file(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("columns: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        MaskingPolicy.from_file(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("columns:\n  Phone: {strategy: partial, keep_last: many}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"wrong.yaml.*columns.Phone"):
        MaskingPolicy.from_file(wrong)


def test_apply_policy_ignores_absent_columns() -> None:
    out, counts = apply_policy(pd.DataFrame({"id": ["1"]}), GLUE_CUSTOMER_POLICY)
    assert counts == {} and out["id"].tolist() == ["1"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("ab@.é日 *\x00")), max_size=12)),
        max_size=30,
    ),
    st.integers(0, 5),
    st.booleans(),
)
def test_fast_partial_email_mask_equals_the_regex(values: list[str | None], offset: int, large: bool) -> None:
    """The buffer-level fast path gives exactly the regex's result, also on sliced and large_string arrays."""
    import pyarrow.compute as pc

    from pipekit.core._fast_email import mask_partial_fast
    from pipekit.core.masking import EMAIL_PARTIAL_PATTERN

    array = pa.array(values, pa.large_string() if large else pa.string()).slice(min(offset, len(values)))
    expected = pc.replace_substring_regex(array, EMAIL_PARTIAL_PATTERN, r"\1***\2")
    assert mask_partial_fast(array, EMAIL_PARTIAL_PATTERN, r"\1***\2").to_pylist() == expected.to_pylist()


def test_policies_and_configs_are_hashable() -> None:
    from pipekit.core import CleaningConfig

    same = MaskingPolicy.from_dict(GLUE_CUSTOMER_POLICY.to_dict())
    assert hash(same) == hash(GLUE_CUSTOMER_POLICY) and same == GLUE_CUSTOMER_POLICY
    assert {CleaningConfig(policy=same): 1}[CleaningConfig(policy=GLUE_CUSTOMER_POLICY)] == 1
