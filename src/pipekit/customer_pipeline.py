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
    quarantine/customers_<sha12>_quarantine.csv   raw malformed rows (``bad_rows=quarantine``), private

The base directory may also be ``s3://bucket/prefix`` (workers on other machines: Celery, Kubernetes).
The layout is the same, except that the manifest is ``manifest/<seq>.json``, one object per record
(see ``pipekit.io.ingest``). Each step then works on a private scratch copy on its worker: it downloads
the backup (checked against its sha256), runs there, and uploads its outputs one whole object each, data
first and ``customers_run.json`` last.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipekit.errors import ConfigError, InputError, PipekitError, StorageError, ValidationError
from pipekit.io import storage
from pipekit.io.atomic import storage_error
from pipekit.io.storage import Location, S3Location

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

    landing_dir: Location
    output_dir: Location
    backup_dir: Location
    manifest_path: Location
    rejected_dir: Location
    quarantine_dir: Location
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

        Names: base_dir, landing_dir, output_dir, backup_dir, manifest, rejected_dir, quarantine_dir, pattern,
        settle_seconds, now, policy_file, encoding, bad_rows, fail_on_data_problems, remove_source.
        Every folder may be a local path or ``s3://bucket/prefix``.
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
        base = storage.location(pick("base_dir") or Path(home) / "pipekit" / "customers")

        def where(name: str, default: Location) -> Location:
            return storage.location(pick(name) or default)

        bad_rows = pick("bad_rows") or "error"
        if bad_rows not in ("error", "quarantine"):
            raise ConfigError(f"bad_rows={bad_rows!r}", hint="use error or quarantine")
        try:
            settle = float(pick("settle_seconds") or 0)
        except ValueError as exc:
            raise ConfigError(f"settle_seconds={pick('settle_seconds')!r} is not a number") from exc
        return cls(
            landing_dir=where("landing_dir", base / "landing"),
            output_dir=where("output_dir", base / "output"),
            backup_dir=where("backup_dir", base / "backups"),
            # S3 has no append: there the manifest is a prefix of one object per record.
            manifest_path=where("manifest", base / ("manifest" if isinstance(base, S3Location) else "manifest.jsonl")),
            rejected_dir=where("rejected_dir", base / "rejected"),
            # Raw malformed rows stay with the job's own state (beside its backups), never in output/.
            quarantine_dir=where("quarantine_dir", base / "quarantine"),
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
        return {f.name: (str(v) if isinstance(v, Path | S3Location | datetime) else v)
                for f in fields(self) for v in [getattr(self, f.name)]}


def work_dir_for(config: CustomerPipelineConfig, file_name: str, sha256: str) -> Location:
    """Output folder of one delivery: ``<output>/<stem>_<sha256[:12]>`` (same content -> same folder)."""
    return config.output_dir / f"{Path(file_name).stem}_{sha256[:12]}"


def _os_errors(step: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an OS error inside ``step`` (disk full or quota on the backup, manifest, output or rejected
    folder, permission denied, a file where a folder should be) into one StorageError line naming the path
    and what to do, never a traceback. Every step writes atomically and backs up before it deletes, so
    nothing half-written is left and the landing file is still there."""

    @functools.wraps(step)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return step(*args, **kwargs)
        except OSError as exc:
            raise storage_error(exc, exc.filename or "the job's folders",
                                option="--base-dir (or the folder's own setting)") from exc

    return run


@_os_errors
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


@_os_errors
def ingest(path: str, config: CustomerPipelineConfig, *, run_id: str) -> dict[str, Any]:
    """Manifest + verified backup of ``path``; ``status`` is ``duplicate`` when that content was already processed."""
    from pipekit.io.ingest import describe_file, ingest_file

    try:
        result = ingest_file(
            path, manifest_path=config.manifest_path, backup_dir=config.backup_dir, run_id=run_id,
            encoding=config.encoding, remove_duplicates=config.remove_source,
        )
    except InputError as exc:
        if not storage.is_file(storage.location(path)):
            raise
        # Not even countable as CSV (e.g. a field over the csv module's limit): rejected as it is, no backup.
        facts = describe_file(path, run_id=run_id, count_rows=False)
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


@contextlib.contextmanager
def _input_file(ingested: Mapping[str, Any]) -> Iterator[Path]:
    """The verified backup as a local file under the delivery's own name (outputs are named after it).

    Local: a symlink in ``<work>/_input/`` to the backup. S3: a download into a private scratch folder on
    this worker, checked against the sha256 (so the step runs on any worker, not only the one that ingested).
    """
    entry = _entry(ingested)
    backup = storage.location(entry["backup_path"])
    if isinstance(backup, S3Location):
        with storage.local_copy(backup, expected_sha256=entry["sha256"], name=entry["file_name"]) as local:
            yield local
        return
    if not backup.is_file():
        raise StorageError(f"backup {backup} of {entry['file_name']} is gone", hint="re-run the ingest task")
    link = Path(ingested["work_dir"]) / "_input" / entry["file_name"]
    link.parent.mkdir(parents=True, exist_ok=True)
    if (link.is_symlink() or link.exists()) and link.resolve() != backup.resolve():
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(backup.resolve())
    try:
        yield link
    finally:
        # The link only gives the outputs the delivery's name; the backup itself stays.
        link.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            link.parent.rmdir()


@contextlib.contextmanager
def _out_dir(work: Location) -> Iterator[Path]:
    """Where a step writes: the work folder itself (local), or a private scratch folder published afterwards (S3)."""
    if isinstance(work, Path):
        yield work
        return
    with storage.scratch_dir("out") as tmp:
        yield tmp


def _publish(out: Path, work: Location, names: list[str]) -> None:
    """Upload the files ``names`` that the step wrote in ``out`` to ``work``, in order (a no-op locally)."""
    storage.publish_folder(out, work, [n for n in names if (out / n).is_file()])


@_os_errors
def validate(ingested: Mapping[str, Any], config: CustomerPipelineConfig) -> dict[str, Any]:
    """Run the GX suite on the backed-up original; save ``<stem>_gx.json/.html``; raise ValidationError if it must."""
    from pipekit.io.ingest import verify_backup
    from pipekit.quality import check_csv

    entry = _entry(ingested)
    stem = Path(entry["file_name"]).stem
    work = storage.location(ingested["work_dir"])
    backup = storage.location(entry["backup_path"])
    if isinstance(backup, Path) and not verify_backup(backup, entry["sha256"]):
        raise StorageError(f"backup {entry['backup_path']} of {entry['file_name']} is missing or does not match "
                           f"sha256 {entry['sha256']}", hint="re-run the ingest task to take a fresh backup")
    reports = [f"{stem}_gx.json", f"{stem}_gx.html"]
    # An S3 backup is downloaded and checked against its sha256 by local_copy.
    with storage.local_copy(backup, expected_sha256=entry["sha256"]) as checked, _out_dir(work) as out:
        try:
            result, json_path, html_path = check_csv(
                checked, out, stem=stem, encoding=config.encoding,
                fail_on_data_problems=config.fail_on_data_problems,
                label=f"{entry['file_name']} (delivered as {entry['source_path']}, backup {entry['backup_path']})",
                # The report is about the bytes checked, which outlive the landing file: the verified backup.
                source_name=entry["backup_path"],
            )
        except ValidationError as exc:
            _publish(out, work, reports)  # the failed report is kept, as it is locally
            raise _reject(ingested, config, stage="validate", error=exc, quality=exc.report) from exc
        except InputError as exc:
            raise _reject(ingested, config, stage="validate", error=exc) from exc
        _publish(out, work, [json_path.name, html_path.name])
    log.info("quality check:\n%s", result.summary())
    return {
        "gate": "PASS" if result.ok else "FAIL",
        "success": result.success,
        "summary": result.summary(),
        "gx_json": str(work / json_path.name),
        "gx_html": str(work / html_path.name),
        "failed_expectations": len(result.failures),
    }


@contextlib.contextmanager
def _quarantine(config: CustomerPipelineConfig) -> Iterator[Path]:
    """The private folder for raw malformed rows: the job's own (local), or scratch uploaded to it afterwards (S3)."""
    target = config.quarantine_dir
    if isinstance(target, Path):
        yield target
        return
    with storage.scratch_dir("quarantine") as tmp:
        yield tmp
        for path in sorted(tmp.iterdir()):
            storage.upload(path, target / path.name)


@_os_errors
def clean(ingested: Mapping[str, Any], config: CustomerPipelineConfig) -> dict[str, Any]:
    """Clean the backed-up original with the streaming engine into the work folder; return output paths and counts."""
    from pipekit.io.engine import clean_file

    now = config.now or datetime.now(UTC)
    work = storage.location(ingested["work_dir"])
    stem = Path(_entry(ingested)["file_name"]).stem
    with _input_file(ingested) as source, _out_dir(work) as out, _quarantine(config) as private:
        try:
            report = clean_file(
                source, out, now=now, encoding=config.encoding, bad_rows=config.bad_rows,  # type: ignore[arg-type]  # resolve() admits only error|quarantine
                policy=config.policy_file, quarantine_dir=private,
            )
        except (InputError, ValidationError) as exc:
            raise _reject(ingested, config, stage="clean", error=exc) from exc
        # Data first, its report last: a reader that sees the report finds the data whole.
        _publish(out, work, [f"{stem}_cleaned.parquet", f"{stem}_cleaned.csv", f"{stem}_report.json"])
    counts = {
        "rows_read": report.rows_read, "rows_written": report.rows_written, "quarantined": report.quarantined,
        **{k: int(v) for k, v in report.counts.items()},
    }
    log.info("clean %s:\n%s", _entry(ingested)["file_name"], report.summary())
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


@_os_errors
def flag_future(cleaned: Mapping[str, Any], *, script: str | os.PathLike[str] | None = None) -> int:
    """Run the shell script on the cleaned CSV (the DAG's ``flag_future_timestamps`` task); return its count.

    With S3 outputs the script runs on a scratch copy of the cleaned CSV and its result is uploaded.
    """
    script = Path(script or default_script())
    source, target = storage.location(cleaned["cleaned_csv"]), storage.location(cleaned["future_ids"])
    with contextlib.ExitStack() as stack:
        if isinstance(source, Path) and isinstance(target, Path):
            local_in, local_out = source, target
        else:
            tmp = stack.enter_context(storage.scratch_dir("flag"))
            local_in, local_out = storage.download(source, tmp / "in" / source.name), tmp / "out" / target.name
            local_out.parent.mkdir()
        env = {**os.environ, "PIPEKIT_NOW": cleaned["now"]}
        done = subprocess.run(
            ["bash", str(script), str(local_in), str(local_out)],
            env=env, capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise InputError(f"{script.name} failed (exit {done.returncode}): {done.stderr.strip()}")
        if local_out != target:
            storage.upload(local_out, target)
    log.info(done.stderr.strip())
    return int(done.stdout.strip().splitlines()[-1])


@_os_errors
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
    # The run report is written last, whole (rename locally, one PutObject on S3): it announces the outputs.
    run_path = storage.location(ingested["work_dir"]) / f"{stem}_run.json"
    run["run_report"] = str(run_path)
    storage.write_text(run_path, json.dumps(run, indent=2, default=str) + "\n")
    complete_ingest(
        entry, manifest_path=config.manifest_path, remove_source=config.remove_source,
        outputs={**run["outputs"], "run_report": str(run_path), "gx_html": validated["gx_html"]},
    )
    log.info("published %s -> %s (backup %s)", entry["file_name"], ingested["work_dir"], entry["backup_path"])
    return run


@_os_errors
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
