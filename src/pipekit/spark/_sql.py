"""Compile a masking policy to Spark SQL expressions (text only: no pyspark import here).

The same text runs in :func:`pipekit.spark.apply_policy_spark` (via ``F.expr``) and in the Glue Studio
``SparkSQL`` node, so the script and the visual job mask identically. Each expression reproduces the
pandas/Arrow kernels of :mod:`pipekit.core.masking` with Spark built-ins only (no Python UDF):

- literal / redact: the constant, nulls stay null;
- partial: ``*`` for every character but the last ``keep_last`` (characters are code points on both sides);
- email: the same regexes as the Arrow kernels; RE2's ``$`` (end of text) is Java's ``\\z``, and
  ``\\1`` in a replacement is Java's ``$1``;
- hash: HMAC-SHA256 hex, built from ``sha2`` as RFC 2104 defines it:
  ``H((K ^ opad) || H((K ^ ipad) || m))``. The key-derived pads become binary literals, so the key
  is part of the query plan: see docs/glue.md for where plans can show up.
"""

from __future__ import annotations

import hashlib
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
# Arrow's utf8_trim_whitespace trims Unicode whitespace; Spark's trim() only trims ' '.
UNICODE_TRIM_JAVA = r"^\p{IsWhite_Space}+|\p{IsWhite_Space}+\z"

_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104's B)


def quote_ident(name: str) -> str:
    """A Spark SQL identifier: backquoted, inner backquotes doubled."""
    return "`" + name.replace("`", "``") + "`"


def sql_string(text: str) -> str:
    """A Spark SQL string literal (Spark unescapes backslashes in literals, so they are doubled)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """RFC 2104 inner and outer padded keys for HMAC-SHA256."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sql(value_sql: str, key: bytes) -> str:
    """HMAC-SHA256 (lower-case hex) of the UTF-8 bytes of ``value_sql``, from Spark's ``sha2``."""
    ipad, opad = hmac_pads(key)
    inner = f"unhex(sha2(concat(X'{ipad.hex()}', encode({value_sql}, 'UTF-8')), 256))"
    return f"sha2(concat(X'{opad.hex()}', {inner}), 256)"


def _email_partial(col: str) -> str:
    return f"regexp_replace({col}, {sql_string(EMAIL_PARTIAL_JAVA)}, {sql_string(f'$1{MASK}$2')})"


def _empty_case(col: str, mode: str, expr: str) -> str:
    """Spark's regexp_replace returns '' untouched, Arrow's applies the pattern: use the core's answer for ''."""
    empty = _core.email_kernel(pa.array([""], pa.string()), mode)[0].as_py()
    return f"CASE WHEN {col} = '' THEN {sql_string(empty)} ELSE {expr} END"


def rule_sql(column: str, rule: Any, key: bytes | None = None) -> str:
    """Spark SQL expression that masks ``column`` by ``rule`` (a ColumnRule); nulls stay null."""
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
        return hmac_sql(col, _need_key(key, column))
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
            # The pandas path hashes the normalised address (trimmed, lower-cased): same here.
            normalised = f"lower(regexp_replace({col}, {sql_string(UNICODE_TRIM_JAVA)}, ''))"
            return hmac_sql(normalised, _need_key(key, column))
        raise ConfigError(f"column {column!r}: unknown email_mode {mode!r}")
    raise ConfigError(f"column {column!r}: unknown masking strategy {strategy!r}")


def policy_select_sql(
    columns: Sequence[str], policy: Any, *, table: str = "customers", key: bytes | None = None,
    extra_rules: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """``SELECT`` every column of ``table`` in order, masked where ``policy`` (or ``extra_rules``) says."""
    rules = dict(policy.resolve(list(columns)))
    rules.update(extra_rules or {})
    items = []
    for name in columns:
        rule = rules.get(name)
        expr = quote_ident(name) if rule is None else f"{rule_sql(name, rule, key)} AS {quote_ident(name)}"
        items.append(expr)
    return "SELECT " + ",\n       ".join(items) + f"\nFROM {quote_ident(table)}"


def _need_key(key: bytes | None, column: str) -> bytes:
    """The HMAC key, or a ConfigError saying a keyed hash cannot be compiled without one (or with a short one)."""
    if not key:
        raise ConfigError(
            f"column {column!r} uses a keyed hash, which needs the key to compile",
            hint="pass key=... (or set the policy's key_env); a Glue Studio graph cannot hold a key, "
            "so use the script job for hash rules",
        )
    # The same floor as the Arrow path, so a key the core refuses never masks data on Spark either.
    return _core.check_key(key)
