"""Streaming CSV cleaner: Arrow record batches through the core kernels, in bounded memory.

``clean_file`` reads the CSV in batches (every column as a string), and per batch runs the core's
``validate`` -> ``normalize_batch`` -> cross-file duplicate filter -> ``finalize_batch``, writing the
cleaned rows to CSV and Parquet as it goes. Three threads overlap the work: one reads and parses
(and hashes the input bytes for the report), one cleans, one writes. Outputs are written to temp
files in a per-run staging folder inside the output folder and renamed only when everything
succeeded; a run first removes the staging folders of runs that were killed. The input is opened
read-only.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pipekit.core import CleaningConfig, MaskingPolicy, resolve_key, utc_now, validate
from pipekit.errors import ConfigError, StorageError, ValidationError
from pipekit.io._dedup import import_polars_in_background
from pipekit.io._read import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_MAX_ROW_BYTES,
    Progress,
    batch_bytes_for,
    check_input,
    iter_batches,
    read_header,
)
from pipekit.io._report import CleanFileReport
from pipekit.io._run import BadRows, Run, empty_table, prefers_polars, quarantine_path, validate_kwargs
from pipekit.io._staging import Staging, remove_stale
from pipekit.io.atomic import storage_error


def output_paths(input_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Where ``clean_file`` publishes for this input: csv, parquet and report paths."""
    stem, out = Path(input_path).stem, Path(out_dir)
    return {
        "csv": out / f"{stem}_cleaned.csv",
        "parquet": out / f"{stem}_cleaned.parquet",
        "report": out / f"{stem}_report.json",
    }


def default_quarantine_dir() -> Path:
    """The private folder for raw malformed rows: ``$XDG_STATE_HOME/pipekit/quarantine`` (~/.local/state)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "pipekit" / "quarantine"


def clean_file(
    input_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    config: CleaningConfig | None = None,
    policy: MaskingPolicy | str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    encoding: str = "utf-8",
    bad_rows: BadRows = "error",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    key: bytes | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    quarantine_dir: str | os.PathLike[str] | None = None,
    batch_bytes: int | None = None,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
) -> CleanFileReport:
    """Clean one CSV file into ``DIR/<stem>_cleaned.csv``, ``.parquet`` and ``_report.json``.

    ``policy`` (a MaskingPolicy or a YAML/JSON policy file) overrides ``config.policy``; ``key`` is the
    HMAC key for ``hash`` rules (else the policy's env var); ``progress(bytes_read, total)`` is called
    as the input is read; ``workers`` threads clean batches (default: CPU count, at most 4).
    The CSV output guards formula-like text unless ``config.formula_guard`` is False (see
    ``pipekit.core.formulas``). With ``bad_rows="quarantine"``, malformed rows go, raw, to a private
    file (mode 0600) in ``quarantine_dir`` (default ``default_quarantine_dir()``), never to ``out_dir``.
    Missing required columns raise ValidationError before anything is written; unreadable input raises
    InputError naming the line. Batches hold at most ``batch_rows`` rows and about ``batch_bytes`` bytes
    of Arrow data (default: 32 MiB, 8 MiB past 256 columns), so memory stays bounded however wide the
    file is; a row longer than ``max_row_bytes`` raw bytes is an InputError naming its line.
    """
    started = time.perf_counter()
    config = resolve_config(config, policy)
    if bad_rows not in ("error", "quarantine"):
        raise ConfigError(f"bad_rows must be 'error' or 'quarantine', got {bad_rows!r}")
    if batch_rows < 1:
        raise ConfigError(f"batch_rows must be >= 1, got {batch_rows}")
    if (batch_bytes is not None and batch_bytes < 1) or max_row_bytes < 1:
        raise ConfigError(f"batch_bytes and max_row_bytes must be >= 1, got {batch_bytes}, {max_row_bytes}")
    now = utc_now(now)
    workers = workers or min(4, os.cpu_count() or 1)
    src = Path(input_path)
    identity = check_input(src)
    total = identity.st_size
    if prefers_polars(total):
        import_polars_in_background()  # overlaps the header read, staging and the first batches
    columns = read_header(src, encoding, max_row_bytes=max_row_bytes)
    batch_bytes = batch_bytes or batch_bytes_for(len(columns))
    check_columns(src, columns, config)
    if config.policy.needs_key:
        # Fail before any work when a keyed hash has no key (names the env var to set).
        key = resolve_key(key, config.policy.key_env)
    paths = output_paths(src, out_dir)
    if src.resolve() in {p.resolve() for p in paths.values() if p.exists()}:
        raise ConfigError(
            f"{src}: the output would overwrite the input", hint="choose another --out directory"
        )
    private = _private_dir(out_dir, quarantine_dir) if bad_rows == "quarantine" else None
    # Temp files of runs that were killed (SIGKILL, power loss) stay in their staging folders: clear them.
    stale = sum(remove_stale(folder) for folder in {Path(out_dir), *([private] if private else [])})

    run = Run(
        src,
        columns,
        config,
        now,
        encoding,
        bad_rows,
        batch_rows,
        key,
        progress,
        total,
        paths,
        workers,
        private,
        identity,
        batch_bytes,
        max_row_bytes,
    )
    try:
        return _run_and_publish(run, config, now, bad_rows, batch_rows, started, stale)
    except OSError as exc:
        # Anything the OS refused on the way (read-only folder, disk full, quota, a file where a folder
        # should be) is the user's to fix: name the path, say what to do. Staging has removed its temps.
        raise storage_error(exc, Path(out_dir)) from exc
    except StorageError as exc:
        # Staging's own "cannot create output directory": the same one line, with what to do.
        if exc.hint is None and isinstance(exc.__cause__, OSError):
            raise storage_error(exc.__cause__, Path(out_dir)) from exc.__cause__
        raise


def _run_and_publish(
    run: Run,
    config: CleaningConfig,
    now: datetime,
    bad_rows: BadRows,
    batch_rows: int,
    started: float,
    stale_staging_removed: int,
) -> CleanFileReport:
    """Run the pipeline into staged temp files, write the report, and rename everything into place."""
    src, encoding, paths, out_dir = run.src, run.encoding, run.paths, run.paths["report"].parent
    with Staging() as staging:
        run.execute(staging)
        timings = dict(run.timings)
        report = CleanFileReport(
            input={"path": str(src), "bytes": run.bytes_read, "sha256": run.sha256, "encoding": encoding},
            outputs={k: str(p) for k, p in paths.items()},
            rows_read=run.rows_read,
            rows_written=run.rows_written,
            counts=run.counts,
            validation=run.validation,
            quarantined=run.quarantined,
            quarantine=run.quarantine_summary(),
            formula_guard=run.formula_guard_summary(),
            timings=timings,
            settings=_settings(config, now, bad_rows, batch_rows, run.hasher.engine)
            | {"batch_bytes": run.batch_bytes, "max_row_bytes": run.max_row_bytes},
            pipekit_version=_version(),
            stale_staging_removed=stale_staging_removed,
        )
        report.timings["total_s"] = time.perf_counter() - started
        report_tmp = staging.new(paths["report"])
        report_tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        # Earlier pipekit versions wrote malformed rows, raw, beside the outputs: never leave one there.
        staging.remove_on_commit(Path(out_dir) / f"{src.stem}_quarantine.csv")
        staging.commit()
    return report


def _private_dir(out_dir: str | os.PathLike[str], quarantine_dir: str | os.PathLike[str] | None) -> Path:
    """The quarantine folder, refused when it is (inside) the published output folder."""
    private = Path(quarantine_dir) if quarantine_dir is not None else default_quarantine_dir()
    out, inside = Path(out_dir).resolve(), private.resolve()
    if inside == out or out in inside.parents:
        raise ConfigError(
            f"the quarantine folder {private} is inside the output folder {out_dir}: "
            "raw malformed rows would be published with the cleaned data",
            hint="choose a --quarantine-dir outside --out",
        )
    return private


def check_columns(src: Path, columns: list[str], config: CleaningConfig) -> None:
    """Missing required columns -> ValidationError (with the report); unknown dedup keys -> ConfigError."""
    missing = [c for c in config.required if c not in columns]
    if missing:
        report = validate(empty_table(columns), config.required, **validate_kwargs(config))
        raise ValidationError(
            f"{src}: missing required column(s): {', '.join(missing)}",
            report=report,
            hint=f"columns present: {', '.join(columns)}",
        )
    keys = config.dedup_keys or ()
    unknown = [k for k in keys if k not in columns]
    if unknown:
        raise ConfigError(
            f"{src}: duplicate key column(s) not in the file: {', '.join(unknown)}",
            hint=f"choose among: {', '.join(columns)}",
        )


def resolve_config(
    config: CleaningConfig | None, policy: MaskingPolicy | str | os.PathLike[str] | None
) -> CleaningConfig:
    """``config`` (default CleaningConfig()) with its policy replaced by ``policy`` (a policy or its file)."""
    config = config or CleaningConfig()
    if policy is None:
        return config
    if not isinstance(policy, MaskingPolicy):
        policy = MaskingPolicy.from_file(policy)
    return replace(config, policy=policy)


def _settings(
    config: CleaningConfig, now: datetime, bad_rows: str, batch_rows: int, hasher: str
) -> dict[str, Any]:
    return {
        "now": now.isoformat(),
        "required": list(config.required),
        "dedup_keys": list(config.dedup_keys) if config.dedup_keys else None,
        "policy": config.policy.to_dict(),
        "bad_rows": bad_rows,
        "formula_guard": config.formula_guard,
        "control_chars": config.control_chars,
        "batch_rows": batch_rows,
        "row_hash": hasher,
    }


def _version() -> str:
    from pipekit import __version__

    return __version__


__all__ = [
    "DEFAULT_BATCH_ROWS",
    "BadRows",
    "CleanFileReport",
    "check_columns",
    "clean_file",
    "default_quarantine_dir",
    "iter_batches",
    "output_paths",
    "quarantine_path",
    "read_header",
    "resolve_config",
]
