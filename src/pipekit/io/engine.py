"""Streaming CSV cleaner: Arrow record batches through the core kernels, in bounded memory.

``clean_file`` reads the CSV in batches (every column as a string), and per batch runs the core's
``validate`` -> ``normalize_batch`` -> cross-file duplicate filter -> ``finalize_batch``, writing the
cleaned rows to CSV and Parquet as it goes. Three threads overlap the work: one reads and parses
(and hashes the input bytes for the report), one cleans, one writes. Outputs are written to temp
names and renamed only when everything succeeded; the input is opened read-only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipekit.core import (
    CleaningConfig,
    MaskingPolicy,
    ValidationReport,
    finalize_batch,
    normalize_batch,
    resolve_key,
    utc_now,
    validate,
)
from pipekit.errors import ConfigError, InputError, PipekitError, StorageError, ValidationError
from pipekit.io._dedup import RowHasher, SeenRows
from pipekit.io.csvfmt import header_line

BadRows = Literal["error", "quarantine"]
Progress = Callable[[int, int], None]

#: Default rows per batch (the reader's blocks are cut to at most this many rows).
DEFAULT_BATCH_ROWS = 1 << 17
# Arrow reads 4 MiB blocks: with blocks of 8 MiB and more, peak RSS grew with the file size (allocator
# caching of large buffers, measured with mimalloc and jemalloc); 4 MiB keeps it flat.
_BLOCK_BYTES = 4 << 20
_PROBE_BYTES = 1 << 20
_QUEUE_DEPTH = 2
_POLARS_MIN_BYTES = 32 << 20
# Finding the physical line of a bad record re-reads the file with Python's csv module: cap the cost.
_LINE_SCAN_LIMIT = 5_000_000


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
    timings: dict[str, float] = field(default_factory=dict)
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
            "counts": dict(self.counts),
            "validation": self.validation.to_dict(),
            "settings": dict(self.settings),
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
        lines += [f"{name}: {path}" for name, path in self.outputs.items()]
        return "\n".join(lines)


def output_paths(input_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Where ``clean_file`` writes for this input: csv, parquet, report and quarantine paths."""
    stem, out = Path(input_path).stem, Path(out_dir)
    return {
        "csv": out / f"{stem}_cleaned.csv",
        "parquet": out / f"{stem}_cleaned.parquet",
        "report": out / f"{stem}_report.json",
        "quarantine": out / f"{stem}_quarantine.csv",
    }


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
) -> CleanFileReport:
    """Clean one CSV file into ``DIR/<stem>_cleaned.csv``, ``.parquet`` and ``_report.json``.

    ``policy`` (a MaskingPolicy or a YAML/JSON policy file) overrides ``config.policy``; ``key`` is the
    HMAC key for ``hash`` rules (else the policy's env var); ``progress(bytes_read, total)`` is called
    as the input is read; ``workers`` threads clean batches (default: CPU count, at most 4). Missing required columns raise ValidationError before anything is written;
    unreadable input raises InputError naming the line.
    """
    started = time.perf_counter()
    config = _resolve_config(config, policy)
    if bad_rows not in ("error", "quarantine"):
        raise ConfigError(f"bad_rows must be 'error' or 'quarantine', got {bad_rows!r}")
    if batch_rows < 1:
        raise ConfigError(f"batch_rows must be >= 1, got {batch_rows}")
    now = utc_now(now)
    workers = workers or min(4, os.cpu_count() or 1)
    src = Path(input_path)
    _check_input(src)
    total = src.stat().st_size
    columns = read_header(src, encoding)
    _check_columns(src, columns, config)
    if config.policy.needs_key:
        # Fail before any work when a keyed hash has no key (names the env var to set).
        key = resolve_key(key, config.policy.key_env)
    paths = output_paths(src, out_dir)
    if src.resolve() in {p.resolve() for p in paths.values() if p.exists()}:
        raise ConfigError(
            f"{src}: the output would overwrite the input", hint="choose another --out directory"
        )

    run = _Run(
        src, columns, config, now, encoding, bad_rows, batch_rows, key, progress, total, paths, workers
    )
    with _Staging() as staging:
        run.execute(staging)
        timings = dict(run.timings)
        report = CleanFileReport(
            input={"path": str(src), "bytes": total, "sha256": run.sha256, "encoding": encoding},
            outputs={k: str(p) for k, p in paths.items() if k != "quarantine" or run.quarantined},
            rows_read=run.rows_read,
            rows_written=run.rows_written,
            counts=run.counts,
            validation=run.validation,
            quarantined=run.quarantined,
            timings=timings,
            settings=_settings(config, now, bad_rows, batch_rows, run.hasher.engine),
            pipekit_version=_version(),
        )
        report.timings["total_s"] = time.perf_counter() - started
        report_tmp = staging.new(paths["report"])
        report_tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        if not run.quarantined:
            staging.remove_on_commit(paths["quarantine"])  # a stale side file from an earlier run
        staging.commit()
    return report


# --- the run ---------------------------------------------------------------------------------------


_DONE = object()


class _Run:
    """One execution of the pipeline: reader thread -> cleaning (this thread) -> writer thread."""

    def __init__(
        self,
        src: Path,
        columns: list[str],
        config: CleaningConfig,
        now: datetime,
        encoding: str,
        bad_rows: BadRows,
        batch_rows: int,
        key: bytes | None,
        progress: Progress | None,
        total: int,
        paths: dict[str, Path],
        workers: int,
    ) -> None:
        self.src, self.columns, self.config, self.now = src, columns, config, now
        self.encoding, self.bad_rows, self.batch_rows, self.key = encoding, bad_rows, batch_rows, key
        self.progress, self.total, self.paths = progress, total, paths
        # polars' row hash is much faster but costs ~0.5 s to import: worth it only on larger files.
        self.hasher = RowHasher(use_polars=None if total > _POLARS_MIN_BYTES else False)
        self.seen = SeenRows()
        self.rows_read = self.rows_written = self.quarantined = 0
        self.counts: dict[str, int] = {"dropped_null": 0, "dropped_duplicate": 0}
        self.validation = validate(_empty_table(columns), config.required, **_validate_kwargs(config))
        self.timings: dict[str, float] = {
            "validate_s": 0.0,
            "normalize_s": 0.0,
            "dedup_s": 0.0,
            "finalize_s": 0.0,
        }
        self.sha256 = ""
        self._bad_row: Any = None
        self._quarantine_fh: io.BufferedWriter | None = None
        self._stop = threading.Event()
        self._final_counts: dict[str, int] = {}
        self.workers = workers

    # The reader: parse CSV blocks into record batches (GIL released inside Arrow).
    def _reader(self, out: queue.Queue[Any]) -> None:
        try:
            with open(self.src, "rb") as raw:
                hashing = _HashingReader(raw, self.progress, self.total)
                reader = pacsv.open_csv(
                    hashing,
                    read_options=pacsv.ReadOptions(
                        use_threads=False, block_size=_block_bytes(self.batch_rows), encoding=self.encoding
                    ),
                    parse_options=pacsv.ParseOptions(
                        newlines_in_values=True, invalid_row_handler=self._on_bad_row
                    ),
                    convert_options=pacsv.ConvertOptions(
                        column_types={c: pa.string() for c in self.columns},
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
                for table in _rebatch(reader, self.batch_rows):
                    if self._stop.is_set():
                        return
                    _put(out, table, self._stop)
                hashing.drain()
                self.sha256 = hashing.hexdigest()
            _put(out, _DONE, self._stop)
        except BaseException as exc:  # handed to the cleaning thread, which raises it
            _put(out, exc, self._stop)

    def _on_bad_row(self, row: Any) -> str:
        """pyarrow's callback for a row with the wrong number of fields."""
        if self.bad_rows == "error":
            self._bad_row = row
            return "error"
        if self._quarantine_fh is None:
            self._quarantine_fh = open(self._quarantine_tmp, "wb")  # noqa: SIM115 - closed in execute()
            self._quarantine_fh.write(header_line(self.columns))
        text = row.text if row.text.endswith(("\n", "\r")) else row.text + "\n"
        self._quarantine_fh.write(text.encode("utf-8"))
        self.quarantined += 1
        return "skip"

    # The writer: CSV and Parquet, batch by batch, to temp files.
    def _writer(
        self, inbox: queue.Queue[Any], csv_path: Path, parquet_path: Path, errors: list[BaseException]
    ) -> None:
        csv: pacsv.CSVWriter | None = None
        parquet: pq.ParquetWriter | None = None
        written = 0
        try:
            while True:
                item = inbox.get()
                if item is _DONE:
                    break
                item, counts, finalize_s = item.result()
                for name, n in counts.items():
                    self._final_counts[name] = self._final_counts.get(name, 0) + int(n)
                self.rows_written += item.num_rows
                self.timings["finalize_s"] = self.timings.get("finalize_s", 0.0) + finalize_s
                t0 = time.perf_counter()
                if csv is None:
                    # Arrow's writer quotes every string (5x faster than quoting only where needed).
                    csv = pacsv.CSVWriter(str(csv_path), item.schema)
                    parquet = pq.ParquetWriter(str(parquet_path), item.schema, compression="snappy")
                csv.write_table(item)
                assert parquet is not None
                parquet.write_table(item)
                written += 1
                if written % 8 == 0:
                    # Hand freed Arrow memory back to the OS now and then, so RSS tracks live data.
                    pa.default_memory_pool().release_unused()
                self.timings["write_s"] = self.timings.get("write_s", 0.0) + time.perf_counter() - t0
        except BaseException as exc:
            errors.append(exc)
            self._stop.set()
            _drain(inbox)
        finally:
            for writer in (csv, parquet):
                if writer is not None:
                    writer.close()

    def execute(self, staging: _Staging) -> None:
        """Run the stages; raise the first error any of them hit.

        Batches are validated, normalised and row-hashed on a small thread pool (Arrow kernels and the
        polars hash release the GIL), then the duplicate filter runs in file order on this thread, then
        masking/flagging runs on the pool again and the writer thread writes results in order.
        """
        csv_tmp = staging.new(self.paths["csv"])
        parquet_tmp = staging.new(self.paths["parquet"])
        self._quarantine_tmp = staging.new(self.paths["quarantine"])
        batches: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_DEPTH)
        cleaned: queue.Queue[Any] = queue.Queue(maxsize=self.workers)
        writer_errors: list[BaseException] = []
        reader = threading.Thread(target=self._reader, args=(batches,), name="pipekit-read", daemon=True)
        writer = threading.Thread(
            target=self._writer,
            args=(cleaned, csv_tmp, parquet_tmp, writer_errors),
            name="pipekit-write",
            daemon=True,
        )
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="pipekit-clean")
        pending: deque[
            Future[tuple[pa.Table, ValidationReport, dict[str, int], np.ndarray, dict[str, float]]]
        ]
        pending = deque()
        reader.start()
        writer.start()
        seen_any = False
        try:
            while True:
                item = batches.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise self._translate(item) from item
                if writer_errors:
                    break
                table = item
                pending.append(pool.submit(self._prepare, table, self.rows_read))
                self.rows_read += table.num_rows
                seen_any = True
                while len(pending) > self.workers:
                    self._dedup_and_finalize(pending.popleft().result(), pool, cleaned)
            while pending and not writer_errors:
                self._dedup_and_finalize(pending.popleft().result(), pool, cleaned)
            if not seen_any:
                # Header-only (or everything quarantined): still write a valid, empty CSV and Parquet.
                _put(cleaned, pool.submit(self._finalize_job, _empty_table(self.columns)), self._stop)
            _put(cleaned, _DONE, self._stop)
        except BaseException:
            self._stop.set()
            raise
        finally:
            if self._stop.is_set():
                # Unblock every thread: the reader stops at its next batch, the writer at _DONE.
                _drain(batches)
                _drain(cleaned)
                cleaned.put(_DONE)
            writer.join()
            pool.shutdown(wait=True, cancel_futures=True)
            reader.join(timeout=5)
            if self._quarantine_fh is not None:
                self._quarantine_fh.close()
        if writer_errors:
            exc = writer_errors[0]
            if isinstance(exc, PipekitError):
                raise exc
            raise StorageError(
                f"writing the cleaned output to {self.paths['csv'].parent} failed: {exc}"
            ) from exc
        self._add(self._final_counts)
        if not self.quarantined:
            staging.discard(self._quarantine_tmp)
        self.timings["dedup_hashes_mib"] = round(self.seen.nbytes / 2**20, 2)

    def _prepare(
        self, table: pa.Table, row_offset: int
    ) -> tuple[pa.Table, ValidationReport, dict[str, int], np.ndarray, dict[str, float]]:
        """Pool job: validate, normalise and hash one batch (independent of every other batch)."""
        t0 = time.perf_counter()
        report = validate(table, self.config.required, row_offset=row_offset, **_validate_kwargs(self.config))
        t1 = time.perf_counter()
        table, counts = normalize_batch(table, self.config)
        t2 = time.perf_counter()
        hashes = self.hasher.hash_rows(table, self.config.dedup_keys)
        t3 = time.perf_counter()
        return (
            table,
            report,
            counts,
            hashes,
            {"validate_s": t1 - t0, "normalize_s": t2 - t1, "hash_s": t3 - t2},
        )

    def _dedup_and_finalize(
        self,
        prepared: tuple[pa.Table, ValidationReport, dict[str, int], np.ndarray, dict[str, float]],
        pool: ThreadPoolExecutor,
        cleaned: queue.Queue[Any],
    ) -> None:
        """In file order: merge the report, drop rows seen before, hand the rest to finalisation."""
        table, report, counts, hashes, timings = prepared
        t0 = time.perf_counter()
        self.validation = self.validation.merge(report)
        self._add(counts)
        keep = self.seen.first_new(hashes)
        dropped = table.num_rows - len(keep)
        if dropped:
            table = table.take(pa.array(keep, pa.int64()))
        self.counts["dropped_duplicate"] += dropped
        timings["dedup_s"] = time.perf_counter() - t0
        for name, dt in timings.items():
            self.timings[name] = self.timings.get(name, 0.0) + dt
        _put(cleaned, pool.submit(self._finalize_job, table), self._stop)

    def _finalize_job(self, table: pa.Table) -> tuple[pa.Table, dict[str, int], float]:
        """Pool job: mask per policy and flag future timestamps."""
        t0 = time.perf_counter()
        table, counts = finalize_batch(table, self.config, now=self.now, key=self.key)
        return table, counts, time.perf_counter() - t0

    def _add(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.counts[name] = self.counts.get(name, 0) + int(n)

    def _translate(self, exc: BaseException) -> BaseException:
        """Turn Arrow's parse/encoding errors into InputError naming the line."""
        if isinstance(exc, pa.ArrowInvalid | UnicodeDecodeError):
            return _read_error(self.src, self.encoding, exc, self._bad_row)
        if isinstance(exc, LookupError) and "encoding" in str(exc):
            return ConfigError(
                f"unknown encoding {self.encoding!r}", hint="use a Python codec name, e.g. latin-1"
            )
        return exc


# --- input checks ----------------------------------------------------------------------------------


def _check_input(src: Path) -> None:
    if not src.exists():
        raise InputError(f"{src}: no such file", hint="check the path")
    if not src.is_file():
        raise InputError(f"{src}: not a regular file", hint="pass a CSV file")
    if src.stat().st_size == 0:
        raise InputError(
            f"{src}: the file is empty (no header row)",
            hint="a valid input has at least a header line, e.g. id,name,email,timestamp",
        )


def read_header(src: Path, encoding: str) -> list[str]:
    """Column names from the first row (BOM stripped), read with Arrow so quoting rules match."""
    try:
        with open(src, "rb") as fh:
            reader = pacsv.open_csv(
                fh,
                read_options=pacsv.ReadOptions(use_threads=False, block_size=_PROBE_BYTES, encoding=encoding),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=lambda row: "skip"
                ),
            )
            names = list(reader.schema.names)
    except LookupError as exc:
        raise ConfigError(
            f"unknown encoding {encoding!r}", hint="use a Python codec name, e.g. latin-1"
        ) from exc
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        message = str(exc)
        if "Empty CSV file" in message:
            raise InputError(f"{src}: the file has no header row", hint="add a header line") from exc
        if "UTF8" in message or "UTF-8" in message or isinstance(exc, UnicodeDecodeError):
            raise _encoding_error(src, encoding) from exc
        raise InputError(f"{src}: cannot read the header: {message}", hint="check the file is a CSV") from exc
    if not any(n.strip() for n in names):
        raise InputError(f"{src}: the header row is blank", hint="the first line must name the columns")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            f"{src}: duplicate column name(s) in the header: {', '.join(dupes)}", hint="rename them"
        )
    return names


def _check_columns(src: Path, columns: list[str], config: CleaningConfig) -> None:
    missing = [c for c in config.required if c not in columns]
    if missing:
        report = validate(_empty_table(columns), config.required, **_validate_kwargs(config))
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


def _where(src: Path, encoding: str, record: int | None) -> str:
    """'line N' for Arrow's record number (header = 1), counting the line breaks inside quoted fields."""
    if record is None:
        return "a row"
    import csv

    try:
        with open(src, encoding=encoding, newline="", errors="replace") as fh:
            reader = csv.reader(fh)
            for _ in range(min(record - 1, _LINE_SCAN_LIMIT)):
                next(reader)
            if record - 1 <= _LINE_SCAN_LIMIT:
                return f"line {reader.line_num + 1}"
    except (StopIteration, csv.Error, OSError):
        pass
    return f"record {record} (header = 1)"


def _encoding_error(src: Path, encoding: str) -> InputError:
    """Name the first line whose bytes do not decode, and suggest --encoding."""
    line, detail = _first_undecodable_line(src, encoding)
    where = f"line {line}" if line else "somewhere"
    return InputError(
        f"{src}: {where} is not valid {encoding} ({detail})",
        hint="pass the file's real encoding, e.g. --encoding latin-1 (or cp1252), or re-save it as UTF-8",
    )


def _first_undecodable_line(src: Path, encoding: str) -> tuple[int | None, str]:
    """1-based physical line of the first byte that ``encoding`` cannot decode."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line = 1
    with open(src, "rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + chunk.count(b"\n", 0, exc.start), f"byte 0x{chunk[exc.start]:02x}"
            line += chunk.count(b"\n")
    return None, "undecodable bytes"


# --- helpers ---------------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """A read-only file wrapper that sha256-hashes and counts the bytes Arrow reads from it."""

    def __init__(self, raw: io.BufferedReader, progress: Progress | None, total: int) -> None:
        self._raw, self._progress, self._total = raw, progress, total
        self._sha = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self._sha.update(memoryview(buffer)[:n])
            self.bytes_read += n
            if self._progress is not None:
                self._progress(self.bytes_read, self._total)
        return n or 0

    def drain(self) -> None:
        """Hash whatever Arrow did not need to read (it may stop before EOF)."""
        while chunk := self._raw.read(1 << 20):
            self._sha.update(chunk)
            self.bytes_read += len(chunk)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class _Staging:
    """Temp files beside their targets, renamed into place together on commit, deleted otherwise."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._remove: list[Path] = []
        self._committed = False

    def __enter__(self) -> _Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            for tmp, _ in self._staged:
                tmp.unlink(missing_ok=True)

    def new(self, target: Path) -> Path:
        """A fresh temp path for ``target``."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create output directory {target.parent}: {exc}") from exc
        tmp = target.parent / f".{target.name}.{os.getpid()}.{threading.get_ident()}.{len(self._staged)}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.touch()
        self._staged.append((tmp, target))
        return tmp

    def discard(self, tmp: Path) -> None:
        """Forget (and delete) one staged file."""
        self._staged = [(t, d) for t, d in self._staged if t != tmp]
        tmp.unlink(missing_ok=True)

    def remove_on_commit(self, target: Path) -> None:
        """Delete ``target`` (if present) when committing."""
        self._remove.append(target)

    def commit(self) -> None:
        """fsync every temp file, then rename each over its target (report last)."""
        mode = 0o666 & ~_umask()
        for tmp, _ in self._staged:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
        for tmp, target in self._staged:
            os.replace(tmp, target)
        for target in self._remove:
            target.unlink(missing_ok=True)
        self._committed = True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    """Put with a timeout loop so a stopped pipeline never blocks forever."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                return


def _drain(q: queue.Queue[Any]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _block_bytes(batch_rows: int) -> int:
    # Small batches (tests) get small blocks; big ones get _BLOCK_BYTES blocks, regrouped by _rebatch.
    return int(min(_BLOCK_BYTES, max(1 << 16, batch_rows * 128)))


def _rebatch(reader: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``batch_rows`` rows (the last may be shorter) from the reader's blocks, no copies."""
    parts: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        start = 0
        while start < batch.num_rows:
            take = min(batch_rows - held, batch.num_rows - start)
            parts.append(batch.slice(start, take))
            held += take
            start += take
            if held == batch_rows:
                yield pa.Table.from_batches(parts)
                parts, held = [], 0
    if held:
        yield pa.Table.from_batches(parts)


def _empty_table(columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([], pa.string()) for c in columns})


class _ValidateKwargs(TypedDict):
    email_column: str
    timestamp_column: str


def _validate_kwargs(config: CleaningConfig) -> _ValidateKwargs:
    return {"email_column": config.email_column, "timestamp_column": config.timestamp_column}


def _resolve_config(
    config: CleaningConfig | None, policy: MaskingPolicy | str | os.PathLike[str] | None
) -> CleaningConfig:
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
        "batch_rows": batch_rows,
        "row_hash": hasher,
    }


def _version() -> str:
    from pipekit import __version__

    return __version__


def _clip(text: str, limit: int = 120) -> str:
    text = text.rstrip("\r\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def iter_batches(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[pa.Table]:
    """Read a CSV as Arrow tables of at most ``batch_rows`` rows, every column a string.

    Unreadable input raises InputError naming the line (wrong field count, bytes not in ``encoding``).
    """
    src = Path(path)
    _check_input(src)
    columns = read_header(src, encoding)
    bad: list[Any] = []

    def on_bad_row(row: Any) -> str:
        bad.append(row)
        return "error"

    reader = pacsv.open_csv(
        src,
        read_options=pacsv.ReadOptions(
            use_threads=False, block_size=_block_bytes(batch_rows), encoding=encoding
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_bad_row),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    try:
        yield from _rebatch(reader, batch_rows)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _read_error(src, encoding, exc, bad[0] if bad else None) from exc


def _read_error(src: Path, encoding: str, exc: BaseException, bad_row: Any) -> PipekitError:
    """InputError for a parse failure: the malformed row's line, or the first undecodable line."""
    if bad_row is not None:
        where = _where(src, encoding, bad_row.number)
        return InputError(
            f"{src}: {where} has {bad_row.actual_columns} field(s), expected {bad_row.expected_columns}: "
            f"{_clip(bad_row.text)}",
            hint="fix the row (quote fields that contain commas), or pass --bad-rows quarantine "
            "to set such rows aside in <stem>_quarantine.csv",
        )
    message = str(exc)
    if "UTF8" in message or "UTF-8" in message or isinstance(exc, UnicodeDecodeError):
        return _encoding_error(src, encoding)
    return InputError(f"{src}: cannot parse as CSV: {message}", hint="check the file is a CSV")


__all__ = [
    "DEFAULT_BATCH_ROWS",
    "CleanFileReport",
    "clean_file",
    "iter_batches",
    "output_paths",
    "read_header",
]
