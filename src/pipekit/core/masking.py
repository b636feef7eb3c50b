"""Masking declared once as data (a policy of per-column rules) and run as Arrow kernels."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from pipekit.core._arrow import arrow_to_series, as_array, as_strings
from pipekit.core._fast_email import mask_partial_fast
from pipekit.core.normalize import emails_kernel
from pipekit.errors import ConfigError

if TYPE_CHECKING:  # pandas loads only where a DataFrame is used (start-up: ~0.15 s)
    import pandas as pd

Strategy = Literal["literal", "redact", "partial", "hash", "email"]
STRATEGIES: tuple[str, ...] = ("literal", "redact", "partial", "hash", "email")
EMAIL_MODES: tuple[str, ...] = ("partial", "domain", "hash")
DEFAULT_KEY_ENV = "PIPEKIT_MASK_KEY"
#: What ``redact`` writes when the rule gives no ``value``; fixed so the original length does not leak.
REDACTED = "***"
MASK = "***"
_RULE_FIELDS = ("strategy", "value", "keep_last", "email_mode")
_POLICY_FIELDS = ("columns", "key_env")

# (?s): a newline inside a value is just another character. The lazy ".*?" stops at the LAST "@"
# because "[^@]*$" must reach the end, so "a@b@c.com" keeps only the domain "c.com".
_EMAIL_PARTIAL = r"(?s)^([^@]?).*?(@[^@]*)?$"
_EMAIL_DOMAIN = r"(?s)^([^@]?).*?@([^@])[^@]*?(\.[^.@]*)?$"
#: Public names of the two email-mask regexes (RE2 syntax), for engines that re-implement the masks.
EMAIL_PARTIAL_PATTERN = _EMAIL_PARTIAL
EMAIL_DOMAIN_PATTERN = _EMAIL_DOMAIN


@dataclass(frozen=True)
class ColumnRule:
    """How to mask one column: a literal, a redaction, a partial mask, a keyed hash or an email mask."""

    strategy: Strategy
    value: str | None = None
    keep_last: int = 4
    email_mode: str = "partial"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown masking strategy {self.strategy!r}", hint=f"use one of: {', '.join(STRATEGIES)}"
            )
        if self.strategy == "literal" and self.value is None:
            raise ConfigError(
                "strategy 'literal' needs a 'value'", hint="e.g. {strategy: literal, value: hu25}"
            )
        if self.value is not None and not isinstance(self.value, str):
            raise ConfigError(
                f"'value' must be a string, got {self.value!r}", hint="quote it in the policy file"
            )
        if isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int) or self.keep_last < 0:
            raise ConfigError(
                f"'keep_last' must be a whole number >= 0, got {self.keep_last!r}", hint="e.g. keep_last: 4"
            )
        if self.email_mode not in EMAIL_MODES:
            raise ConfigError(
                f"unknown email_mode {self.email_mode!r}", hint=f"use one of: {', '.join(EMAIL_MODES)}"
            )

    @property
    def needs_key(self) -> bool:
        """True when the rule is a keyed hash (directly or as an email pseudonym)."""
        return self.strategy == "hash" or (self.strategy == "email" and self.email_mode == "hash")

    def to_dict(self) -> dict[str, Any]:
        """The rule as the mapping a policy file uses (defaults left out)."""
        out: dict[str, Any] = {"strategy": self.strategy}
        if self.value is not None:
            out["value"] = self.value
        if self.strategy == "partial":
            out["keep_last"] = self.keep_last
        if self.strategy == "email":
            out["email_mode"] = self.email_mode
        return out


def column_key(name: str) -> str:
    """Canonical column name for matching: case-folded, separators removed ("First Name" -> "firstname")."""
    return re.sub(r"[\W_]+", "", str(name).casefold())


@dataclass(frozen=True)
class MaskingPolicy:
    """Per-column masking rules, matched to columns case- and separator-insensitively."""

    rules: Mapping[str, ColumnRule]
    key_env: str = DEFAULT_KEY_ENV
    _by_key: Mapping[str, ColumnRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[str, ColumnRule] = {}
        seen: dict[str, str] = {}
        for name, rule in self.rules.items():
            if not isinstance(rule, ColumnRule):
                raise ConfigError(f"columns.{name}: expected a ColumnRule, got {type(rule).__name__}")
            canon = column_key(name)
            if not canon:
                raise ConfigError(f"columns.{name!r}: a column name needs at least one letter or digit")
            if canon in seen:
                raise ConfigError(
                    f"columns.{name} and columns.{seen[canon]} name the same column",
                    hint="column names match case- and separator-insensitively; keep one of them",
                )
            seen[canon] = name
            by_key[canon] = rule
        if not isinstance(self.key_env, str) or not self.key_env:
            raise ConfigError("key_env must be a non-empty environment variable name")
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))
        object.__setattr__(self, "_by_key", MappingProxyType(by_key))

    def __hash__(self) -> int:
        """Hash by content, so policies (and CleaningConfigs holding them) can be dict keys."""
        return hash((tuple(self.rules.items()), self.key_env))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MaskingPolicy:
        """Build a policy from ``{"columns": {name: rule}, "key_env": ...}``; a rule may be just a strategy."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"a masking policy must be a mapping, got {type(data).__name__}",
                hint="top level: columns: {Column: {strategy: ...}}",
            )
        unknown = [k for k in data if k not in _POLICY_FIELDS]
        if unknown:
            raise ConfigError(
                f"unknown policy field(s): {', '.join(map(str, unknown))}",
                hint=f"allowed: {', '.join(_POLICY_FIELDS)}",
            )
        columns = data.get("columns")
        if not isinstance(columns, Mapping) or not columns:
            raise ConfigError(
                "policy field 'columns' must map column names to rules",
                hint="e.g. columns: {email: {strategy: email}}",
            )
        rules: dict[str, ColumnRule] = {}
        for name, spec in columns.items():
            rules[str(name)] = _rule_from_spec(str(name), spec)
        key_env = data.get("key_env", DEFAULT_KEY_ENV)
        if not isinstance(key_env, str) or not key_env:
            raise ConfigError(f"policy field 'key_env' must be an environment variable name, got {key_env!r}")
        return cls(rules=rules, key_env=key_env)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MaskingPolicy:
        """Read a policy from a YAML or JSON file (errors name the file and the field)."""
        import yaml

        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(
                f"masking policy file not found: {file}", hint="check the --policy path"
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read masking policy file {file}: {exc}") from exc
        try:
            data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"masking policy file {file} is not valid YAML/JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc.message}", hint=exc.hint) from exc

    def resolve(self, columns: Sequence[str]) -> dict[str, ColumnRule]:
        """Map each of ``columns`` that has a rule to that rule (FirstName, first_name, "First Name" all match)."""
        out: dict[str, ColumnRule] = {}
        for name in columns:
            rule = self._by_key.get(column_key(name))
            if rule is not None:
                out[name] = rule
        return out

    @property
    def needs_key(self) -> bool:
        """True when any rule needs the HMAC key."""
        return any(rule.needs_key for rule in self.rules.values())

    def to_dict(self) -> dict[str, Any]:
        """The policy as the mapping ``from_dict`` reads."""
        return {"key_env": self.key_env, "columns": {n: r.to_dict() for n, r in self.rules.items()}}


def _rule_from_spec(name: str, spec: Any) -> ColumnRule:
    if isinstance(spec, str):
        spec = {"strategy": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"columns.{name}: a rule must be a strategy name or a mapping, got {spec!r}",
            hint="e.g. {strategy: partial, keep_last: 4}",
        )
    unknown = [k for k in spec if k not in _RULE_FIELDS]
    if unknown:
        raise ConfigError(
            f"columns.{name}: unknown field(s) {', '.join(map(str, unknown))}",
            hint=f"allowed: {', '.join(_RULE_FIELDS)}",
        )
    if "strategy" not in spec:
        raise ConfigError(f"columns.{name}.strategy is missing", hint=f"use one of: {', '.join(STRATEGIES)}")
    try:
        return ColumnRule(**dict(spec))
    except ConfigError as exc:
        raise ConfigError(f"columns.{name}: {exc.message}", hint=exc.hint) from exc


CUSTOMER_POLICY = MaskingPolicy(rules={"email": ColumnRule("email", email_mode="partial")})
GLUE_CUSTOMER_POLICY = MaskingPolicy(
    rules={
        "FirstName": ColumnRule("literal", value="hu25"),
        "EmailAddress": ColumnRule("email", email_mode="partial"),
        "Phone": ColumnRule("partial", keep_last=4),
        "PasswordHash": ColumnRule("redact"),
        "PasswordSalt": ColumnRule("redact"),
    }
)


# --- key handling ---------------------------------------------------------------------------------


#: Shortest masking key accepted, in bytes. A keyed hash is only as secret as its key: with a short or
#: guessable key, anyone holding the output can hash candidate values (a name list, every phone number
#: of a region) and match them, so a 1-byte key protects nothing. 16 bytes is the floor; the hint gives
#: a 32-byte random one.
MIN_KEY_BYTES = 16
NEW_KEY_COMMAND = "python -c 'import secrets; print(secrets.token_hex(32))'"


def check_key(key: bytes, key_env: str = DEFAULT_KEY_ENV, *, source: str | None = None) -> bytes:
    """Return ``key`` if it is at least MIN_KEY_BYTES long, else raise ConfigError saying how to make one.

    ``source`` names where the key came from in the message (default: the ``key=`` argument).
    The message gives the key's length, never the key.
    """
    where = source or "the masking key passed as key=..."
    if not key:
        raise ConfigError(
            f"{where} is empty",
            hint=f"set {key_env} to a random secret of at least {MIN_KEY_BYTES} bytes: "
            f"export {key_env}=$({NEW_KEY_COMMAND})",
        )
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{where} is {len(key)} byte(s) long; a masking key needs at least {MIN_KEY_BYTES} "
            "(a short key can be guessed, and with it every hashed value can be matched by hashing candidates)",
            hint=f"generate one and keep it secret: export {key_env}=$({NEW_KEY_COMMAND})",
        )
    return key


def resolve_key(key: bytes | str | None, key_env: str = DEFAULT_KEY_ENV) -> bytes:
    """Return the HMAC key: ``key`` if given, else the environment variable ``key_env``; see check_key."""
    if key is None:
        env_value = os.environ.get(key_env)
        if not env_value:
            raise ConfigError(
                f"keyed hashing needs a secret key but {key_env} is not set",
                hint=f"export {key_env}=$({NEW_KEY_COMMAND}) (or pass key=...)",
            )
        return check_key(env_value.encode("utf-8"), key_env, source=key_env)
    if isinstance(key, str):
        key = key.encode("utf-8")
    return check_key(key, key_env)


# --- Arrow kernels ---------------------------------------------------------------------------------


def _constant(values: pa.Array | pa.ChunkedArray, text: str) -> pa.Array | pa.ChunkedArray:
    # Nulls stay null: a missing value carries no information to hide.
    return pc.if_else(pc.is_valid(values), pa.scalar(text, pa.string()), pa.scalar(None, pa.string()))


def partial_kernel(values: pa.Array | pa.ChunkedArray, keep_last: int) -> pa.Array | pa.ChunkedArray:
    """Replace every character but the last ``keep_last`` with '*'; values that short are fully masked."""
    text = as_strings(values)
    length = pc.utf8_length(text)
    short = pc.less_equal(length, keep_last)
    if keep_last == 0:
        tail = pc.if_else(pc.is_valid(text), pa.scalar("", text.type), pa.scalar(None, text.type))
    else:
        tail = pc.utf8_slice_codeunits(text, start=-keep_last)
    stars = pc.binary_repeat(
        pa.scalar("*", text.type), pc.max_element_wise(pc.subtract(length, keep_last), 0)
    )
    kept = pc.binary_join_element_wise(stars, tail, "")
    full = pc.binary_repeat(pa.scalar("*", text.type), length)
    return pc.if_else(short, full, kept)


def hash_kernel(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """HMAC-SHA256 (hex) of each value's UTF-8 text; each distinct value is hashed once.

    A key shorter than MIN_KEY_BYTES raises ConfigError (every keyed mask ends here).
    """
    check_key(key)
    text = as_strings(values)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    encoded = pc.dictionary_encode(text)
    digests = [
        None if v is None else hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest()
        for v in encoded.dictionary.to_pylist()
    ]
    return pc.take(pa.array(digests, type=pa.string()), encoded.indices)


def email_kernel(
    values: pa.Array | pa.ChunkedArray, mode: str = "partial", key: bytes | None = None
) -> pa.Array | pa.ChunkedArray:
    """Mask emails: partial "j***@example.com", domain "j***@e***.com", hash = keyed pseudonym."""
    text = as_strings(values)
    if mode == "partial":
        if isinstance(text, pa.ChunkedArray):
            chunks = [mask_partial_fast(chunk, _EMAIL_PARTIAL, rf"\1{MASK}\2") for chunk in text.chunks]
            return pa.chunked_array(chunks, type=chunks[0].type if chunks else text.type)
        return mask_partial_fast(text, _EMAIL_PARTIAL, rf"\1{MASK}\2")
    if mode == "domain":
        with_domain = pc.replace_substring_regex(text, _EMAIL_DOMAIN, rf"\1{MASK}@\2{MASK}\3")
        without = pc.replace_substring_regex(text, _EMAIL_PARTIAL, rf"\1{MASK}\2")
        has_at = pc.match_substring(text, "@")
        # A value with an "@" but no domain character after it falls through to the partial mask.
        domain_ok = pc.match_substring_regex(text, r"@[^@]+$")
        return pc.if_else(pc.and_(has_at, domain_ok), with_domain, without)
    if mode == "hash":
        if key is None:
            raise ConfigError(
                "email_mode 'hash' needs a key", hint=f"export {DEFAULT_KEY_ENV}=<secret> or pass key=..."
            )
        # Hash the normalised address so " John@X.com" and "john@x.com" give the same pseudonym.
        return hash_kernel(emails_kernel(text), key)
    raise ConfigError(f"unknown email mask mode {mode!r}", hint=f"use one of: {', '.join(EMAIL_MODES)}")


def mask_column(
    values: pa.Array | pa.ChunkedArray, rule: ColumnRule, *, key: bytes | None = None
) -> tuple[pa.Array | pa.ChunkedArray, int]:
    """Apply one rule to a column; return (masked values, number of non-null values masked)."""
    n_masked = len(values) - values.null_count
    if rule.strategy == "literal":
        assert rule.value is not None
        return _constant(values, rule.value), n_masked
    if rule.strategy == "redact":
        return _constant(values, REDACTED if rule.value is None else rule.value), n_masked
    if rule.strategy == "partial":
        return partial_kernel(values, rule.keep_last), n_masked
    if rule.strategy == "hash":
        if key is None:
            raise ConfigError("strategy 'hash' needs a key", hint=f"export {DEFAULT_KEY_ENV}=<secret>")
        return hash_kernel(values, key), n_masked
    return email_kernel(values, rule.email_mode, key), n_masked


def mask_table(
    table: pa.Table, policy: MaskingPolicy, *, key: bytes | None = None
) -> tuple[pa.Table, dict[str, int]]:
    """Mask every column of ``table`` that ``policy`` names; return (table, masked count per column)."""
    resolved = policy.resolve(table.column_names)
    if any(rule.needs_key for rule in resolved.values()):
        key = resolve_key(key, policy.key_env)
    counts: dict[str, int] = {}
    for name, rule in resolved.items():
        index = table.column_names.index(name)
        masked, n = mask_column(table.column(index), rule, key=key)
        table = table.set_column(index, pa.field(name, masked.type), masked)
        counts[name] = n
    return table, counts


# --- pandas / scalar wrappers ----------------------------------------------------------------------


def mask_email(email: str, *, mode: str = "partial", key: bytes | None = None) -> str:
    """Mask one email: "john.smith@example.com" -> "j***@example.com" (or domain / keyed hash mode)."""
    if mode == "hash":
        key = resolve_key(key, DEFAULT_KEY_ENV)
    masked: str = email_kernel(pa.array([email], type=pa.string()), mode, key)[0].as_py()
    return masked


def apply_policy(
    customers: pd.DataFrame, policy: MaskingPolicy, *, key: bytes | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Mask the columns ``policy`` names; return (masked copy, count of values masked per column)."""
    names = [str(c) for c in customers.columns]
    resolved = policy.resolve(names)
    if any(rule.needs_key for rule in resolved.values()):
        key = resolve_key(key, policy.key_env)
    out = customers.copy()
    counts: dict[str, int] = {}
    for column, name in zip(customers.columns, names, strict=True):
        rule = resolved.get(name)
        if rule is None:
            continue
        masked, n = mask_column(as_array(customers[column]), rule, key=key)
        out[column] = arrow_to_series(masked, customers[column])
        counts[name] = n
    return out, counts
