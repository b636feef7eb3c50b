"""What the Python workers run for ``pipekit.spark.clean``: the core's kernels over Arrow batches, and the
tally of counts and validation they send back to the driver (an accumulator).

Only numpy and pyarrow are imported here; pyspark (``TaskContext``) and the file engine's row hasher
(``pipekit.io._dedup``) inside the functions that need them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipekit.core import (
    CleaningConfig,
    ControlCharacterError,
    Problem,
    ValidationReport,
    finalize_batch,
    guard_formulas,
    normalize_batch,
    parse_timestamps,
    validate,
)

#: Helper columns: the file's index (several input files) and the row's position in its file.
FILE_COLUMN = "__pipekit_file"
ROW_COLUMN = "__pipekit_row"
RANK_COLUMN = "__pipekit_rank"
#: The parsed timestamps a stash keeps for the future flag (see :func:`normalize_partition`).
PARSED_COLUMN = "__pipekit_parsed_timestamp"
#: ``monotonically_increasing_id``: the partition index sits above the low 33 bits.
ROW_BITS = 33
ROW_MASK = (1 << ROW_BITS) - 1
CONTROL_MARK = "PIPEKIT_CONTROL_CHAR"
CONTROL_RE = re.compile(
    CONTROL_MARK + r" column=(?P<column>.*?) codepoint=(?P<cp>\d+) row=(?P<row>-?\d+) END"
)


# --- what the tasks report -------------------------------------------------------------------------


@dataclass
class Tally:
    """What the tasks counted: per-rule counts, formula-guarded cells, rows per scan partition and the
    validation report (its sample rows are row ids until :meth:`row_numbers` turns them into row numbers)."""

    counts: dict[str, int] = field(default_factory=dict)
    guarded: dict[str, int] = field(default_factory=dict)
    partitions: dict[tuple[int, int], int] = field(default_factory=dict)
    validation: ValidationReport | None = None
    normalized: int = 0
    written: int = 0

    def merge(self, other: Tally) -> Tally:
        """This tally plus ``other`` (order-free: counts add, validation samples keep the smallest ids)."""
        out = Tally(dict(self.counts), dict(self.guarded), dict(self.partitions), self.validation,
                    self.normalized + other.normalized, self.written + other.written)  # fmt: skip
        for target, source in ((out.counts, other.counts), (out.guarded, other.guarded)):
            for name, n in source.items():
                target[name] = target.get(name, 0) + n
        for part, n in other.partitions.items():
            out.partitions[part] = out.partitions.get(part, 0) + n
        if other.validation is not None:
            out.validation = (
                other.validation if out.validation is None else out.validation.merge(other.validation)
            )
        return out

    def row_numbers(self) -> dict[int, int]:
        """Offset of each scan partition of file 0 (its first row's 0-based row number)."""
        offsets, at = {}, 0
        for (file, part), n in sorted(self.partitions.items()):
            if file == 0:
                offsets[part] = at
                at += n
        return offsets


class TallyParam:
    """Accumulator parameter for :class:`Tally` (pyspark needs only ``zero`` and ``addInPlace``)."""

    def zero(self, value: Tally) -> Tally:
        return Tally()

    def addInPlace(self, value1: Tally, value2: Tally) -> Tally:
        return value1.merge(value2)


# --- the kernels, as the Python workers run them ---------------------------------------------------


def _fill_blank(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Spark reads an empty field as null; the file engine reads it as "": make them the same."""
    arrays = []
    for name in columns:
        column = table.column(name)
        arrays.append(pc.fill_null(column, "") if column.null_count else column)
    return pa.Table.from_arrays(arrays, names=list(columns))


def normalize_partition(
    batches: Iterator[pa.RecordBatch] | Iterator[pa.Table], config: CleaningConfig, columns: list[str],
    tally: Any, *, keep_parsed: bool = False,
) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """Per batch: validate and normalise (the core's kernels), keeping each row's file/row ids alongside.

    ``keep_parsed``: also keep the batch's parsed timestamps (one parse serves validation and the future
    flag, as in the file engine) in :data:`PARSED_COLUMN`, after the ids; needs the timestamp column."""
    total = Tally()
    stamp = config.timestamp_column
    for batch in batches:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        ids = table.column(ROW_COLUMN)
        files = table.column(FILE_COLUMN)
        data = _fill_blank(table, columns)
        parsed = parse_timestamps(data.column(stamp)) if keep_parsed else None
        report = validate(data, config.required, email_column=config.email_column,
                          timestamp_column=stamp, parsed_timestamps=parsed)  # fmt: skip
        id_values = ids.to_numpy()
        report = _report_with_ids(report, id_values)
        with_ids = data.append_column(FILE_COLUMN, files).append_column(ROW_COLUMN, ids)
        if parsed is not None:
            with_ids = with_ids.append_column(PARSED_COLUMN, parsed)
        try:
            out, counts = normalize_batch(with_ids, config)
        except ControlCharacterError as exc:
            # A task's exception reaches the driver as text: carry what the driver needs to name the row.
            raise RuntimeError(
                f"{CONTROL_MARK} column={exc.column} codepoint={exc.codepoint} row={int(id_values[exc.row])} END"
            ) from None
        if parsed is not None and counts.get("control_chars"):  # the flag must read the cleaned value
            out = out.set_column(out.schema.get_field_index(PARSED_COLUMN), PARSED_COLUMN,
                                 parse_timestamps(out.column(stamp)))  # fmt: skip
        step = Tally(
            counts={k: int(v) for k, v in counts.items()}, validation=report, normalized=out.num_rows
        )
        step.partitions = _rows_per_partition(files.to_numpy(), id_values)
        total = total.merge(step)
        yield from out.combine_chunks().to_batches()
    tally.add(total)


def _rows_per_partition(files: np.ndarray, ids: np.ndarray) -> dict[tuple[int, int], int]:
    """Rows per (file index, scan partition) of one batch (a batch mostly comes from one partition)."""
    keys = (files.astype(np.int64) << 31) | (ids >> ROW_BITS)  # partition ids stay below 2**31
    if not len(keys):
        return {}
    if keys[0] == keys[-1] and (keys == keys[0]).all():
        found, counts = keys[:1], np.array([len(keys)])
    else:
        found, counts = np.unique(keys, return_counts=True)
    return {(int(k >> 31), int(k & 0x7FFFFFFF)): int(c) for k, c in zip(found, counts, strict=True)}


#: What :func:`hash_partition` emits per row (24 bytes: the ids and the two hash halves).
HASH_SCHEMA = pa.schema([(FILE_COLUMN, pa.int32()), (ROW_COLUMN, pa.int64()), ("h1", pa.int64()),
                         ("h2", pa.int64())])  # fmt: skip


def hash_partition(
    batches: Iterator[pa.RecordBatch] | Iterator[pa.Table], config: CleaningConfig, columns: list[str], tally: Any, seed_ref: Any,
    stash_dir: str, part: int | None = None,
) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """Per batch: validate and normalise (:func:`normalize_partition`); keep the normalised rows in the Arrow
    file of scan partition ``part`` (default: this task's) under ``stash_dir`` (:func:`finish_part` reads it)
    and emit only each row's ids and the keyed 128-bit hash of its dedup keys (the file engine's
    ``RowHasher``, seeded from the driver)."""
    from pipekit.io._dedup import RowHasher

    hasher = RowHasher(seed_ref.value)
    keys = list(config.dedup_keys or columns)
    keep_parsed = config.timestamp_column in columns
    schema = pa.schema(
        [*[(c, pa.string()) for c in columns], (FILE_COLUMN, pa.int32()), (ROW_COLUMN, pa.int64()),
         *([(PARSED_COLUMN, pa.timestamp("us", tz="UTC"))] if keep_parsed else [])]
    )  # fmt: skip
    with pa.OSFile(str(Path(stash_dir) / f"{_partition_id() if part is None else part:06d}.norm.arrow"), "wb") as sink, \
            pa.ipc.new_stream(sink, schema) as stash:  # fmt: skip
        for batch in normalize_partition(batches, config, columns, tally, keep_parsed=keep_parsed):
            table = pa.Table.from_batches([batch]).cast(schema)
            stash.write_table(table)
            hashes = hasher.hash_rows(table, keys).view(np.int64)
            yield pa.RecordBatch.from_arrays(
                [table.column(FILE_COLUMN).combine_chunks(), table.column(ROW_COLUMN).combine_chunks(),
                 pa.array(hashes[:, 0]), pa.array(hashes[:, 1])],
                schema=HASH_SCHEMA,
            )  # fmt: skip


class _Sum:
    """A task-local stand-in for the Tally accumulator (the task returns its total instead)."""

    def __init__(self) -> None:
        self.total = Tally()

    def add(self, value: Tally) -> None:
        self.total = self.total.merge(value)


@dataclass(frozen=True)
class SplitScan:
    """What the tasks of the Python split plan share: the input, its byte ranges and the settings."""

    src: str
    bounds: tuple[int, ...]
    columns: tuple[str, ...]
    encoding: str
    block_size: int
    stash_dir: str

    @property
    def parts(self) -> int:
        return len(self.bounds) - 1

    def bucket_file(self, part: int, bucket: int) -> Path:
        return Path(self.stash_dir) / f"{part:06d}.h{bucket:06d}.npy"


def scan_part(part: int, scan: SplitScan, config: CleaningConfig, seed_ref: Any) -> tuple[int, Tally]:
    """Task 1 of the Python split plan: read byte range ``part`` (pyarrow, as the file engine reads),
    validate and normalise it (stashed for :func:`finish_part`), and write each row's keyed 128-bit hash
    and id, bucketed by hash, for :func:`later_copies` (one file per bucket, ``scan.parts`` buckets)."""
    from pipekit.spark._clean_input import read_split

    columns = list(scan.columns)
    tables = read_split(scan.src, scan.bounds[part], scan.bounds[part + 1], columns, scan.encoding, part,
                        block_size=scan.block_size)  # fmt: skip
    tally = _Sum()
    hashed = list(hash_partition(tables, config, columns, tally, seed_ref, scan.stash_dir, part))
    h1 = np.concatenate([b.column(2).to_numpy() for b in hashed]) if hashed else np.empty(0, np.int64)
    h2 = np.concatenate([b.column(3).to_numpy() for b in hashed]) if hashed else np.empty(0, np.int64)
    rows = np.concatenate([b.column(1).to_numpy() for b in hashed]) if hashed else np.empty(0, np.int64)
    bucket = h1.view(np.uint64) % np.uint64(scan.parts)
    order = np.argsort(bucket, kind="stable")
    edges = np.searchsorted(bucket[order], np.arange(scan.parts + 1, dtype=np.uint64))
    records = np.stack([h1[order], h2[order], rows[order]])
    for b in range(scan.parts):
        np.save(scan.bucket_file(part, b), records[:, edges[b] : edges[b + 1]])
    return part, tally.total


def later_copies(bucket: int, scan: SplitScan) -> np.ndarray:
    """Task 2 of the Python split plan: the ids of the rows of hash ``bucket`` (from every part) that
    repeat an earlier row's keyed hash: every row but the first in file order (the smallest id)."""
    files = [scan.bucket_file(part, bucket) for part in range(scan.parts)]
    records = np.concatenate([np.load(f) for f in files], axis=1)
    for f in files:
        f.unlink()
    h1, h2, rows = records
    order = np.lexsort((rows, h2, h1))
    h1, h2, rows = h1[order], h2[order], rows[order]
    repeat = (h1[1:] == h1[:-1]) & (h2[1:] == h2[:-1])
    return rows[1:][repeat]


def finish_part(
    part: int, config: CleaningConfig, columns: list[str], now: datetime, key_ref: Any, drop_ref: Any,
    parts_dir: str,
) -> tuple[int, Tally]:  # fmt: skip
    """One scan partition's stashed normalised rows, less those whose row id is in the sorted array
    ``drop_ref`` (later copies of duplicates), masked, flagged and written as its CSV and Arrow parts."""
    drop: np.ndarray = drop_ref.value
    base = Path(parts_dir) / f"{part:06d}"
    stash = Path(f"{base}.norm.arrow")

    def kept() -> Iterator[pa.Table]:
        with pa.memory_map(str(stash)) as source:
            for batch in pa.ipc.open_stream(source):
                table = pa.Table.from_batches([batch])
                if len(drop) and table.num_rows:
                    ids = table.column(ROW_COLUMN).to_numpy()
                    at = np.minimum(np.searchsorted(drop, ids), len(drop) - 1)
                    table = table.filter(pa.array(drop[at] != ids))
                yield table

    total = _write_tables(kept(), config, columns, now, key_ref, base)
    stash.unlink()
    return part, total


def _partition_id() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0


def _report_with_ids(report: ValidationReport, ids: np.ndarray) -> ValidationReport:
    """``report`` with each sample row (1-based in the batch) replaced by that row's id."""
    problems = tuple(
        Problem(p.column, p.kind, p.count, tuple(int(ids[i - 1]) for i in p.sample_rows))
        for p in report.problems
    )
    return replace(report, problems=problems)


def _finalize_table(
    table: pa.Table, config: CleaningConfig, columns: list[str], now: datetime, key_ref: Any
) -> tuple[pa.Table, dict[str, int]]:
    """Mask and flag one batch (the core's ``finalize_batch``, with the batch's parsed timestamps when it
    carries them); only ``columns`` and the flag come out."""
    key = key_ref.value if key_ref is not None else None
    parsed = None
    if PARSED_COLUMN in table.column_names:
        parsed = table.column(PARSED_COLUMN).combine_chunks()
    out, counts = finalize_batch(table.select(columns), config, now=now, key=key, parsed_timestamps=parsed)
    out = pa.Table.from_arrays(
        [c.cast(pa.string()) if pa.types.is_large_string(c.type) else c for c in out.columns],
        names=out.column_names,
    )
    return out, counts


def finalize_partition(
    batches: Iterator[pa.RecordBatch], config: CleaningConfig, columns: list[str], now: datetime,
    key_ref: Any, tally: Any,
) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """Per batch: mask and flag; rows stay in order, with their ids (the Glue job sorts and drops them)."""
    total = Tally()
    for batch in batches:
        table = pa.Table.from_batches([batch])
        out, counts = _finalize_table(table, config, columns, now, key_ref)
        out = out.append_column(FILE_COLUMN, table.column(FILE_COLUMN)).append_column(
            ROW_COLUMN, table.column(ROW_COLUMN)
        )
        total = total.merge(Tally(counts=counts, written=out.num_rows))
        yield from out.to_batches()
    tally.add(total)


def write_partition(
    batches: Iterator[pa.RecordBatch], config: CleaningConfig, columns: list[str], now: datetime,
    key_ref: Any, tally: Any, parts_dir: str,
) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """Per batch: mask, flag, guard the CSV copy; append to this task's CSV and Arrow part files."""
    part = _partition_id()
    tables = (pa.Table.from_batches([batch]) for batch in batches)
    total = _write_tables(tables, config, columns, now, key_ref, Path(parts_dir) / f"{part:06d}")
    tally.add(total)
    yield pa.RecordBatch.from_pydict({"part": [part], "rows": [total.written]},
                                     schema=pa.schema([("part", pa.int32()), ("rows", pa.int64())]))  # fmt: skip


def _write_tables(
    tables: Iterator[pa.Table], config: CleaningConfig, columns: list[str], now: datetime, key_ref: Any,
    base: Path,
) -> Tally:  # fmt: skip
    """Mask, flag and guard each table; write them to ``base``.csv (no header) and ``base``.arrow (only
    when some row is written); the counts as a :class:`Tally`."""
    import pyarrow.csv as pacsv

    total = Tally()
    csv_fh = arrow_writer = arrow_fh = None
    try:
        for source in tables:
            if not source.num_rows:
                continue
            table, counts = _finalize_table(source, config, columns, now, key_ref)
            guarded: dict[str, int] = {}
            csv_table = table
            if config.formula_guard:
                csv_table, guarded = guard_formulas(table)
            if csv_fh is None:
                csv_fh = open(f"{base}.csv", "wb")  # noqa: SIM115 - closed in finally
                arrow_fh = pa.OSFile(f"{base}.arrow", "wb")
                arrow_writer = pa.ipc.new_stream(arrow_fh, table.schema)
            pacsv.write_csv(csv_table, csv_fh, write_options=pacsv.WriteOptions(include_header=False))
            assert arrow_writer is not None
            arrow_writer.write_table(table)
            total = total.merge(Tally(counts=counts, guarded=guarded, written=table.num_rows))
    finally:
        if arrow_writer is not None:
            arrow_writer.close()
        for fh in (arrow_fh, csv_fh):
            if fh is not None:
                fh.close()
    return total
