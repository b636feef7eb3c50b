"""A Great Expectations 1.x suite built from pipekit.core's rules, run in an ephemeral context.

The suite is data (``QualityRules``) turned into expectations; the result is sanitised (no raw email
or name ever leaves this module), summarised, and saved as JSON plus a small self-contained HTML page.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipekit._extras import require
from pipekit.errors import InputError, ValidationError
from pipekit.io.atomic import atomic_write_text

DEFAULT_REQUIRED: tuple[str, ...] = ("id", "name", "email", "timestamp")

# One "@", something on each side, a dot in the domain, no whitespace inside (case-insensitive).
_EMAIL_FALLBACK = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"


def _trimmed(pattern: str) -> str:
    """``^inner$`` -> ``^\\s*(?:inner)\\s*$``: the core trims values before matching, GX sees them raw."""
    return rf"^\s*(?:{pattern.removeprefix('^').removesuffix('$')})\s*$"


def _core_email_pattern() -> str:
    """pipekit.core's email regex, allowing the surrounding whitespace the core trims away."""
    from pipekit import core

    email = getattr(core, "EMAIL_PATTERN", None)
    return _trimmed(email) if email else _EMAIL_FALLBACK


@dataclass(frozen=True)
class QualityRules:
    """What the suite checks: required columns present and not null, email shape, timestamp parsable by the core."""

    required: tuple[str, ...] = DEFAULT_REQUIRED
    email_column: str = "email"
    timestamp_column: str = "timestamp"
    email_regex: str = _EMAIL_FALLBACK
    #: Columns whose offending values may be shown in reports; all others are masked.
    show_values_for: tuple[str, ...] = ("id", "timestamp")

    @classmethod
    def from_core(
        cls, required: Sequence[str] | None = None, *, email_column: str = "email",
        timestamp_column: str = "timestamp",
    ) -> QualityRules:
        """The rules pipekit.core applies (its DEFAULT_REQUIRED, EMAIL_PATTERN; timestamps via its parser)."""
        try:
            from pipekit.core import DEFAULT_REQUIRED as core_required
        except ImportError:  # pragma: no cover
            core_required = DEFAULT_REQUIRED
        email = _core_email_pattern()
        return cls(
            required=tuple(required or core_required), email_column=email_column,
            timestamp_column=timestamp_column, email_regex=email,
        )


@dataclass(frozen=True)
class QualityFailure:
    """One failed expectation, in words."""

    expectation: str
    column: str | None
    unexpected_count: int | None
    element_count: int | None
    sample_rows: tuple[int, ...] = ()
    sample_values: tuple[str, ...] = ()
    error: str | None = None

    def describe(self) -> str:
        """One line for logs and error messages."""
        where = f"column {self.column!r}: " if self.column else ""
        if self.error:
            return f"{where}{self.expectation} could not run: {self.error}"
        what = f"{self.unexpected_count} of {self.element_count} rows" if self.unexpected_count is not None else ""
        rows = f" (rows {', '.join(map(str, self.sample_rows))})" if self.sample_rows else ""
        return f"{where}{self.expectation} failed {what}{rows}".rstrip()


@dataclass(frozen=True)
class QualityResult:
    """The outcome of running the suite on one file; ``gx_result`` is GX's JSON with values sanitised."""

    source: str
    success: bool
    rows: int
    columns: tuple[str, ...]
    missing_columns: tuple[str, ...]
    failures: tuple[QualityFailure, ...]
    statistics: Mapping[str, Any]
    gx_result: Mapping[str, Any] = field(repr=False)
    gx_version: str = ""

    @property
    def ok(self) -> bool:
        """True when every required column is present (data problems are reported, the caller decides)."""
        return not self.missing_columns

    def summary(self) -> str:
        """Human summary: what is wrong, listed."""
        head = (
            f"{Path(self.source).name}: {self.statistics.get('successful_expectations', 0)}/"
            f"{self.statistics.get('evaluated_expectations', 0)} expectations passed on {self.rows} rows"
        )
        lines = [head]
        if self.missing_columns:
            lines.append(
                f"required columns missing: {', '.join(self.missing_columns)} "
                f"(found: {', '.join(self.columns) or 'none'})"
            )
        lines += [
            f"- {f.describe()}"
            for f in self.failures
            # Already said above, in words: do not repeat it as GX's expectation names.
            if not (self.missing_columns and (f.column in self.missing_columns or f.column is None))
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: pipekit's summary plus GX's (sanitised) validation result."""
        return {
            "source": self.source,
            "success": self.success,
            "ok": self.ok,
            "gate": "PASS" if self.ok else "FAIL",
            "rows": self.rows,
            "columns": list(self.columns),
            "missing_columns": list(self.missing_columns),
            "failures": [f.__dict__ | {"description": f.describe()} for f in self.failures],
            "statistics": dict(self.statistics),
            "gx_version": self.gx_version,
            "gx_result": self.gx_result,
        }


def _gx() -> Any:
    # Analytics off before the first import: the run must not try the network.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # On import and per context GX logs ~200 INFO lines (API-doc registration, metric re-declarations,
    # temp dirs): noise that buried the check's own lines in task logs. Warnings still show; a level set
    # by the user's logging config is kept.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    gx = require("great_expectations", "gx")
    # ...except this module, which GX itself sets to INFO on import ("Created temporary directory" per context).
    docs_logger = logging.getLogger("great_expectations.data_context.types.base")
    if docs_logger.level == logging.INFO:
        docs_logger.setLevel(logging.WARNING)
    return gx


def ephemeral_context() -> Any:
    """An in-memory GX context (nothing written to disk), progress bars off (they garble task logs)."""
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def build_suite(rules: QualityRules | None = None, *, name: str = "pipekit_customers", context: Any = None) -> Any:
    """A ``gx.ExpectationSuite`` for ``rules`` (defaults: the core's customer rules), bound to ``context``."""
    rules = rules or QualityRules.from_core()
    gx = _gx()
    if context is None:
        # GX 1.x suites need an active context even before they are saved.
        context = ephemeral_context()
    gxe = gx.expectations
    suite = gx.ExpectationSuite(name=name)
    suite.add_expectation(gxe.ExpectTableColumnsToMatchSet(column_set=list(rules.required), exact_match=False))
    for column in rules.required:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    if rules.email_column:
        suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column=rules.email_column, regex=rules.email_regex))
    if rules.timestamp_column:
        from pipekit.quality._gx_expectations import ExpectColumnValuesToBePipekitTimestamps

        # The core's parser, not a regex: "2026-02-30" has the right shape but is not a timestamp.
        suite.add_expectation(ExpectColumnValuesToBePipekitTimestamps(column=rules.timestamp_column))
    return suite


def read_csv_as_text(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> Any:
    """Read a CSV with every column as text; blank and whitespace-only cells become null (as in the core)."""
    pd = require("pandas", "gx")
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[], encoding=encoding, encoding_errors="strict",
        )
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not valid {encoding} (byte {exc.start})", hint="pass the file's encoding, e.g. --encoding latin-1"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"{path}: not readable as CSV: {exc}", hint="check the export (header row, quoting)") from exc
    # utf-8-sig: a BOM must not glue itself to the first column name.
    frame.columns = [str(c).lstrip("\ufeff") for c in frame.columns]
    return frame.replace(r"^\s*$", None, regex=True)


def validate_frame(customers: Any, rules: QualityRules | None = None, *, source: str = "<dataframe>") -> QualityResult:
    """Run the suite on a pandas DataFrame in an ephemeral GX context (nothing written, no network)."""
    rules = rules or QualityRules.from_core()
    gx = _gx()
    context = ephemeral_context()
    batch_definition = (
        context.data_sources.add_pandas("pipekit")
        .add_dataframe_asset("customers")
        .add_batch_definition_whole_dataframe("whole_file")
    )
    suite = context.suites.add(build_suite(rules, context=context))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="pipekit_customers", data=batch_definition, suite=suite)
    )
    raw = definition.run(
        batch_parameters={"dataframe": customers},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10, "include_unexpected_rows": False},
    ).to_json_dict()
    return _summarise(raw, rules, source=source, columns=tuple(map(str, customers.columns)), rows=len(customers),
                      gx_version=getattr(gx, "__version__", ""))


def validate_csv(path: str | os.PathLike[str], rules: QualityRules | None = None, *, encoding: str = "utf-8") -> QualityResult:
    """Read ``path`` (all text) and run the suite on it."""
    return validate_frame(read_csv_as_text(path, encoding=encoding), rules, source=str(path))


def _mask_value(value: Any, column: str | None, rules: QualityRules) -> Any:
    if value is None or column in rules.show_values_for:
        return value
    text = str(value)
    if column == rules.email_column:
        try:
            from pipekit.core import mask_email

            return mask_email(text)
        except Exception:  # no masker, or a value it cannot handle: redact rather than leak
            return "***"
    return "***"


def _summarise(
    raw: dict[str, Any], rules: QualityRules, *, source: str, columns: tuple[str, ...], rows: int, gx_version: str
) -> QualityResult:
    missing = tuple(c for c in rules.required if c not in columns)
    failures: list[QualityFailure] = []
    results = sorted(raw.get("results", []), key=lambda r: r["expectation_config"]["type"] != "expect_table_columns_to_match_set")
    for item in results:
        config = item.get("expectation_config", {})
        kwargs = config.get("kwargs", {})
        column = kwargs.get("column")
        result = item.get("result") or {}
        # Sanitise in place: offending values of sensitive columns never reach a report or a log.
        for key in ("partial_unexpected_list",):
            if key in result:
                result[key] = [_mask_value(v, column, rules) for v in result[key]]
        if "partial_unexpected_counts" in result:
            result["partial_unexpected_counts"] = [
                {"value": _mask_value(c.get("value"), column, rules), "count": c.get("count")}
                for c in result["partial_unexpected_counts"]
            ]
        info = item.get("exception_info") or {}
        error = None
        if info and not ("raised_exception" in info and not info["raised_exception"]):
            messages = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
            messages.append(info.get("exception_message"))
            error = next((m for m in messages if m), "the expectation raised an error")
            # Tracebacks name site-packages paths and are noise in a data report.
            for v in info.values():
                if isinstance(v, dict):
                    v.pop("exception_traceback", None)
            info.pop("exception_traceback", None)
        if item.get("success"):
            continue
        rows_idx = result.get("partial_unexpected_index_list") or []
        failures.append(
            QualityFailure(
                expectation=config.get("type", "?"),
                column=column,
                unexpected_count=result.get("unexpected_count"),
                element_count=result.get("element_count"),
                # 1-based data row numbers (header = row 0), like pipekit.core's ValidationReport.
                sample_rows=tuple(int(i) + 1 for i in rows_idx if isinstance(i, int))[:10],
                sample_values=tuple(str(v) for v in result.get("partial_unexpected_list", [])[:10]),
                error=error,
            )
        )
    stats = raw.get("statistics", {})
    return QualityResult(
        source=source, success=bool(raw.get("success")), rows=rows, columns=columns, missing_columns=missing,
        failures=tuple(failures), statistics=stats, gx_result=raw, gx_version=gx_version,
    )


def _expectation_rows(items: Sequence[Mapping[str, Any]]) -> str:
    esc = html.escape
    rows = []
    for item in items:
        cfg = item.get("expectation_config", {})
        res = item.get("result") or {}
        kwargs = {k: v for k, v in cfg.get("kwargs", {}).items() if k != "batch_id"}
        observed = res.get("observed_value")
        if observed is None and "unexpected_count" in res:
            observed = f"{res.get('unexpected_count')} unexpected of {res.get('element_count')}"
        samples = res.get("partial_unexpected_list") or []
        info = item.get("exception_info") or {}
        errors = [v["exception_message"] for v in info.values() if isinstance(v, dict) and v.get("exception_message")]
        ok = item.get("success")
        rows.append(
            "<tr class='{}'><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>".format(
                "ok" if ok else "bad",
                "&#10004;" if ok else "&#10008;",
                esc(cfg.get("type", "")),
                esc(json.dumps(kwargs, default=str)),
                esc(str(observed if observed is not None else "")) + (f"<br><em>{esc('; '.join(errors))}</em>" if errors else ""),
                esc(", ".join(map(str, samples[:10]))),
            )
        )
    head = "<tr><th></th><th>Expectation</th><th>Arguments</th><th>Observed</th><th>Sample of unexpected values (masked)</th></tr>"
    return f"<table>{head}\n{''.join(rows)}\n</table>"


def render_html(result: QualityResult) -> str:
    """A self-contained HTML page (no scripts, no external assets) describing ``result``.

    Two verdicts, not one: the *gate* (required columns present: PASSED/FAILED, what fails a delivery)
    and the *raw-data profile* (problems the clean step then drops or masks: counts and masked samples).
    """
    esc = html.escape
    gate_check = "expect_table_columns_to_match_set"
    items = list(result.gx_result.get("results", []))
    gate_items = [i for i in items if i.get("expectation_config", {}).get("type") == gate_check]
    profile_items = [i for i in items if i not in gate_items]
    gate = "PASSED" if result.ok else f"FAILED: required columns missing: {', '.join(result.missing_columns)}"
    colour = "#1a7f37" if result.ok else "#cf222e"
    problems = [i for i in profile_items if not i.get("success")]
    if problems:
        profile = (f"{len(problems)} of {len(profile_items)} checks found values in the raw file that the clean step "
                   "drops or masks (reported, not a failure unless fail_on_data_problems is set)")
    else:
        profile = f"all {len(profile_items)} checks passed on the raw file"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pipekit quality report: {esc(Path(result.source).name)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #d0d7de;padding:.4rem;text-align:left;vertical-align:top}} th{{background:#f6f8fa}}
tr.bad td:first-child{{color:#cf222e}} tr.ok td:first-child{{color:#1a7f37}} .status{{color:{colour};font-weight:bold}}
pre{{background:#f6f8fa;padding:.6rem}}
</style></head><body>
<h1>Quality report: {esc(Path(result.source).name)}</h1>
<p>Source: <code>{esc(result.source)}</code><br>Rows: {result.rows} &middot; Columns: {esc(', '.join(result.columns))}
&middot; Great Expectations {esc(result.gx_version)}</p>
<h2>Gate: required columns</h2>
<p class="status">Gate (required columns): {esc(gate)}</p>
{_expectation_rows(gate_items)}
<h2>Raw-data profile</h2>
<p>{esc(profile)}</p>
{_expectation_rows(profile_items)}
<h2>Summary</h2><pre>{esc(result.summary())}</pre>
</body></html>
"""


def save_result(result: QualityResult, json_path: str | os.PathLike[str], html_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the result as JSON and HTML, atomically."""
    atomic_write_text(json_path, json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    atomic_write_text(html_path, render_html(result))
    return Path(json_path), Path(html_path)


def check_csv(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    rules: QualityRules | None = None,
    stem: str | None = None,
    encoding: str = "utf-8",
    fail_on_data_problems: bool = False,
    label: str | None = None,
    source_name: str | None = None,
) -> tuple[QualityResult, Path, Path]:
    """Validate ``path``, save ``<stem>_gx.json``/``<stem>_gx.html`` in ``out_dir``, then fail if it must.

    Raises pipekit ValidationError (listing what is wrong) when required columns are missing, or on any
    failed expectation when ``fail_on_data_problems``; the reports are written first so they can be read.
    """
    source = Path(path)
    stem = stem or source.stem
    result = validate_csv(source, rules, encoding=encoding)
    if source_name:
        result = replace(result, source=source_name)
    json_path, html_path = save_result(result, Path(out_dir) / f"{stem}_gx.json", Path(out_dir) / f"{stem}_gx.html")
    if not result.ok or (fail_on_data_problems and not result.success):
        raise ValidationError(
            f"{label or source}: data quality check failed\n{result.summary()}",
            report=result,
            hint=f"see {html_path}; fix the export (every file needs columns {', '.join((rules or QualityRules.from_core()).required)}) and deliver it again",
        )
    return result, json_path, html_path
