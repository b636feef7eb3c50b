"""A PII scanner over any table: counts, per column, the values that contain each kind of entity.

Regexes run vectorised in Arrow (RE2); checksums (Luhn for cards, mod-97 for IBANs) run in Python
only on the few values a regex already matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipekit.core._arrow import frame_to_table, is_stringlike
from pipekit.errors import ConfigError

if TYPE_CHECKING:  # pandas loads only where a DataFrame is used (start-up: ~0.15 s)
    import pandas as pd

ENTITIES: tuple[str, ...] = ("email", "phone", "credit_card", "us_ssn", "ipv4", "iban")

# A masked local part ("j***") has no allowed character right before "@", so it never matches.
_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}"
# Phones need structure: grouped digits with separators or parentheses, or a leading "+".
# Bare digit runs (ids, epoch seconds) and partial masks ("********4567", "XXXX-1234") do not match.
_PHONE = (
    r"(?:^|[^\w+])(?:"
    r"(?:\+?1[\s.\-]?)?\(\d{3}\)[\s.\-]?\d{3}[\s.\-]\d{4}"  # (555) 123-4567
    r"|(?:\+?1[\s.\-])?\d{3}[\s.\-]\d{3}[\s.\-]\d{4}"  # 555-123-4567, 555.123.4567, +1-555-123-4567
    r"|\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,4}(?:[\s.\-]?\d{2,4}){2,4}"  # +44 20 7946 0958
    r"|\d{1,3}\s?\(\d{1,4}\)\s?\d{3}\s?\d{3}[\s.\-]\d{4}"  # 1 (11) 500 555-0132 (AdventureWorks)
    r"|00\d{1,3}[\s.\-]\d{1,4}(?:[\s.\-]\d{2,4}){2,4}"  # 0044 20 7946 0958
    r")(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?:$|[^\w])"  # optional extension: x123, ext. 12
)
# A card number stands alone: a digit run glued to more of a hyphenated token (GUIDs such as
# 86802078-3791-0521-8e3c-...) is not a card, even when its digits happen to pass Luhn.
_CARD = r"(?:^|[^\w\-])\d(?:[ \-]?\d){12,18}(?:$|[^\w\-])"
_CARD_FIND = re.compile(r"(?<![\w\-])\d(?:[ \-]?\d){12,18}(?![\w\-])")
_SSN = (
    r"(?:^|[^\w\-])(?:00[1-9]|0[1-9]\d|[1-578]\d\d|6[0-57-9]\d|66[0-57-9])-(?:0[1-9]|[1-9]\d)"
    r"-(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})(?:$|[^\w\-])"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"(?:^|[^\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?:$|[^\w.])"
_IBAN = r"(?:^|[^\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?:$|[^\w])"
_IBAN_FIND = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w])")

# IBAN lengths per country (ISO 13616 registry); an unknown country code is not an IBAN.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """True when a digit string passes the Luhn checksum used by payment cards."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """True when a string is an IBAN of the right length for its country with a valid mod-97 check."""
    iban = candidate.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _has_card(text: str) -> bool:
    for match in _CARD_FIND.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def _has_iban(text: str) -> bool:
    return any(iban_valid(m.group()) for m in _IBAN_FIND.finditer(text))


# entity -> (RE2 pattern run in Arrow, optional Python check on the values it matched)
_DETECTORS: dict[str, tuple[str, Callable[[str], bool] | None]] = {
    "email": (_EMAIL, None),
    "phone": (_PHONE, None),
    "credit_card": (_CARD, _has_card),
    "us_ssn": (_SSN, None),
    "ipv4": (_IPV4, None),
    "iban": (_IBAN, _has_iban),
}

_ANY_ENTITY = "|".join(f"(?:{pattern})" for pattern, _ in _DETECTORS.values())


@dataclass(frozen=True)
class PiiReport:
    """Per column, how many values contain each kind of PII; ``rows_scanned`` rows were read."""

    findings: Mapping[str, Mapping[str, int]]
    rows_scanned: int

    @property
    def total(self) -> int:
        """Total number of (value, entity) findings across all columns."""
        return sum(sum(entities.values()) for entities in self.findings.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "rows_scanned": self.rows_scanned,
            "total": self.total,
            "findings": {col: dict(entities) for col, entities in self.findings.items()},
        }

    def summary(self) -> str:
        """A short human-readable account of the findings."""
        if not self.total:
            return f"no PII found in {self.rows_scanned} row(s)"
        lines = [f"{self.total} PII finding(s) in {self.rows_scanned} row(s):"]
        for col, entities in self.findings.items():
            found = ", ".join(f"{entity} {n}" for entity, n in entities.items())
            lines.append(f"  {col}: {found}")
        return "\n".join(lines)


def scan_column(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Count the values of one column that contain each entity (only entities found are listed)."""
    if not is_stringlike(values.type):
        try:
            values = pc.cast(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return {}  # nested or binary data: nothing text-like to scan
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    # One pass with every pattern at once; most columns (ids, names, masked output) have no hit at
    # all, and the per-entity passes then run only on the few values that matched something.
    candidates = pc.fill_null(pc.match_substring_regex(values, _ANY_ENTITY), False)
    if not pc.any(candidates).as_py():
        return {}
    values = values.filter(candidates)
    found: dict[str, int] = {}
    for entity, (pattern, check) in _DETECTORS.items():
        hits = pc.fill_null(pc.match_substring_regex(values, pattern), False)
        n = int(pc.sum(hits).as_py() or 0)
        if n and check is not None:
            n = sum(1 for text in values.filter(hits).to_pylist() if check(text))
        if n:
            found[entity] = n
    return found


def scan_pii(
    table: pd.DataFrame | pa.Table, columns: Sequence[str] | None = None, *, sample: int | None = None
) -> PiiReport:
    """Scan text columns for emails, phones, cards, SSNs, IPv4s and IBANs; ``sample`` = first N rows."""
    data = table if isinstance(table, pa.Table) else frame_to_table(table)
    if sample is not None:
        data = data.slice(0, max(sample, 0))
    names = list(data.column_names if columns is None else columns)
    present = set(data.column_names)  # not `in data.column_names`: it builds the list anew each time
    missing = [c for c in names if c not in present]
    if missing:
        raise ConfigError(
            f"column(s) to scan not in the data: {', '.join(missing)}",
            hint=f"columns present: {', '.join(data.column_names)}",
        )
    findings = {}
    index = {name: i for i, name in enumerate(data.column_names)}
    for name in _columns_worth_scanning(data, names):
        found = scan_column(data.column(index[name]))
        if found:
            findings[name] = MappingProxyType(found)
    return PiiReport(findings=MappingProxyType(findings), rows_scanned=data.num_rows)


def _columns_worth_scanning(data: pa.Table, names: Sequence[str]) -> list[str]:
    """``names`` less the string columns with no ASCII digit and no ``@`` anywhere: every entity needs
    one, and a byte test per column is far cheaper than the regex (10,000 columns took 100 s).
    """
    keep = []
    index = {name: i for i, name in enumerate(data.column_names)}  # column(name) searches every name
    for name in names:
        column = data.column(index[name])
        if not is_stringlike(column.type) or any(_may_hold_pii(chunk) for chunk in column.chunks):
            keep.append(name)
    return keep


def _may_hold_pii(chunk: pa.Array) -> bool:
    """Whether the bytes of a string array hold an ASCII digit or ``@`` (slices look at their bytes only)."""
    chunk = chunk.cast(pa.large_string())
    data = chunk.buffers()[2]
    if data is None or len(chunk) == 0:
        return False
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=len(chunk) + 1, offset=chunk.offset * 8)
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return bool((((raw >= 48) & (raw <= 57)) | (raw == 64)).any())
