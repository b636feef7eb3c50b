"""The whole customer cleaning on Spark, with the core's Arrow kernels: the same ``CleaningConfig``, the
same rows in the same order as ``pipekit.clean_file``.

Plan of the Glue job (``clean_frame_spark``) and of a multiLine file: read the CSV (every column a
string, header, UTF-8) -> number the rows in file order -> ``mapInArrow`` running ``validate`` +
``normalize_batch`` -> keep-first duplicate filter (a window over the dedup keys, ordered by the row
number) -> sort by row number -> ``mapInArrow`` running ``finalize_batch`` (and, for files,
``guard_formulas`` and the writing). The rules are the core's: no rule is re-written in Spark SQL, so the
engines cannot drift apart.

Plan "python-split" of a splittable file on a local master (``clean_file_spark``, no line break inside
quotes), which never sorts and carries no row through the JVM: the driver cuts the file at line starts
into byte ranges; every step is a Python task Spark schedules, exchanging data through the staging folder.
(1) Per range: read it with pyarrow as the file engine reads, ``validate`` + ``normalize_batch`` (one
timestamp parse serves validation and the future flag); keep the normalised rows in an Arrow file and
write (keyed 128-bit hash of the dedup keys, row id) per row into hash buckets; (2) per bucket: a numpy
sort finds every row but the first (by row id) of each hash; the driver sorts and broadcasts those ids;
(3) per range: drop those ids, ``finalize_batch``, write its parts, which are in file order because the
ranges are. A file whose lines end in bare CRs (or an encoding pyarrow cannot cut at LF bytes) is read
by Spark's CSV scan instead ("spark-scan"): steps (1) in ``mapInArrow`` and (2) as a window over the
(row id, hash) records. The hash is ``pipekit.io._dedup.RowHasher``'s (the file engine's) keyed with a
random per-run seed (a broadcast, never logged or in the conf), so two different rows are merged only if
all 128 bits collide by chance, as in the file engine (which keeps 96 of them).

File order: a row id is ``partition << 33 | record`` (``monotonically_increasing_id()`` right after a Spark
scan; the python-split tasks number their rows the same way). For one
CSV, Spark's scan lists the file's splits in offset order (it sorts splits by length, descending and
stably: every split of a file but the last has the same length, and the last is the shortest), so the id
grows with the position in the file. Several files (the Glue job) are ordered by (file, id).

Quoted fields holding line breaks need Spark's ``multiLine`` mode, which reads a file as one partition
(the rows are then spread over the cores before the kernels run). ``multiline=None`` (the default)
decides by scanning the file once (the same pass computes the report's sha256): a line break inside
quotes switches it on, otherwise the file is split.

Outputs (``clean_file_spark``): on a local master writing to a local folder, each task writes its part
(CSV without header, formula-guarded; Arrow IPC for the Parquet side) into the run's staging folder, and
the driver joins the parts into the same three files as ``clean_file`` (``output_paths``), renamed into
place only when everything succeeded. Cluster masters and remote folders are refused with a pointer to
the Glue job's ``--clean full``, which writes a Parquet folder through Spark.

Counts and the validation report come back as the tasks' results (python-split) or through one
accumulator (the other plans; merged on the driver); Spark applies an accumulator update of a
transformation again when it re-runs a stage (a lost executor), so on a cluster the counts may then
over-count, never the data.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipekit.core import (
    CleaningConfig,
    MaskingPolicy,
    Problem,
    ValidationReport,
    finalize_batch,
    guard_formula_text,
    resolve_key,
    utc_now,
    validate,
)
from pipekit.errors import ConfigError, InputError, PipekitError, StorageError, ValidationError
from pipekit.spark._clean_input import (
    ARROW_BATCH_ROWS,
    InputScan,
    line_splits,
    quiet_task_logs,
    read_csv_strings,
    scan_input,
    string_schema,
)
from pipekit.spark._clean_input import session as _session
from pipekit.spark._clean_tasks import (
    CONTROL_RE,
    FILE_COLUMN,
    RANK_COLUMN,
    ROW_BITS,
    ROW_COLUMN,
    ROW_MASK,
    SplitScan,
    Tally,
    TallyParam,
    finalize_partition,
    finish_part,
    hash_partition,
    later_copies,
    normalize_partition,
    scan_part,
    write_partition,
)
from pipekit.spark.etl import EtlStats


@dataclass
class CleanEtlStats(EtlStats):
    """``EtlStats`` of a Glue ``--clean full`` run, plus the cleaning's counts per rule and the validation
    problems found (per ``column.kind``)."""

    clean: str = "full"
    counts: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)


# --- the plan ----------------------------------------------------------------------------------------

#: ``HASH_SCHEMA`` as a Spark DDL string (what the hashing tasks emit).
HASH_DDL = f"`{FILE_COLUMN}` int, `{ROW_COLUMN}` long, h1 long, h2 long"


def _col(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _with_ids_schema(columns: Sequence[str], flag: str | None = None) -> Any:
    from pyspark.sql.types import BooleanType, IntegerType, LongType, StructField

    schema = string_schema(columns)
    if flag is not None:
        schema = schema.add(StructField(flag, BooleanType(), True))
    return schema.add(StructField(FILE_COLUMN, IntegerType(), False)).add(
        StructField(ROW_COLUMN, LongType(), False)
    )


def with_row_ids(frame: Any, file_index: int = 0) -> Any:
    """``frame`` (straight from a CSV scan) with the file index and the row's file-order id appended."""
    from pyspark.sql import functions as F

    return frame.select(*[_col(c) for c in frame.columns], F.lit(file_index).cast("int").alias(FILE_COLUMN),
                        F.monotonically_increasing_id().alias(ROW_COLUMN))  # fmt: skip


def deduplicated_plan(frame: Any, config: CleaningConfig, tally: Any, *, spread: int | None = None) -> Any:
    """Normalise ``frame`` (data columns + ids, see :func:`with_row_ids`) and keep the first of each duplicate,
    sorted in file order; ``spread`` repartitions first (a multiLine read is one partition)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    columns = [c for c in frame.columns if c not in (FILE_COLUMN, ROW_COLUMN)]
    if spread:
        frame = frame.repartition(spread)

    def normalize(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return normalize_partition(batches, config, columns, tally)

    normalized = frame.mapInArrow(normalize, _with_ids_schema(columns))
    keys = [_col(k) for k in (config.dedup_keys or columns)]
    # The 64-bit hash first makes the window's sort cheap; the key columns after it make it exact.
    window = Window.partitionBy(F.xxhash64(*keys), *keys).orderBy(FILE_COLUMN, ROW_COLUMN)
    first = normalized.withColumn(RANK_COLUMN, F.row_number().over(window)).where(F.col(RANK_COLUMN) == 1)
    return first.drop(RANK_COLUMN).orderBy(FILE_COLUMN, ROW_COLUMN)


def clean_frame_spark(
    frame: Any,
    config: CleaningConfig,
    *,
    now: datetime,
    key: bytes | None = None,
    spread: int | None = None,
) -> tuple[Any, Any]:
    """The cleaned rows of ``frame`` (ids appended by :func:`with_row_ids`), in file order, masked and
    flagged, ids dropped; and the accumulator holding the :class:`Tally` (read it after the action)."""
    spark = frame.sparkSession
    tally = spark.sparkContext.accumulator(Tally(), TallyParam())
    key_ref = _key_ref(spark, config, key)
    columns = [c for c in frame.columns if c not in (FILE_COLUMN, ROW_COLUMN)]
    out_columns = [c for c in columns if c != config.flag_column]
    ordered = deduplicated_plan(frame, config, tally, spread=spread)

    def finalize(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return finalize_partition(batches, config, columns, now, key_ref, tally)

    finalized = ordered.mapInArrow(finalize, _with_ids_schema(out_columns, config.flag_column))
    return finalized.drop(FILE_COLUMN, ROW_COLUMN), tally


def _key_ref(spark: Any, config: CleaningConfig, key: bytes | None) -> Any:
    """The masking key as a broadcast (never in the plan or the conf), when a hash rule needs one."""
    if not config.policy.needs_key:
        return None
    from pipekit.spark._keyed import broadcast_key

    return broadcast_key(spark, resolve_key(key, config.policy.key_env))


# --- the file job ------------------------------------------------------------------------------------


def clean_file_spark(
    input_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    config: CleaningConfig | None = None,
    policy: MaskingPolicy | str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    key: bytes | None = None,
    master: str | None = None,
    spark: Any | None = None,
    multiline: bool | None = None,
    encoding: str = "utf-8",
) -> Any:
    """Clean one CSV file on Spark into ``DIR/<stem>_cleaned.csv``, ``.parquet`` and ``_report.json``: the
    same files, rows and order as ``pipekit.clean_file`` (returns its ``CleanFileReport``, ``settings.engine``
    = "spark").

    ``spark``: a session to use (left running); else one for ``master`` (default ``local[N]``, N = CPU
    count), stopped at the end. ``multiline``: quoted fields may hold line breaks (None: detect). Missing
    required columns raise ValidationError before Spark starts; malformed rows raise InputError.
    """
    from pipekit.io._run import empty_table
    from pipekit.io._staging import Staging, remove_stale
    from pipekit.io.engine import CleanFileReport, check_columns, output_paths, read_header, resolve_config

    started = time.perf_counter()
    config = resolve_config(config, policy)
    now = utc_now(now)
    src = Path(input_path)
    if "://" in str(out_dir) or "://" in str(input_path):
        raise ConfigError(
            f"clean_file_spark reads and writes local files; got {input_path} -> {out_dir}",
            hint="for S3 or a cluster run the Glue job with --clean full (it writes a Parquet folder)",
        )
    if master is not None and not master.startswith("local"):
        raise ConfigError(
            f"--master {master}: clean_file_spark joins the parts on this machine, so it needs a local master",
            hint="use local[N], or run the Glue job with --clean full on a cluster",
        )
    if not src.is_file():
        raise InputError(f"{src} does not exist or is not a file", hint="check the input path")
    columns = read_header(src, encoding)
    check_columns(src, columns, config)
    if config.policy.needs_key:
        key = resolve_key(key, config.policy.key_env)  # before Spark starts: names the env var to set
    paths = output_paths(src, out_dir)
    if src.resolve() in {p.resolve() for p in paths.values() if p.exists()}:
        raise ConfigError(
            f"{src}: the output would overwrite the input", hint="choose another --out directory"
        )
    # The scan pass (sha256, quoted line breaks) and the JVM's start are both serial: run them at once.
    with ThreadPoolExecutor(1, thread_name_prefix="pipekit-scan") as pool:
        scanning = pool.submit(_timed_scan, src)
        stale = remove_stale(Path(out_dir))
        session, owned = _session(spark, master)
        try:
            scan, scan_s = scanning.result()
        except BaseException:
            if owned:
                session.stop()
            raise
    use_multiline = scan.multiline if multiline is None else multiline
    timings = {"scan_s": scan_s}
    try:
        if owned and not use_multiline:
            _even_splits(session, scan.bytes)
        with Staging() as staging:
            csv_tmp = staging.new(paths["csv"])
            parquet_tmp = staging.new(paths["parquet"])
            parts_dir = csv_tmp.parent / f"parts-{os.getpid()}"
            parts_dir.mkdir()
            t0 = time.perf_counter()
            with quiet_task_logs(session):
                tally, parts, partitions, plan = _run(session, src, columns, config, now, key, use_multiline,
                                                      encoding, parts_dir, timings)  # fmt: skip
            timings["spark_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            final, zero_counts = finalize_batch(empty_table(columns), config, now=now, key=key)
            header_guarded = _join_parts(parts_dir, parts, csv_tmp, parquet_tmp, final.schema, config)
            timings["publish_s"] = time.perf_counter() - t0
            validation = validate(empty_table(columns), config.required, email_column=config.email_column,
                                  timestamp_column=config.timestamp_column)  # fmt: skip
            if tally.validation is not None:
                validation = validation.merge(_numbered(tally.validation, tally.row_numbers()))
            report = CleanFileReport(
                input={"path": str(src), "bytes": scan.bytes, "sha256": scan.sha256, "encoding": encoding},
                outputs={k: str(p) for k, p in paths.items()},
                rows_read=validation.rows,
                rows_written=tally.written,
                counts=_counts(tally, zero_counts),
                validation=validation,
                formula_guard=_guard_summary(tally, columns, config, header_guarded),
                timings=timings,
                settings=_settings(config, now, session, use_multiline, multiline is None, partitions, plan),
                pipekit_version=_version(),
                stale_staging_removed=stale,
            )
            report.timings["total_s"] = time.perf_counter() - started
            report_tmp = staging.new(paths["report"])
            report_tmp.write_text(
                json.dumps(report.to_dict(), indent=2, default=str) + "\n", encoding="utf-8"
            )
            staging.commit()
    except OSError as exc:
        from pipekit.io.atomic import storage_error

        raise storage_error(exc, Path(out_dir)) from exc
    finally:
        if owned:
            session.stop()
    return report


def _timed_scan(src: Path) -> tuple[InputScan, float]:
    t0 = time.perf_counter()
    return scan_input(src), time.perf_counter() - t0


def _even_splits(spark: Any, size: int) -> None:
    """Split the file into a multiple of the cores' count of equal scan partitions (at most Spark's
    128 MiB each), so no core waits for the others' last split."""
    largest = 128 << 20
    split = _even_split(size, spark.sparkContext.defaultParallelism, largest)
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(max(min(split, largest), 1)))


def _even_split(size: int, cores: int, limit: int) -> int:
    """Bytes per split cutting ``size`` into a whole number of equal splits per core, each at most about
    ``limit`` (ceil: Spark, and ``line_splits``, then cut exactly cores * waves splits)."""
    cores = max(cores, 1)
    waves = max(-(-size // (cores * max(limit, 1))), 1)
    return -(-size // (cores * waves))


def _run(
    spark: Any, src: Path, columns: list[str], config: CleaningConfig, now: datetime, key: bytes | None,
    multiline: bool, encoding: str, parts_dir: Path, timings: dict[str, float],
) -> tuple[Tally, list[int], int, str]:  # fmt: skip
    """Run the plan; (tally with row numbers, parts in order that hold rows, scan partitions, plan name:
    "sorted" for multiline files, "python-split" for files cut into byte ranges, "spark-scan" for the
    rest). The python-split plan adds its steps' seconds to ``timings``."""
    from pipekit.io._read import ascii_compatible, block_bytes

    tally = spark.sparkContext.accumulator(Tally(), TallyParam())
    key_ref = _key_ref(spark, config, key)
    path = str(src.resolve())
    if multiline:  # one scan partition: spread the rows over the cores, then sort them back
        frame = read_csv_strings(spark, path, columns, multiline=multiline, encoding=encoding)
        partitions = frame.rdd.getNumPartitions()
        cores = spark.sparkContext.defaultParallelism
        ordered = deduplicated_plan(with_row_ids(frame), config, tally, spread=cores if cores > 1 else None)

        def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            return write_partition(batches, config, columns, now, key_ref, tally, str(parts_dir))

        try:
            rows = ordered.mapInArrow(write, "part int, rows long").collect()
        except Exception as exc:
            if not CONTROL_RE.search(str(exc)):
                _reread(src, encoding)  # the file engine's reader names a malformed row as it would
            raise _task_error(exc, src, multiline) from exc
        return tally.value, sorted(r["part"] for r in rows if r["rows"]), partitions, "sorted"
    size = src.stat().st_size
    bounds = line_splits(src, size, _split_size(spark, size)) if ascii_compatible(encoding) else None
    if bounds is not None:
        scan = SplitScan(path, tuple(bounds), tuple(columns), encoding, block_bytes(), str(parts_dir))
        return (*_run_split(spark, src, scan, config, now, key_ref, timings), "python-split")
    # Bare-CR line ends (or an encoding Arrow cannot split): Spark's CSV scan, a window finds duplicates.
    frame = read_csv_strings(spark, path, columns, multiline=multiline, encoding=encoding)
    partitions = frame.rdd.getNumPartitions()

    def hashed(seed_ref: Any) -> Any:
        """(file, row, h1, h2) of every normalised row; each task stashes its rows in ``parts_dir``."""

        def hashes(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            return hash_partition(batches, config, columns, tally, seed_ref, str(parts_dir))

        return with_row_ids(frame).mapInArrow(hashes, HASH_DDL)

    try:
        drop_ref = _duplicate_rows(spark, hashed)
        done = _finish(spark, partitions, config, columns, now, key_ref, drop_ref, str(parts_dir))
    except Exception as exc:
        if not CONTROL_RE.search(str(exc)):
            _reread(src, encoding)
        raise _task_error(exc, src, multiline) from exc
    total: Tally = tally.value
    for _, part_tally in done:
        total = total.merge(part_tally)
    return total, sorted(part for part, t in done if t.written), partitions, "spark-scan"


def _run_split(
    spark: Any, src: Path, scan: SplitScan, config: CleaningConfig, now: datetime, key_ref: Any,
    timings: dict[str, float],
) -> tuple[Tally, list[int], int]:  # fmt: skip
    """The split plan on a local master, every step a Python task that Spark schedules, exchanging data
    through the staging folder: read a byte range, validate, normalise and hash it; per hash bucket, the
    later copies of each row (numpy sort); per range, drop those, mask, flag and write the parts."""
    import numpy as np

    sc = spark.sparkContext
    parts = scan.parts
    # The hash key: random per run, never logged or put in the conf; a broadcast like the masking key.
    seed_ref = sc.broadcast(secrets.randbits(128))
    try:
        tasks = sc.parallelize(range(parts), parts)  # task i: byte range i, then hash bucket i
        t0 = time.perf_counter()
        read = tasks.map(lambda part: scan_part(part, scan, config, seed_ref)).collect()
        t1 = time.perf_counter()
        later = tasks.map(lambda bucket: later_copies(bucket, scan)).collect()
        drop_ref = sc.broadcast(np.sort(np.concatenate(later)) if later else np.empty(0, np.int64))
        t2 = time.perf_counter()
        done = _finish(spark, parts, config, list(scan.columns), now, key_ref, drop_ref, scan.stash_dir)
        timings.update(read_s=t1 - t0, duplicates_s=t2 - t1, finish_s=time.perf_counter() - t2)
    except Exception as exc:
        if not CONTROL_RE.search(str(exc)):
            _reread(src, scan.encoding)  # the file engine's reader names a malformed row as it would
        raise _task_error(exc, src, False) from exc
    finally:
        seed_ref.unpersist()
    total = Tally()
    for _, part_tally in [*read, *done]:
        total = total.merge(part_tally)
    return total, sorted(part for part, t in done if t.written), parts


def _finish(
    spark: Any, partitions: int, config: CleaningConfig, columns: list[str], now: datetime, key_ref: Any,
    drop_ref: Any, parts_dir: str,
) -> list[tuple[int, Tally]]:  # fmt: skip
    """Python-only tasks, one per scan partition: no second scan, no sort (the parts are in file order)."""

    def finish(part: int) -> tuple[int, Tally]:
        return finish_part(part, config, columns, now, key_ref, drop_ref, parts_dir)

    done: list[tuple[int, Tally]] = (
        spark.sparkContext.parallelize(range(partitions), max(partitions, 1)).map(finish).collect()
    )
    drop_ref.unpersist()
    return done


def _duplicate_rows(spark: Any, hashed: Callable[[Any], Any]) -> Any:
    """Broadcast the sorted row ids of the rows to drop: every row but the first (in file order) of each
    group of equal keyed row hashes; ``hashed(seed_ref)`` is the plan giving each row's ids and hash."""
    import numpy as np
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # The hash key: random per run, never logged or put in the conf; a broadcast like the masking key.
    seed_ref = spark.sparkContext.broadcast(secrets.randbits(128))
    window = Window.partitionBy("h1", "h2").orderBy(FILE_COLUMN, ROW_COLUMN)
    ranked = hashed(seed_ref).withColumn(RANK_COLUMN, F.row_number().over(window))
    rows = ranked.where(F.col(RANK_COLUMN) > 1).select(ROW_COLUMN).collect()
    seed_ref.unpersist()
    return spark.sparkContext.broadcast(np.sort(np.fromiter((r[0] for r in rows), np.int64, len(rows))))


def _split_size(spark: Any, size: int) -> int:
    """Bytes per range of the python-split plan: a whole number of equal ranges per core (a session's
    own or one pipekit started), none over the session's ``spark.sql.files.maxPartitionBytes``, none
    under 1 MiB unless that limit is smaller (a small file is one range: a task has a fixed cost)."""
    text = spark.conf.get("spark.sql.files.maxPartitionBytes")
    limit = int(spark.sparkContext._jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes(text))
    even = _even_split(size, spark.sparkContext.defaultParallelism, limit)
    return max(min(limit, max(even, 1 << 20)), 1)


def _reread(src: Path, encoding: str) -> None:
    """A split task failed reading: read the file with the file engine's reader, which raises the
    InputError naming the bad line (never its contents); returns when that read finds nothing wrong."""
    from pipekit.io._read import iter_batches

    for _ in iter_batches(src, encoding=encoding):
        pass


def _join_parts(
    parts_dir: Path,
    parts: list[int],
    csv_tmp: Path,
    parquet_tmp: Path,
    schema: pa.Schema,
    config: CleaningConfig,
) -> int:
    """Write the header, then each part's CSV bytes in order; the parts' Arrow rows into one Parquet file.
    Returns the header cells the formula guard changed."""
    import shutil

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from pipekit.io._run import dictionary_columns

    names = schema.names
    header = [guard_formula_text(n) for n in names] if config.formula_guard else names
    with open(csv_tmp, "wb") as out:
        pacsv.write_csv(pa.Table.from_arrays([pa.array([], f.type) for f in schema], names=header), out)
        for part in parts:
            with open(parts_dir / f"{part:06d}.csv", "rb") as fh:
                shutil.copyfileobj(fh, out, 8 << 20)
    writer: pq.ParquetWriter | None = None
    try:
        for part in parts:
            with pa.memory_map(str(parts_dir / f"{part:06d}.arrow")) as source:
                table = pa.ipc.open_stream(source).read_all().cast(schema)
                if writer is None:  # the file engine's writer settings, so both write alike
                    writer = pq.ParquetWriter(str(parquet_tmp), schema, compression="snappy",
                                              use_dictionary=dictionary_columns(table.slice(0, 1 << 17)))  # fmt: skip
                writer.write_table(table, row_group_size=1 << 17)
            (parts_dir / f"{part:06d}.arrow").unlink()
        if writer is None:
            writer = pq.ParquetWriter(str(parquet_tmp), schema, compression="snappy")
    finally:
        if writer is not None:
            writer.close()
    return sum(a != b for a, b in zip(header, names, strict=True))


def _counts(tally: Tally, finalizing: dict[str, int]) -> dict[str, int]:
    """The report's counts in the file engine's order: the normalising ones, then masked.*, future, ..."""
    counts = {"dropped_null": 0, "dropped_duplicate": 0, "control_chars": 0}
    for name, n in tally.counts.items():
        if name not in finalizing:
            counts[name] = counts.get(name, 0) + n
    counts["dropped_duplicate"] = tally.normalized - tally.written
    return counts | {name: tally.counts.get(name, 0) for name in finalizing}


def _guard_summary(tally: Tally, columns: list[str], config: CleaningConfig, header: int) -> dict[str, Any]:
    """The report's ``csv_formula_guard`` section: on or off, values guarded per column (file order)."""
    order = {name: i for i, name in enumerate(columns)}
    cells = dict(sorted(tally.guarded.items(), key=lambda kv: order.get(kv[0], len(order))))
    return {"enabled": config.formula_guard, "cells": cells, "header_cells": header,
            "total": sum(cells.values()) + header}  # fmt: skip


def _numbered(report: ValidationReport, offsets: dict[int, int]) -> ValidationReport:
    """``report`` with each sample row id turned into the row's number in the file (1-based, as validate's)."""

    def number(row_id: int) -> int:
        return offsets.get(row_id >> ROW_BITS, 0) + (row_id & ROW_MASK) + 1

    problems = tuple(
        Problem(p.column, p.kind, p.count, tuple(sorted(number(r) for r in p.sample_rows)))
        for p in report.problems
    )
    return replace(report, problems=problems)


def _task_error(exc: BaseException, src: Path, multiline: bool) -> PipekitError:
    """A failed Spark job as the error the file engine would raise, never quoting row contents."""
    from pipekit.spark.etl import _first_line

    text = str(exc)
    control = CONTROL_RE.search(text)
    if control:
        row_id = int(control["row"])
        where = f"data row {row_id + 1:,}" if row_id >> ROW_BITS == 0 else "a data row"
        return InputError(
            f"{src}: {where}, column {control['column']!r} holds a control character "
            f"(U+{int(control['cp']):04X}); its value is not shown; nothing was written",
            hint="pass --control-chars strip to remove such characters (counted in the report), or fix the file",
        )
    if "MALFORMED" in text or "Malformed" in text:
        return InputError(
            f"{src} has a malformed CSV row (a different number of fields than the header, or an unclosed quote)",
            hint="fix the row or re-export the file as RFC 4180 CSV"
            + ("" if multiline else "; quoted fields with line breaks need multiline=True (--multiline)"),
        )
    if isinstance(exc, PipekitError):
        return exc
    return StorageError(f"the Spark job cleaning {src} failed: {_first_line(exc)}",
                        hint="see the Spark log above (PIPEKIT_SPARK_LOG_LEVEL=WARN shows more)")  # fmt: skip


# --- the Glue job's --clean full -------------------------------------------------------------------


def run_customers_clean(
    spark: Any,
    source: str,
    target: str,
    policy: MaskingPolicy | None = None,
    *,
    config: CleaningConfig | None = None,
    csv: Any | None = None,
    now: datetime | None = None,
    key: bytes | None = None,
    write_mode: str = "overwrite",
    temp_dir: str | None = None,
    files: Sequence[str] | None = None,
    partition: tuple[str, str] | None = None,
) -> Any:
    """The Glue job's ``--clean full``: read ``source`` (or only ``files`` of it, in that order), run the whole
    customer cleaning (``config``, its policy replaced by ``policy`` when given), write snappy Parquet to
    ``target`` as ``run_customers_etl`` does (staged overwrite or append, into ``partition``)."""
    from pipekit.io.engine import resolve_config
    from pipekit.spark.etl import CsvOptions, read_customers_csv, write_parquet_staged

    started = time.perf_counter()
    config = resolve_config(config, policy)
    now = utc_now(now)
    csv = csv or CsvOptions()
    part = f"{partition[0]}={partition[1]}" if partition else None
    paths = [source] if files is None else list(files)
    if not paths:  # the bookmark says nothing is new: a successful run that adds nothing
        return EtlStats(source=source, target=target, rows_in=0, rows_out=0, columns=[], masked={},
                        write_mode=write_mode, seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    frames = [read_customers_csv(spark, path, csv) for path in paths]
    columns = list(frames[0].columns)
    for path, frame in zip(paths, frames, strict=True):
        missing = [c for c in config.required if c not in frame.columns]
        if missing:
            raise ValidationError(
                f"{path}: missing required column(s): {', '.join(missing)} (header has: {', '.join(frame.columns)})",
                hint="--clean full needs the customer columns; --clean none only masks",
            )
        if list(frame.columns) != columns:
            raise InputError(
                f"{path}: its header differs from {paths[0]}'s", hint="give the files one header"
            )
    unknown = [k for k in config.dedup_keys or () if k not in columns]
    if unknown:
        raise ConfigError(f"{source}: duplicate key column(s) not in the file: {', '.join(unknown)}")
    numbered = with_row_ids(frames[0], 0)
    for i, frame in enumerate(frames[1:], 1):
        numbered = numbered.unionByName(with_row_ids(frame, i))
    cores = spark.sparkContext.defaultParallelism
    cleaned, tally = clean_frame_spark(numbered, config, now=now, key=key,
                                       spread=cores if csv.multiline and cores > 1 else None)  # fmt: skip

    def control_error(exc: BaseException) -> PipekitError | None:
        return _task_error(exc, Path(source), csv.multiline) if CONTROL_RE.search(str(exc)) else None

    write_parquet_staged(spark, cleaned, target, source=source, write_mode=write_mode, temp_dir=temp_dir,
                         partition=partition, task_error=control_error)  # fmt: skip
    done: Tally = tally.value
    return CleanEtlStats(
        source=source,
        target=target,
        rows_in=done.validation.rows if done.validation is not None else 0,
        rows_out=done.written,
        columns=[*[c for c in columns if c != config.flag_column], config.flag_column],
        masked={k[len("masked.") :]: v for k, v in done.counts.items() if k.startswith("masked.")},
        write_mode=write_mode,
        partition=part,
        seconds=round(time.perf_counter() - started, 3),
        clean="full",
        counts={"dropped_duplicate": done.normalized - done.written, **done.counts},
        problems={
            f"{p.column}.{p.kind}": p.count for p in (done.validation.problems if done.validation else ())
        },
    )


# --- helpers ----------------------------------------------------------------------


def _settings(
    config: CleaningConfig, now: datetime, spark: Any, multiline: bool, detected: bool, partitions: int,
    plan: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        "engine": "spark",
        "master": spark.sparkContext.master,
        "plan": plan,
        "scan_partitions": partitions,
        "shuffle_partitions": int(spark.conf.get("spark.sql.shuffle.partitions")),
        "multiline": multiline,
        "multiline_detected": detected,
        "now": now.isoformat(),
        "required": list(config.required),
        "dedup_keys": list(config.dedup_keys) if config.dedup_keys else None,
        "policy": config.policy.to_dict(),
        "bad_rows": "error",
        "formula_guard": config.formula_guard,
        "control_chars": config.control_chars,
    }


def _version() -> str:
    from pipekit import __version__

    return __version__


__all__ = [
    "ARROW_BATCH_ROWS",
    "FILE_COLUMN",
    "ROW_COLUMN",
    "CleanEtlStats",
    "InputScan",
    "Tally",
    "clean_file_spark",
    "clean_frame_spark",
    "deduplicated_plan",
    "read_csv_strings",
    "run_customers_clean",
    "scan_input",
    "with_row_ids",
]
