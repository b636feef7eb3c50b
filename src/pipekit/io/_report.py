"""The report ``clean_file`` returns and writes as ``<stem>_report.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipekit.core import ValidationReport


@dataclass
class CleanFileReport:
    """What ``clean_file`` read, dropped, masked and wrote; serialised as ``<stem>_report.json``."""

    input: dict[str, Any]
    outputs: dict[str, str]
    rows_read: int
    rows_written: int
    counts: dict[str, int]
    validation: ValidationReport
    quarantined: int = 0
    #: Where the raw malformed rows went (a private file outside ``outputs``) and their first lines.
    quarantine: dict[str, Any] = field(default_factory=dict)
    #: CSV formula guard: enabled, values guarded per column, header cells guarded, total.
    formula_guard: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: Staging folders that interrupted (killed) runs had left in the output folders, removed by this run.
    stale_staging_removed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    pipekit_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "pipekit_version": self.pipekit_version,
            "input": dict(self.input),
            "outputs": dict(self.outputs),
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "quarantined": self.quarantined,
            **({"quarantine": dict(self.quarantine)} if self.quarantine else {}),
            "counts": dict(self.counts),
            "csv_formula_guard": dict(self.formula_guard),
            "validation": self.validation.to_dict(),
            "settings": dict(self.settings),
            "stale_staging_removed": self.stale_staging_removed,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def summary(self) -> str:
        """A few lines for humans."""
        c = self.counts
        lines = [
            f"read {self.rows_read} row(s) from {self.input.get('path')}, wrote {self.rows_written}",
            f"dropped: {c.get('dropped_null', 0)} with a missing required value, "
            f"{c.get('dropped_duplicate', 0)} duplicate(s)"
            + (f"; quarantined {self.quarantined} malformed row(s)" if self.quarantined else ""),
            "masked: "
            + (", ".join(f"{k[7:]}={v}" for k, v in c.items() if k.startswith("masked.")) or "nothing"),
            f"future timestamps flagged: {c.get('future', 0)}; unparsable timestamps: "
            f"{c.get('timestamp_unparsable', 0)}",
        ]
        if c.get("control_chars"):
            mode = self.settings.get("control_chars", "strip")
            lines.append(
                f"values with control characters: {c['control_chars']} ({'stripped' if mode == 'strip' else mode})"
            )
        guard = self.formula_guard
        if guard and not guard.get("enabled", True):
            lines.append("CSV formula guard: off")
        elif guard.get("total"):
            per_column = ", ".join(f"{k}={v}" for k, v in guard.get("cells", {}).items())
            header = guard.get("header_cells", 0)
            lines.append(
                f"CSV formula guard: {guard['total']} cell(s) prefixed with ' ("
                + ", ".join(filter(None, [per_column, f"header={header}" if header else ""]))
                + ")"
            )
        lines += [f"{name}: {path}" for name, path in self.outputs.items()]
        if self.quarantine:
            lines.append(f"quarantine (raw rows, private, mode 0600): {self.quarantine['path']}")
        return "\n".join(lines)
