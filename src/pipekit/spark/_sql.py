"""Compile a masking policy to Spark SQL expressions (text only: no pyspark import here).

The same text runs in :func:`pipekit.spark.apply_policy_spark` (via ``F.expr``) and in the Glue Studio
``SparkSQL`` node, so the script and the visual job mask identically. Each expression reproduces the
pandas/Arrow kernels of :mod:`pipekit.core.masking` with Spark built-ins only (no Python UDF):

- literal / redact: the constant, nulls stay null;
- partial: ``*`` for every character but the last ``keep_last`` (characters are code points on both sides);
- email: the same regexes as the Arrow kernels; RE2's ``$`` (end of text) is Java's ``\\z``, and
  ``\\1`` in a replacement is Java's ``$1``.

Keyed rules (hash, email hash) are refused: in SQL the key (or its HMAC pads) would be a literal of
the query plan, which ``explain()``, the Spark UI and event logs print. They run as a vectorised UDF
with the key in a broadcast instead (:mod:`pipekit.spark._keyed`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from pipekit.core import masking as _core
from pipekit.errors import ConfigError

# The core's constants and RE2 patterns, in Java syntax: one source of truth, so a change to the
# pandas/Arrow rules reaches Spark (and the parity tests say so if the translation falls short).
MASK = _core.MASK
REDACTED = _core.REDACTED


def re2_to_java(pattern: str) -> str:
    """Translate the RE2 patterns the core uses to java.util.regex: only ``$`` differs (RE2: end of text)."""
    return re.sub(r"(?<!\\)\$", r"\\z", pattern)


EMAIL_PARTIAL_JAVA = re2_to_java(_core.EMAIL_PARTIAL_PATTERN)
EMAIL_DOMAIN_JAVA = re2_to_java(_core.EMAIL_DOMAIN_PATTERN)
EMAIL_HAS_DOMAIN_JAVA = r"@[^@]+\z"


def quote_ident(name: str) -> str:
    """A Spark SQL identifier: backquoted, inner backquotes doubled."""
    return "`" + name.replace("`", "``") + "`"


def sql_string(text: str) -> str:
    """A Spark SQL string literal (Spark unescapes backslashes in literals, so they are doubled)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _email_partial(col: str) -> str:
    return f"regexp_replace({col}, {sql_string(EMAIL_PARTIAL_JAVA)}, {sql_string(f'$1{MASK}$2')})"


def _empty_case(col: str, mode: str, expr: str) -> str:
    """Spark's regexp_replace returns '' untouched, Arrow's applies the pattern: use the core's answer for ''."""
    empty = _core.email_kernel(pa.array([""], pa.string()), mode)[0].as_py()
    return f"CASE WHEN {col} = '' THEN {sql_string(empty)} ELSE {expr} END"


def rule_sql(column: str, rule: Any) -> str:
    """Spark SQL expression that masks ``column`` by ``rule`` (a ColumnRule); nulls stay null.

    A keyed rule raises ConfigError: see the module docstring.
    """
    col = quote_ident(column)
    strategy = rule.strategy
    if strategy in ("literal", "redact"):
        value = rule.value if rule.value is not None else REDACTED
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE {sql_string(value)} END"
    if strategy == "partial":
        k = int(rule.keep_last)
        stars = f"repeat('*', char_length({col}))"
        if k == 0:
            return stars
        kept = f"concat(repeat('*', char_length({col}) - {k}), substring({col}, -{k}))"
        return f"CASE WHEN char_length({col}) <= {k} THEN {stars} ELSE {kept} END"
    if strategy == "hash":
        raise _keyed_rule(column)
    if strategy == "email":
        mode = rule.email_mode
        if mode == "partial":
            return _empty_case(col, mode, _email_partial(col))
        if mode == "domain":
            domain = (
                f"regexp_replace({col}, {sql_string(EMAIL_DOMAIN_JAVA)}, {sql_string(f'$1{MASK}@$2{MASK}$3')})"
            )
            has_domain = f"{col} RLIKE '@' AND {col} RLIKE {sql_string(EMAIL_HAS_DOMAIN_JAVA)}"
            return _empty_case(col, mode, f"CASE WHEN {has_domain} THEN {domain} ELSE {_email_partial(col)} END")
        if mode == "hash":
            raise _keyed_rule(column)
        raise ConfigError(f"column {column!r}: unknown email_mode {mode!r}")
    raise ConfigError(f"column {column!r}: unknown masking strategy {strategy!r}")


def policy_select_sql(
    columns: Sequence[str], policy: Any, *, table: str = "customers", key: bytes | None = None,
    extra_rules: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """``SELECT`` every column of ``table`` in order, masked where ``policy`` (or ``extra_rules``) says.

    A keyed rule raises ConfigError (a query cannot hold a key safely); ``key`` is accepted and unused.
    """
    rules = dict(policy.resolve(list(columns)))
    rules.update(extra_rules or {})
    items = []
    for name in columns:
        rule = rules.get(name)
        expr = quote_ident(name) if rule is None else f"{rule_sql(name, rule)} AS {quote_ident(name)}"
        items.append(expr)
    return "SELECT " + ",\n       ".join(items) + f"\nFROM {quote_ident(table)}"


def _keyed_rule(column: str) -> ConfigError:
    """The error for a keyed rule: SQL would put the key in the query plan."""
    return ConfigError(
        f"column {column!r} uses a keyed hash, which pipekit does not compile to Spark SQL: the key "
        "would be part of the query plan, which explain(), the Spark UI and event logs show",
        hint="mask it with pipekit.spark.apply_policy_spark (the key reaches the executors in a broadcast); "
        "a Glue Studio graph cannot hold a key, so use the script job for hash rules",
    )
