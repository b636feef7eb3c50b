"""The customer-drop job as plain steps: find -> ingest -> validate (GX) -> clean -> flag future (shell) -> publish.

A delivery that fails the required-columns gate or cannot be parsed is a poison file: it is moved to
``rejected/`` with a ``.reason.json`` (counts and masked samples, never raw values), its content gets one
``rejected`` manifest line, and the step raises ValidationError/InputError so the caller shows it failed.

Each step takes paths and small dicts and returns a small JSON-able dict, so the Airflow DAG
(``adapters/airflow/dags/customer_pipeline.py``), the CLI (``pipekit airflow run-customer``) and a
notebook run exactly the same code. Heavy libraries are imported inside the steps that need them.

Layout under the base directory (default ``$AIRFLOW_HOME/pipekit/customers``)::

    landing/customers.csv                         the drop (removed only after a verified backup)
    backups/customers.20261124T010203000000Z.csv  original, UTC-stamped, plus .sha256 sidecar
    manifest.jsonl                                append-only ingestion manifest
    rejected/bad.csv.20261124T010203000000Z       a refused delivery, plus .reason.json beside it
    output/customers_<sha12>/customers_cleaned.csv|.parquet, _report.json, _gx.json|.html,
                             customers_future_ids.csv, customers_run.json
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipekit.errors import ConfigError, InputError, PipekitError, StorageError, ValidationError
from pipekit.io.atomic import atomic_write_text

log = logging.getLogger("pipekit.customer_pipeline")

SCRIPT_ENV = "PIPEKIT_FLAG_SCRIPT"
_SCRIPT_NAME = "flag_future_timestamps.sh"
_VARIABLE_PREFIX = "pipekit_customer_"
_ENV_PREFIX = "PIPEKIT_CUSTOMER_"


def _parse_now(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"now={value!r} is not an ISO-8601 timestamp", hint="e.g. 2026-01-01T00:00:00Z") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{value!r} is not a boolean", hint="use true or false")


@dataclass(frozen=True)
class CustomerPipelineConfig:
    """Where the job reads and writes, and how strict it is; resolved once at the edge."""

    landing_dir: Path
    output_dir: Path
    backup_dir: Path
    manifest_path: Path
    rejected_dir: Path
    pattern: str = "*.csv"
    settle_seconds: float = 0.0
    now: datetime | None = None
    policy_file: str | None = None
    encoding: str = "utf-8"
    bad_rows: str = "error"
    fail_on_data_problems: bool = False
    remove_source: bool = True

    @classmethod
    def resolve(
        cls,
        params: Mapping[str, Any] | None = None,
        *,
        variable: Callable[[str], str | None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CustomerPipelineConfig:
        """Each setting from: DAG params/CLI > Airflow Variable ``pipekit_customer_<name>`` > env ``PIPEKIT_CUSTOMER_<NAME>`` > default.

        Names: base_dir, landing_dir, output_dir, backup_dir, manifest, rejected_dir, pattern, settle_seconds, now,
        policy_file, encoding, bad_rows, fail_on_data_problems, remove_source.
        """
        params = params or {}
        env = os.environ if env is None else env

        def pick(name: str) -> Any:
            if params.get(name) not in (None, ""):
                return params[name]
            if variable is not None:
                value = variable(_VARIABLE_PREFIX + name)
                if value not in (None, ""):
                    return value
            return env.get(_ENV_PREFIX + name.upper()) or None

        home = env.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
        base = Path(pick("base_dir") or Path(home) / "pipekit" / "customers").expanduser()
        bad_rows = pick("bad_rows") or "error"
        if bad_rows not in ("error", "quarantine"):
            raise ConfigError(f"bad_rows={bad_rows!r}", hint="use error or quarantine")
        try:
            settle = float(pick("settle_seconds") or 0)
        except ValueError as exc:
            raise ConfigError(f"settle_seconds={pick('settle_seconds')!r} is not a number") from exc
        return cls(
            landing_dir=Path(pick("landing_dir") or base / "landing").expanduser(),
            output_dir=Path(pick("output_dir") or base / "output").expanduser(),
            backup_dir=Path(pick("backup_dir") or base / "backups").expanduser(),
            manifest_path=Path(pick("manifest") or base / "manifest.jsonl").expanduser(),
            rejected_dir=Path(pick("rejected_dir") or base / "rejected").expanduser(),
            pattern=pick("pattern") or "*.csv",
            settle_seconds=settle,
            now=_parse_now(pick("now")),
            policy_file=pick("policy_file"),
            encoding=pick("encoding") or "utf-8",
            bad_rows=bad_rows,
            fail_on_data_problems=_parse_bool(pick("fail_on_data_problems") or False),
            remove_source=_parse_bool(pick("remove_source") if pick("remove_source") is not None else True),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (paths as strings)."""
        return {f.name: (str(v) if isinstance(v, Path | datetime) else v) for f in fields(self) for v in [getattr(self, f.name)]}


def work_dir_for(config: CustomerPipelineConfig, file_name: str, sha256: str) -> Path:
    """Output folder of one delivery: ``<output>/<stem>_<sha256[:12]>`` (same content -> same folder)."""
    return config.output_dir / f"{Path(file_name).stem}_{sha256[:12]}"


def find_files(config: CustomerPipelineConfig) -> list[str]:
    """Every settled landing file matching the pattern, in arrival order (oldest mtime first)."""
    from pipekit.io.ingest import find_landing_files

    found = find_landing_files(config.landing_dir, config.pattern, settle_seconds=config.settle_seconds)
    log.info("%d settled file(s) matching %s in %s: %s", len(found), config.pattern, config.landing_dir,
             ", ".join(p.name for p in found) or "none")
    return [str(p) for p in found]


def find_file(config: CustomerPipelineConfig) -> str | None:
    """The oldest settled landing file matching the pattern, or None."""
    found = find_files(config)
    return found[0] if found else None


def _reject(
    ingested: Mapping[str, Any], config: CustomerPipelineConfig, *, stage: str, error: Exception,
    quality: Any = None, previous: Mapping[str, Any] | None = None,
) -> PipekitError:
    """Move the delivery to ``rejected/`` with its reason; return the error for the caller to raise."""
    from pipekit.io.ingest import reject_file

    entry = _entry(ingested)
    reason: dict[str, Any] = {"stage": stage, "error": type(error).__name__,
                              "reason": getattr(error, "message", str(error))}
    if quality is not None:
        # QualityResult: column names, counts and masked samples only (gx_suite masks sensitive values).
        reason.update(
            gate="FAIL" if quality.missing_columns else "PASS",
            missing_columns=list(quality.missing_columns), columns=list(quality.columns), rows=quality.rows,
            problems=[
                {"column": f.column, "check": f.expectation, "unexpected": f.unexpected_count,
                 "of": f.element_count, "sample_rows": list(f.sample_rows), "sample_values_masked": list(f.sample_values)}
                # The column-set check (no column) is said above as missing_columns.
                for f in quality.failures if f.column is not None and f.column not in quality.missing_columns
            ],
        )
    if previous is not None:
        reason["previously_rejected"] = {k: previous.get(k) for k in ("ingested_at", "run_id", "outputs")}
    done = reject_file(entry, manifest_path=config.manifest_path, rejected_dir=config.rejected_dir, reason=reason)
    where = done.rejected_path or "(already moved)"
    log.warning("rejected %s (sha256 %s) at %s: moved to %s, reason %s", entry["file_name"], entry["sha256"],
                stage, where, done.reason_path)
    message = f"{getattr(error, 'message', error)}\nrejected: {entry['file_name']} moved to {where}; reason in {done.reason_path}"
    hint = "fix the export and deliver it again (a new content is a new delivery); the next files were not held up"
    if isinstance(error, ValidationError):
        return ValidationError(message, report=error.report, hint=hint)
    return InputError(message, hint=hint)


def ingest(path: str, config: CustomerPipelineConfig, *, run_id: str) -> dict[str, Any]:
    """Manifest + verified backup of ``path``; ``status`` is ``duplicate`` when that content was already processed."""
    from pipekit.io.ingest import describe_file, ingest_file

    try:
        result = ingest_file(
            path, manifest_path=config.manifest_path, backup_dir=config.backup_dir, run_id=run_id,
            encoding=config.encoding, remove_duplicates=config.remove_source,
        )
    except InputError as exc:
        if not Path(path).is_file():
            raise
        # Not even countable as CSV (e.g. a field over the csv module's limit): rejected as it is, no backup.
        facts = describe_file(Path(path), run_id=run_id, count_rows=False)
        raise _reject({"entry": facts.to_dict()}, config, stage="ingest", error=exc) from exc
    entry = result.entry
    out = result.to_dict()
    out["work_dir"] = str(work_dir_for(config, entry.file_name, entry.sha256))
    if result.status == "rejected":
        previous = result.previous.to_dict() if result.previous else {}
        earlier = ValidationError(
            f"{entry.file_name}: this content (sha256 {entry.sha256}) was rejected before "
            f"({(previous.get('outputs') or {}).get('reason') or 'see the earlier reason file'})"
        )
        raise _reject(out, config, stage="ingest", error=earlier, previous=previous)
    log.info(
        "ingest %s: %s, %d bytes, %d rows, sha256 %s, backup %s",
        entry.file_name, result.status, entry.size_bytes, entry.row_count, entry.sha256, entry.backup_path,
    )
    return out


def _entry(ingested: Mapping[str, Any]) -> Mapping[str, Any]:
    return ingested["entry"]


def _input_link(ingested: Mapping[str, Any]) -> Path:
    """The verified backup, seen under its original file name (outputs are named after the delivery)."""
    entry = _entry(ingested)
    backup = Path(entry["backup_path"])
    if not backup.is_file():
        raise StorageError(f"backup {backup} of {entry['file_name']} is gone", hint="re-run the ingest task")
    link = Path(ingested["work_dir"]) / "_input" / entry["file_name"]
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == backup.resolve():
            return link
        link.unlink()
    link.symlink_to(backup.resolve())
    return link


def validate(ingested: Mapping[str, Any], config: CustomerPipelineConfig) -> dict[str, Any]:
    """Run the GX suite on the backed-up original; save ``<stem>_gx.json/.html``; raise ValidationError if it must fail."""
    from pipekit.io.ingest import verify_backup
    from pipekit.quality import check_csv

    entry = _entry(ingested)
    stem = Path(entry["file_name"]).stem
    if not verify_backup(entry["backup_path"], entry["sha256"]):
        raise StorageError(f"backup {entry['backup_path']} of {entry['file_name']} is missing or does not match "
                           f"sha256 {entry['sha256']}", hint="re-run the ingest task to take a fresh backup")
    try:
        result, json_path, html_path = check_csv(
            entry["backup_path"], ingested["work_dir"], stem=stem, encoding=config.encoding,
            fail_on_data_problems=config.fail_on_data_problems,
            label=f"{entry['file_name']} (delivered as {entry['source_path']}, backup {entry['backup_path']})",
            # The report is about the bytes checked, which outlive the landing file: the verified backup.
            source_name=entry["backup_path"],
        )
    except ValidationError as exc:
        raise _reject(ingested, config, stage="validate", error=exc, quality=exc.report) from exc
    except InputError as exc:
        raise _reject(ingested, config, stage="validate", error=exc) from exc
    log.info("quality check:\n%s", result.summary())
    return {
        "gate": "PASS" if result.ok else "FAIL",
        "success": result.success,
        "summary": result.summary(),
        "gx_json": str(json_path),
        "gx_html": str(html_path),
        "failed_expectations": len(result.failures),
    }


def clean(ingested: Mapping[str, Any], config: CustomerPipelineConfig) -> dict[str, Any]:
    """Clean the backed-up original with the streaming engine into the work folder; return output paths and counts."""
    from pipekit.io.engine import clean_file

    now = config.now or datetime.now(UTC)
    source = _input_link(ingested)
    try:
        report = clean_file(
            source, ingested["work_dir"], now=now, encoding=config.encoding, bad_rows=config.bad_rows,  # type: ignore[arg-type]  # resolve() admits only error|quarantine
            policy=config.policy_file,
        )
    except (InputError, ValidationError) as exc:
        raise _reject(ingested, config, stage="clean", error=exc) from exc
    finally:
        # The link only gives the outputs the delivery's name; the backup itself stays.
        source.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            source.parent.rmdir()
    counts = {
        "rows_read": report.rows_read, "rows_written": report.rows_written, "quarantined": report.quarantined,
        **{k: int(v) for k, v in report.counts.items()},
    }
    log.info("clean %s:\n%s", _entry(ingested)["file_name"], report.summary())
    work, stem = Path(ingested["work_dir"]), source.stem
    return {
        "now": now.isoformat(),
        "cleaned_csv": str(work / f"{stem}_cleaned.csv"),
        "cleaned_parquet": str(work / f"{stem}_cleaned.parquet"),
        "report": str(work / f"{stem}_report.json"),
        "future_ids": str(work / f"{stem}_future_ids.csv"),
        "counts": counts,
    }


def default_script() -> Path:
    """The shell script: ``$PIPEKIT_FLAG_SCRIPT`` or ``adapters/airflow/scripts/`` of this source checkout."""
    if os.environ.get(SCRIPT_ENV):
        return Path(os.environ[SCRIPT_ENV])
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "adapters" / "airflow" / "scripts" / _SCRIPT_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"cannot find {_SCRIPT_NAME}", hint=f"set {SCRIPT_ENV} to its path (it ships in adapters/airflow/scripts/)"
    )


def flag_future(cleaned: Mapping[str, Any], *, script: str | os.PathLike[str] | None = None) -> int:
    """Run the shell script on the cleaned CSV (as the DAG's BashOperator does); return its count."""
    script = Path(script or default_script())
    env = {**os.environ, "PIPEKIT_NOW": cleaned["now"]}
    done = subprocess.run(
        ["bash", str(script), cleaned["cleaned_csv"], cleaned["future_ids"]],
        env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise InputError(f"{script.name} failed (exit {done.returncode}): {done.stderr.strip()}")
    log.info(done.stderr.strip())
    return int(done.stdout.strip().splitlines()[-1])


def publish(
    ingested: Mapping[str, Any],
    validated: Mapping[str, Any],
    cleaned: Mapping[str, Any],
    future_count: int | str,
    config: CustomerPipelineConfig,
) -> dict[str, Any]:
    """Write ``<stem>_run.json``, mark the delivery completed in the manifest, remove the landing file (backup verified)."""
    from pipekit.io.ingest import complete_ingest

    entry = _entry(ingested)
    stem = Path(entry["file_name"]).stem
    shell_future = int(str(future_count).strip())
    core_future = cleaned["counts"].get("future")
    run = {
        "file": entry["file_name"],
        "sha256": entry["sha256"],
        "run_id": entry["run_id"],
        "backup": entry["backup_path"],
        "manifest": str(config.manifest_path),
        "quality": {k: validated.get(k) for k in ("gate", "success", "gx_json", "gx_html", "failed_expectations")},
        "outputs": {k: cleaned[k] for k in ("cleaned_csv", "cleaned_parquet", "report", "future_ids")},
        "counts": cleaned["counts"],
        "future_rows": {"shell_script": shell_future, "core": core_future,
                        "agree": core_future is None or core_future == shell_future},
        "now": cleaned["now"],
    }
    if not run["future_rows"]["agree"]:
        log.warning("future rows: shell script found %s, core flagged %s", shell_future, core_future)
    run_path = Path(ingested["work_dir"]) / f"{stem}_run.json"
    run["run_report"] = str(run_path)
    atomic_write_text(run_path, json.dumps(run, indent=2, default=str) + "\n")
    complete_ingest(
        entry, manifest_path=config.manifest_path, remove_source=config.remove_source,
        outputs={**run["outputs"], "run_report": str(run_path), "gx_html": validated["gx_html"]},
    )
    log.info("published %s -> %s (backup %s)", entry["file_name"], ingested["work_dir"], entry["backup_path"])
    return run


def run_once(config: CustomerPipelineConfig, *, run_id: str | None = None, path: str | None = None) -> dict[str, Any]:
    """The whole job once, in-process (no Airflow): returns the run report, or ``{"status": ...}`` when nothing ran."""
    run_id = run_id or f"cli__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    path = path or find_file(config)
    if path is None:
        return {"status": "no_file", "landing_dir": str(config.landing_dir), "pattern": config.pattern}
    ingested = ingest(path, config, run_id=run_id)
    if ingested["status"] == "duplicate":
        return {"status": "duplicate", **ingested}
    validated = validate(ingested, config)
    cleaned = clean(ingested, config)
    count = flag_future(cleaned)
    return {"status": "completed", **publish(ingested, validated, cleaned, count, config)}
