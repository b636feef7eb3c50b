"""The threaded run behind ``clean_file``: reader thread -> cleaning pool -> writer thread.

One ``Run`` reads the CSV in record batches (hashing the bytes it checked), validates, normalises and
row-hashes batches on a small thread pool, filters duplicates in file order on the calling thread,
masks and flags on the pool again, and writes CSV and Parquet temp files on a writer thread. Stop
signals are blocked while the threads start, so a Ctrl-C always lands where the threads are joined.
"""

from __future__ import annotations

import io
import os
import queue
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipekit.core import (
    CleaningConfig,
    ControlCharacterError,
    ValidationReport,
    finalize_batch,
    guard_formula_text,
    guard_formulas,
    normalize_rows,
    parse_timestamps,
    validate,
)
from pipekit.errors import ConfigError, InputError, PipekitError, StorageError
from pipekit.io._dedup import BatchHashes, RowHasher, SeenRows
from pipekit.io._read import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_MAX_ROW_BYTES,
    CheckedInput,
    Progress,
    read_batches,
    read_error,
    read_os_error,
    record_lines,
)
from pipekit.io._staging import Staging
from pipekit.io.atomic import storage_error
from pipekit.io.csvfmt import header_line

if TYPE_CHECKING:
    import pyarrow.parquet as pq

BadRows = Literal["error", "quarantine"]
_QUEUE_DEPTH = 2
_POLARS_MIN_BYTES = 32 << 20
#: A Parquet row group holds up to this many batches' worth of bytes (see ``Run._writer``).
_ROW_GROUP_BATCHES = 4


#: How many quarantined rows the report lists by line (the private file holds them all).
_QUARANTINE_LINES = 20


def prefers_polars(total_bytes: int) -> bool:
    """Whether to hash rows with polars: much faster, but its import costs ~0.4 s, so large inputs only."""
    return total_bytes > _POLARS_MIN_BYTES


def quarantine_path(
    input_path: str | os.PathLike[str], quarantine_dir: str | os.PathLike[str], sha256: str
) -> Path:
    """The private file for this input's malformed rows: one per input content, so deliveries never clobber."""
    return Path(quarantine_dir) / f"{Path(input_path).stem}_{sha256[:12]}_quarantine.csv"


# --- the run ---------------------------------------------------------------------------------------


_DONE = object()
#: What the pool hands the file-order step per batch: the normalised table, its validation report,
#: counts, distinct row hashes and timings.
_Prepared = tuple[pa.Table, ValidationReport, dict[str, int], BatchHashes, dict[str, float]]
#: The hidden column that carries a batch's parsed timestamps from validation to the future flag.
_PARSED = "__pipekit_parsed_timestamp"


class Run:
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
        quarantine_dir: Path | None,
        identity: os.stat_result,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    ) -> None:
        self.src, self.columns, self.config, self.now = src, columns, config, now
        self.encoding, self.bad_rows, self.batch_rows, self.key = encoding, bad_rows, batch_rows, key
        self.progress, self.total, self.paths = progress, total, paths
        self.batch_bytes, self.max_row_bytes = batch_bytes, max_row_bytes
        # polars' row hash is much faster but costs ~0.5 s to import: worth it only on larger files.
        self.hasher = RowHasher(use_polars=None if prefers_polars(total) else False)
        self.seen = SeenRows()
        self.rows_read = self.rows_written = self.quarantined = 0
        self.counts: dict[str, int] = {"dropped_null": 0, "dropped_duplicate": 0, "control_chars": 0}
        self.validation = validate(empty_table(columns), config.required, **validate_kwargs(config))
        self.timings: dict[str, float] = {
            "validate_s": 0.0,
            "normalize_s": 0.0,
            "dedup_s": 0.0,
            "finalize_s": 0.0,
        }
        self.sha256 = ""
        self.bytes_read = 0
        self._identity = identity
        self._bad_row: Any = None
        self._callback_error: BaseException | None = None
        self._quarantine_dir = quarantine_dir
        self._quarantine_fh: io.BufferedWriter | None = None
        self._quarantine_tmp: Path | None = None
        self._quarantine_target: Path | None = None
        self._bad_records: list[tuple[int | None, int]] = []  # (Arrow record number, fields) of the first few
        self._staging: Staging | None = None
        self._stop = threading.Event()
        self._final_counts: dict[str, int] = {}
        self._guarded: dict[str, int] = {}
        self._header_guarded = 0
        self.workers = workers

    # The reader: parse CSV blocks into record batches (GIL released inside Arrow).
    def _reader(self, out: queue.Queue[Any]) -> None:
        try:
            with CheckedInput(self.src, self._identity, self.encoding, self.progress) as checked:
                batches = read_batches(
                    checked, self.columns, self.encoding, self.batch_rows, self._on_bad_row,
                    batch_bytes=self.batch_bytes, max_row_bytes=self.max_row_bytes,
                )  # fmt: skip
                try:
                    for table in batches:
                        if self._stop.is_set():
                            return
                        _put(out, table, self._stop)
                except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
                    # A file cut or grown under the reader shows as a bad row or a read error: say so.
                    problem = checked.problem()
                    if problem is not None:
                        raise problem from exc
                    if self._callback_error is not None:
                        raise self._callback_error from exc
                    if isinstance(exc, OSError):
                        raise read_os_error(self.src, exc) from exc
                    raise
                finally:
                    batches.close()  # drops the Arrow reader now: leaving the block waits for that
                if self._callback_error is not None:
                    raise self._callback_error
                # Only bytes that were read and checked are hashed: the report's sha256 is what was cleaned.
                self.sha256 = checked.finish()
                self.bytes_read = checked.bytes_read
            _put(out, _DONE, self._stop)
        except BaseException as exc:  # handed to the cleaning thread, which raises it
            _put(out, exc, self._stop)

    def _on_bad_row(self, row: Any) -> str:
        """pyarrow's callback for a row with the wrong number of fields; never raises.

        An exception raised here is printed and ignored by pyarrow ("Exception ignored in ..."), so any
        error (a full disk under the quarantine file) is kept for the reader and the parse is stopped.
        """
        try:
            return self._handle_bad_row(row)
        except OSError as exc:
            self._callback_error = storage_error(exc, self._quarantine_dir or self.src.parent)
            return "error"
        except BaseException as exc:
            self._callback_error = exc
            return "error"

    def _handle_bad_row(self, row: Any) -> str:
        """Such a row cannot be split into columns, so it cannot be masked: it goes, raw, to a private file
        (mode 0600) outside the published output, created on the first bad row.
        """
        if self.bad_rows == "error":
            self._bad_row = row
            return "error"
        if self._quarantine_fh is None:
            assert self._staging is not None and self._quarantine_dir is not None
            provisional = self._quarantine_dir / f"{self.src.stem}_quarantine.csv"  # named by sha at the end
            self._quarantine_tmp = self._staging.new(provisional, private=True)
            self._quarantine_fh = open(self._quarantine_tmp, "wb")  # noqa: SIM115 - closed in execute()
            self._quarantine_fh.write(header_line(self.columns))
        text = row.text if row.text.endswith(("\n", "\r")) else row.text + "\n"
        self._quarantine_fh.write(text.encode("utf-8"))
        self.quarantined += 1
        if len(self._bad_records) < _QUARANTINE_LINES:
            self._bad_records.append((row.number, row.actual_columns))
        return "skip"

    # The writer: CSV and Parquet, batch by batch, to temp files.
    def _writer(
        self, inbox: queue.Queue[Any], csv_path: Path, parquet_path: Path, errors: list[BaseException]
    ) -> None:
        csv: pacsv.CSVWriter | None = None
        # Imported here, on the writer thread: pyarrow.parquet (with pyarrow.fs and ssl) costs ~30 ms,
        # which then overlaps the reading and cleaning of the first batch instead of delaying them.
        import pyarrow.parquet as pq

        parquet: pq.ParquetWriter | None = None
        csv_names: list[str] = []
        written = 0
        # Parquet keeps metadata per row group and column until it closes (~800 bytes each: 380 MB for
        # 48 row groups of 10,000 columns), so small batches of a wide file are grouped into bigger
        # row groups: up to batch_rows rows or _ROW_GROUP_BATCHES batches' worth of bytes.
        group: list[pa.Table] = []
        group_rows = 0
        group_bytes = 0
        try:
            while True:
                item = inbox.get()
                if item is _DONE:
                    break
                item, csv_item, counts, guarded, spent = item.result()
                for name, n in counts.items():
                    self._final_counts[name] = self._final_counts.get(name, 0) + int(n)
                for name, n in guarded.items():
                    self._guarded[name] = self._guarded.get(name, 0) + n
                self.rows_written += item.num_rows
                for name, dt in spent.items():
                    self.timings[name] = self.timings.get(name, 0.0) + dt
                t0 = time.perf_counter()
                if csv is None:
                    csv_names = self._csv_header(item.schema.names)
                    # Arrow's writer quotes every string (5x faster than quoting only where needed).
                    csv = pacsv.CSVWriter(str(csv_path), csv_item.rename_columns(csv_names).schema)
                    parquet = pq.ParquetWriter(
                        str(parquet_path),
                        item.schema,
                        compression="snappy",
                        use_dictionary=dictionary_columns(item),
                    )
                csv.write_table(csv_item.rename_columns(csv_names))
                group.append(item)  # Parquet keeps the true values
                group_rows += item.num_rows
                group_bytes += item.nbytes
                if group_rows >= self.batch_rows or group_bytes >= _ROW_GROUP_BATCHES * self.batch_bytes:
                    assert parquet is not None
                    _write_row_group(parquet, group, group_rows)
                    group, group_rows, group_bytes = [], 0, 0
                written += 1
                if written % 8 == 0:
                    # Hand freed Arrow memory back to the OS now and then, so RSS tracks live data.
                    pa.default_memory_pool().release_unused()
                self.timings["write_s"] = self.timings.get("write_s", 0.0) + time.perf_counter() - t0
            if group:
                assert parquet is not None
                _write_row_group(parquet, group, group_rows)
                group = []
        except BaseException as exc:
            errors.append(exc)
            self._stop.set()
            _drain(inbox)
        finally:
            for writer in (csv, parquet):
                try:
                    if writer is not None:
                        writer.close()  # flushes the last pages: the disk may fill here too
                except BaseException as exc:
                    errors.append(exc)
                    self._stop.set()

    def execute(self, staging: Staging) -> None:
        """Run the stages; raise the first error any of them hit.

        Batches are validated, normalised and row-hashed on a small thread pool (Arrow kernels and the
        polars hash release the GIL), then the duplicate filter runs in file order on this thread, then
        masking/flagging runs on the pool again and the writer thread writes results in order.
        """
        csv_tmp = staging.new(self.paths["csv"])
        parquet_tmp = staging.new(self.paths["parquet"])
        self._staging = staging  # the reader stages the private quarantine file on the first bad row
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
        pending: deque[Future[_Prepared]]
        pending = deque()
        # Started with the stop signals blocked and unblocked inside the try: a SIGTERM/Ctrl-C that comes
        # meanwhile is raised where the finally below stops and joins the threads (a reader thread left
        # running while the interpreter exits aborts the process).
        blocked = _block_stop_signals()
        try:
            reader.start()
            writer.start()
        except BaseException:
            _restore_signals(blocked)
            raise
        seen_any = False
        try:
            _restore_signals(blocked)
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
                _put(cleaned, pool.submit(self._finalize_job, empty_table(self.columns)), self._stop)
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
                self._quarantine_fh.close()  # may raise OSError (disk full): clean_file names the folder
        if writer_errors:
            exc = writer_errors[0]
            if isinstance(exc, PipekitError):
                raise exc
            if isinstance(exc, OSError):
                raise storage_error(exc, self.paths["csv"].parent) from exc
            raise StorageError(
                f"writing the cleaned output to {self.paths['csv'].parent} failed: {exc}"
            ) from exc
        self._add(self._final_counts)
        if self._quarantine_tmp is not None:
            assert self._quarantine_dir is not None
            self._quarantine_target = quarantine_path(self.src, self._quarantine_dir, self.sha256)
            staging.retarget(self._quarantine_tmp, self._quarantine_target)
        self.timings["dedup_hashes_mib"] = round(self.seen.nbytes / 2**20, 2)

    def _prepare(self, table: pa.Table, row_offset: int) -> _Prepared:
        """Pool job: validate, normalise and hash one batch (independent of every other batch)."""
        t0 = time.perf_counter()
        # One timestamp parse per batch serves validation here and the future flag in _finalize_job:
        # the parsed column rides along as a hidden column through the row filters (parse_timestamps
        # trims, so parsing the raw value equals parsing the trimmed one).
        parsed = self._parse_timestamps(table)
        report = validate(
            table,
            self.config.required,
            row_offset=row_offset,
            parsed_timestamps=parsed,
            **validate_kwargs(self.config),
        )
        if parsed is not None:
            table = table.append_column(_PARSED, parsed)
        t1 = time.perf_counter()
        try:
            # Rows with a blank required value stay in the table until the one take in _finalize_job,
            # which drops them with the duplicates (one copy of the batch instead of two).
            table, blank, counts = normalize_rows(table, self.config)
        except ControlCharacterError as exc:
            raise self._control_char_error(exc, row_offset) from None  # the core's message has no file
        if parsed is not None and counts.get("control_chars"):
            # Stripping may have changed a timestamp: the flag must come from the cleaned value.
            table = table.drop_columns([_PARSED])
        t2 = time.perf_counter()
        # The batch's own duplicates are found here, in parallel; only the cross-batch check is serial.
        skip = None if blank is None else np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
        hashes = SeenRows.distinct(
            self.hasher.hash_rows(table, self.config.dedup_keys or self.columns), skip=skip
        )
        t3 = time.perf_counter()
        return (
            table,
            report,
            counts,
            hashes,
            {"validate_s": t1 - t0, "normalize_s": t2 - t1, "hash_s": t3 - t2},
        )

    def _parse_timestamps(self, table: pa.Table) -> pa.Array | None:
        """The batch's timestamp column parsed once, or None when there is none to share."""
        name = self.config.timestamp_column
        if name not in table.column_names or _PARSED in table.column_names:
            return None
        return parse_timestamps(table.column(name))

    def _control_char_error(self, exc: ControlCharacterError, row_offset: int) -> InputError:
        """The core's ControlCharacterError as an InputError naming the file, data row and line."""
        row = row_offset + exc.row + 1
        where = f"data row {row:,}"
        if self.bad_rows == "error":  # no row was set aside, so Arrow's record number is row + 1
            line = record_lines(self.src, self.encoding, [row + 1]).get(row + 1)
            where += f" (line {line})" if line else ""
        return InputError(
            f"{self.src}: {where}, column {exc.column!r} holds a control character (U+{exc.codepoint:04X}); "
            "its value is not shown; nothing was written",
            hint="pass --control-chars strip to remove such characters (counted in the report), "
            "or fix the file",
        )

    def _dedup_and_finalize(
        self,
        prepared: _Prepared,
        pool: ThreadPoolExecutor,
        cleaned: queue.Queue[Any],
    ) -> None:
        """In file order: merge the report, drop rows seen before, hand the rest to finalisation."""
        table, report, counts, hashes, timings = prepared
        t0 = time.perf_counter()
        self.validation = self.validation.merge(report)
        self._add(counts)
        keep = self.seen.first_new_distinct(hashes)
        dropped = table.num_rows - len(keep)  # blank rows (counted by normalize_rows) and duplicates
        self.counts["dropped_duplicate"] += dropped - counts["dropped_null"]
        timings["dedup_s"] = time.perf_counter() - t0
        for name, dt in timings.items():
            self.timings[name] = self.timings.get(name, 0.0) + dt
        _put(cleaned, pool.submit(self._finalize_job, table, keep if dropped else None), self._stop)

    def _finalize_job(
        self, table: pa.Table, keep: np.ndarray | None = None
    ) -> tuple[pa.Table, pa.Table, dict[str, int], dict[str, int], dict[str, float]]:
        """Pool job: drop the duplicates (``keep``: the rows to keep), mask per policy and flag future
        timestamps; guard the CSV copy's formula-like text.

        Returns (table for Parquet, table for CSV, counts, values guarded per column, timings).
        """
        t0 = time.perf_counter()
        if keep is not None:
            table = table.take(pa.Array.from_buffers(pa.int64(), len(keep), [None, pa.py_buffer(keep)]))
        parsed = None
        if _PARSED in table.column_names:
            parsed = table.column(_PARSED).combine_chunks()
            table = table.drop_columns([_PARSED])
        table, counts = finalize_batch(
            table, self.config, now=self.now, key=self.key, parsed_timestamps=parsed
        )
        t1 = time.perf_counter()
        csv_table, guarded = guard_formulas(table) if self.config.formula_guard else (table, {})
        return (
            table,
            csv_table,
            counts,
            guarded,
            {"finalize_s": t1 - t0, "formula_guard_s": time.perf_counter() - t1},
        )

    def _csv_header(self, names: list[str]) -> list[str]:
        """The CSV header: header cells are cells too, so a column named "=cmd|..." is guarded as well."""
        if not self.config.formula_guard:
            return names
        guarded = [guard_formula_text(name) for name in names]
        self._header_guarded = sum(a != b for a, b in zip(guarded, names, strict=True))
        return guarded

    def formula_guard_summary(self) -> dict[str, Any]:
        """The report's ``csv_formula_guard`` section: on or off, and values guarded per column."""
        order = {name: i for i, name in enumerate(self.columns)}  # file order, whatever batch saw it first
        cells = dict(sorted(self._guarded.items(), key=lambda item: order.get(item[0], len(order))))
        return {
            "enabled": self.config.formula_guard,
            "cells": cells,
            "header_cells": self._header_guarded,
            "total": sum(cells.values()) + self._header_guarded,
        }

    def quarantine_summary(self) -> dict[str, Any]:
        """The report's ``quarantine`` section: where the raw rows are and which lines they came from."""
        if not self.quarantined or self._quarantine_target is None:
            return {}
        records = [r for r, _ in self._bad_records if r is not None]
        lines = record_lines(self.src, self.encoding, records)
        return {
            "rows": self.quarantined,
            "path": str(self._quarantine_target),
            "mode": "0600",
            "expected_fields": len(self.columns),
            "first_rows": [
                {"line": lines.get(r) if r is not None else None, "record": r, "fields": fields}
                for r, fields in self._bad_records
            ],
        }

    def _add(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.counts[name] = self.counts.get(name, 0) + int(n)

    def _translate(self, exc: BaseException) -> BaseException:
        """Turn Arrow's parse/encoding errors into InputError naming the line."""
        if isinstance(exc, pa.ArrowInvalid | UnicodeDecodeError):
            return read_error(
                self.src, self.encoding, exc, self._bad_row, self.columns, max_row_bytes=self.max_row_bytes
            )
        if isinstance(exc, LookupError) and "encoding" in str(exc):
            return ConfigError(
                f"unknown encoding {self.encoding!r}", hint="use a Python codec name, e.g. latin-1"
            )
        return exc


# --- helpers ---------------------------------------------------------------------------------------


def _write_row_group(parquet: pq.ParquetWriter, tables: list[pa.Table], rows: int) -> None:
    """Write ``tables`` (same schema) as one row group, without copying them into one."""
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    parquet.write_table(table, row_group_size=max(1, rows))


#: A column gets Parquet dictionary encoding when the first batch has at most this share of distinct values.
_DICTIONARY_MAX_DISTINCT = 0.2


def dictionary_columns(first: pa.Table) -> bool | list[str]:
    """Which columns to dictionary-encode, judged on the first batch (True: all, for a small batch).

    Parquet's writer tries a dictionary on every column and falls back once it outgrows a page; on
    near-unique columns (ids, emails, phones, timestamps) that attempt is ~12 % of the write time per
    batch for nothing. Low-cardinality columns (countries, names) keep their dictionary.
    """
    if first.num_rows < 10_000:
        return True
    chosen = []
    for name, column in zip(first.column_names, first.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            chosen.append(name)
            continue
        distinct = pc.count_distinct(column, mode="all").as_py()
        if distinct <= _DICTIONARY_MAX_DISTINCT * first.num_rows:
            chosen.append(name)
    return chosen


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    """Put with a timeout loop so a stopped pipeline never blocks forever."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                return


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _block_stop_signals() -> set[int | signal.Signals] | None:
    """Block SIGINT/SIGTERM/SIGHUP in this thread (threads started now inherit it); the previous mask."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)


def _restore_signals(mask: set[int | signal.Signals] | None) -> None:
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _drain(q: queue.Queue[Any]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def empty_table(columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([], pa.string()) for c in columns})


class ValidateKwargs(TypedDict):
    email_column: str
    timestamp_column: str


def validate_kwargs(config: CleaningConfig) -> ValidateKwargs:
    return {"email_column": config.email_column, "timestamp_column": config.timestamp_column}
