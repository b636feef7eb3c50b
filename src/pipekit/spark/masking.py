"""The masking policy on Spark: the same rules and results as ``pipekit.core.apply_policy``.

Unkeyed rules (literal, redact, partial, email masks) are Spark SQL built-ins (``pipekit.spark._sql``).
Keyed rules (hash, email hash) run the core's kernel in a vectorised UDF with the key in a broadcast
(``pipekit.spark._keyed``), so the key is never part of a query plan.

Columns the policy does not name are sampled and run through the core PII scanner; a column with
findings is redacted too (like Glue's Detect Sensitive Data with column masking), and the findings
are reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipekit._extras import require
from pipekit.spark._keyed import broadcast_key, keyed_mask_column
from pipekit.spark._sql import quote_ident, rule_sql

#: A column is masked when at least this fraction of sampled non-null values hold PII (0 = any finding).
PII_THRESHOLD = 0.0


class MaskCounts(dict[str, int]):
    """Masked values per column, plus what PII detection found (``pii``) and masked (``detected``)."""

    def __init__(self, counts: Mapping[str, int], pii: Any | None = None, detected: Sequence[str] = ()) -> None:
        super().__init__(counts)
        self.pii = pii
        self.detected = tuple(detected)


def detect_pii_columns(
    frame: Any,
    columns: Sequence[str],
    *,
    sample: int = 1000,
    threshold: float = PII_THRESHOLD,
) -> tuple[list[str], Any]:
    """Scan the first ``sample`` rows of ``columns`` with the core PII scanner; return (flagged, PiiReport)."""
    import pyarrow as pa

    from pipekit.core import scan_pii

    if not columns or sample <= 0:
        return [], scan_pii(pa.table({}))
    rows = frame.select([quote_ident(c) for c in columns]).limit(sample).collect()
    table = pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)})
    report = scan_pii(table)
    flagged = []
    for name, entities in report.findings.items():
        present = table.column(name).length() - table.column(name).null_count
        hits = max(entities.values(), default=0)
        if hits and hits >= threshold * max(present, 1):
            flagged.append(name)
    return flagged, report


def masking_exprs(
    frame: Any,
    policy: Any,
    *,
    key: bytes | None = None,
    detect_pii: bool = True,
    pii_sample: int = 1000,
    pii_threshold: float = PII_THRESHOLD,
) -> tuple[list[Any], dict[str, Any], list[str], Any]:
    """Plan the masking of ``frame``: (select expressions, rule per masked column, detected columns, PiiReport)."""
    require("pyspark", "spark")
    from pyspark.sql import functions as F

    from pipekit.core import ColumnRule
    from pipekit.core.masking import resolve_key

    columns = list(frame.columns)
    rules: dict[str, Any] = dict(policy.resolve(columns))
    if any(rule.needs_key for rule in rules.values()):
        key = resolve_key(key, policy.key_env)
    detected: list[str] = []
    report = None
    if detect_pii:
        unruled = [c for c in columns if c not in rules]
        detected, report = detect_pii_columns(frame, unruled, sample=pii_sample, threshold=pii_threshold)
        for name in detected:
            rules[name] = ColumnRule("redact")
    key_ref = None
    if any(rule.needs_key for rule in rules.values()):
        assert key is not None  # resolved above: detection only adds redact rules
        key_ref = broadcast_key(frame.sparkSession, key)
    exprs = []
    for name in columns:
        rule = rules.get(name)
        if rule is None:
            exprs.append(F.col(quote_ident(name)))
        elif rule.needs_key:
            exprs.append(keyed_mask_column(F.col(quote_ident(name)), rule, key_ref).alias(name))
        else:
            exprs.append(F.expr(rule_sql(name, rule)).alias(name))
    return exprs, rules, detected, report


def apply_policy_spark(
    frame: Any,
    policy: Any,
    *,
    key: bytes | None = None,
    detect_pii: bool = True,
    pii_sample: int = 1000,
    pii_threshold: float = PII_THRESHOLD,
) -> tuple[Any, MaskCounts]:
    """Mask ``frame`` by ``policy`` (+ detected PII columns); return (masked DataFrame, MaskCounts)."""
    from pyspark.sql import functions as F

    exprs, rules, detected, report = masking_exprs(
        frame, policy, key=key, detect_pii=detect_pii, pii_sample=pii_sample, pii_threshold=pii_threshold
    )
    masked = frame.select(*exprs)
    counts: dict[str, int] = {}
    if rules:
        # Every non-null value of a masked column is masked (nulls stay null): one pass counts them all.
        row = frame.agg(*[F.count(F.col(quote_ident(c))).alias(f"c{i}") for i, c in enumerate(rules)]).first()
        counts = {c: int(row[f"c{i}"]) for i, c in enumerate(rules)}
    return masked, MaskCounts(counts, report, detected)


def count_exprs(rules: Mapping[str, Any]) -> list[Any]:
    """Aggregate expressions counting masked values per column, for ``DataFrame.observe``."""
    from pyspark.sql import functions as F

    return [F.count(F.col(quote_ident(c))).alias(c) for c in rules]
