"""The policy -> Spark SQL compiler, without Spark: literals, identifiers, keyed rules refused."""

from __future__ import annotations

import pytest

from pipekit.core import GLUE_CUSTOMER_POLICY, ColumnRule, MaskingPolicy
from pipekit.errors import ConfigError
from pipekit.spark._sql import policy_select_sql, quote_ident, rule_sql, sql_string


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


@pytest.mark.parametrize("rule", [ColumnRule("hash"), ColumnRule("email", email_mode="hash")])
def test_keyed_rules_are_never_compiled_to_sql(rule: ColumnRule) -> None:
    """SQL would carry the key (or its HMAC pads) as a literal of the query plan: refused, whatever the key."""
    with pytest.raises(ConfigError, match="keyed hash") as info:
        rule_sql("ssn", rule)
    assert "apply_policy_spark" in (info.value.hint or "")
    policy = MaskingPolicy({"FirstName": ColumnRule("literal", value="hu25"), "ssn": rule})
    with pytest.raises(ConfigError, match="'ssn' uses a keyed hash"):
        policy_select_sql(["FirstName", "ssn"], policy, key=b"topsecret-glue-key-0123")


def test_unknown_email_mode_is_a_config_error() -> None:
    # ColumnRule validates its own fields, so build an odd rule by hand to reach the compiler's guard.
    odd = type("Rule", (), {"strategy": "email", "email_mode": "rot13", "value": None, "keep_last": 4})()
    with pytest.raises(ConfigError, match="rot13"):
        rule_sql("email", odd)


def test_extra_rules_mask_detected_columns() -> None:
    policy = MaskingPolicy({"FirstName": ColumnRule("literal", value="hu25")})
    sql = policy_select_sql(["FirstName", "Notes"], policy, extra_rules={"Notes": ColumnRule("redact")})
    assert "'***' END AS `Notes`" in sql
