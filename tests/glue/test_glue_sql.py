"""The policy -> Spark SQL compiler, without Spark: literals, identifiers, HMAC pads, key handling."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pipekit.core import GLUE_CUSTOMER_POLICY, ColumnRule, MaskingPolicy
from pipekit.errors import ConfigError
from pipekit.spark._sql import hmac_pads, policy_select_sql, quote_ident, rule_sql, sql_string


def _hmac_from_pads(key: bytes, message: bytes) -> str:
    """HMAC computed exactly the way the SQL does it: sha2 over pads, in Python."""
    ipad, opad = hmac_pads(key)
    inner = hashlib.sha256(ipad + message).digest()
    return hashlib.sha256(opad + inner).hexdigest()


@pytest.mark.parametrize("key", [b"k", b"secret-key", b"x" * 64, b"y" * 65, "ключ".encode()])
def test_hmac_pads_reproduce_python_hmac(key: bytes) -> None:
    for message in (b"", b"john@example.com", "Zoë".encode()):
        assert _hmac_from_pads(key, message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_identifiers_and_literals_are_escaped() -> None:
    assert quote_ident("First Name") == "`First Name`"
    assert quote_ident("we`ird") == "`we``ird`"
    assert sql_string("O'Brien") == "'O\\'Brien'"
    assert sql_string("a\\b") == "'a\\\\b'"


def test_select_keeps_column_order_and_masks_policy_columns() -> None:
    sql = policy_select_sql(["CustomerID", "first_name", "Phone"], GLUE_CUSTOMER_POLICY, table="t")
    lines = [line.strip() for line in sql.splitlines()]
    assert lines[0] == "SELECT `CustomerID`,"
    assert "'hu25'" in lines[1] and lines[1].endswith("AS `first_name`,")  # matched separator-insensitively
    assert "substring(`Phone`, -4)" in lines[2] and lines[2].endswith("AS `Phone`")
    assert lines[-1] == "FROM `t`"


def test_hash_rule_needs_a_key_and_never_embeds_it_raw() -> None:
    rule = ColumnRule("hash")
    with pytest.raises(ConfigError, match="keyed hash"):
        rule_sql("ssn", rule, None)
    sql = rule_sql("ssn", rule, b"topsecret-glue-key")
    assert "topsecret" not in sql and b"topsecret-glue-key".hex() not in sql
    with pytest.raises(ConfigError, match="at least 16"):  # the core's floor holds on Spark too
        rule_sql("ssn", rule, b"a")


def test_unknown_email_mode_is_a_config_error() -> None:
    # ColumnRule validates its own fields, so build an odd rule by hand to reach the compiler's guard.
    odd = type("Rule", (), {"strategy": "email", "email_mode": "rot13", "value": None, "keep_last": 4})()
    with pytest.raises(ConfigError, match="rot13"):
        rule_sql("email", odd)


def test_extra_rules_mask_detected_columns() -> None:
    policy = MaskingPolicy({"FirstName": ColumnRule("literal", value="hu25")})
    sql = policy_select_sql(["FirstName", "Notes"], policy, extra_rules={"Notes": ColumnRule("redact")})
    assert "'***' END AS `Notes`" in sql
