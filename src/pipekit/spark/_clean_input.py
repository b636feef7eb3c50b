"""Reading for ``pipekit.spark.clean``: one pass over the input (sha256, quoted line breaks), the CSV read
as the file engine reads it, and the local SparkSession a run creates."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipekit.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

#: Rows per Arrow batch handed to the Python workers in sessions this module creates (the core's
#: kernels have a fixed cost per batch; Spark's default is 10,000).
ARROW_BATCH_ROWS = 65536
_SCAN_CHUNK = 8 << 20
#: Starts the message of a split task that could not read its byte range (the driver re-reads the file).
READ_MARK = "PIPEKIT_READ_ERROR"


@dataclass(frozen=True)
class InputScan:
    """One pass over the input: its size, sha256 and whether a quoted field holds a line break."""

    bytes: int
    sha256: str
    multiline: bool


def scan_input(path: Path, *, chunk_bytes: int = _SCAN_CHUNK) -> InputScan:
    """Hash ``path`` and find out whether any line break (LF or CR) sits inside double quotes.

    Quote parity decides: RFC 4180 doubles a quote inside a quoted field, which leaves the parity alone,
    so a line break after an odd number of quotes is inside a field.
    """
    digest = hashlib.sha256()
    size = 0
    odd = False  # an odd number of quotes so far
    inside = False
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
            if inside:
                continue
            quotes = chunk.count(b'"')
            if not quotes:
                if odd and (b"\n" in chunk or b"\r" in chunk):
                    inside = True
                continue
            data = np.frombuffer(chunk, dtype=np.uint8)
            at = np.flatnonzero(data == 0x22)
            breaks = np.flatnonzero((data == 0x0A) | (data == 0x0D))
            if len(breaks):
                before = np.searchsorted(at, breaks) + (1 if odd else 0)
                inside = bool((before & 1).any())
            odd ^= bool(quotes & 1)
    return InputScan(size, digest.hexdigest(), inside)


def line_splits(path: Path, size: int, split_bytes: int) -> list[int] | None:
    """Byte offsets ``[data start, ..., size]`` cutting the rows after the header line into ranges of
    about ``split_bytes`` that each start at a line start, for a file with no line break inside quotes.

    None when the file's line breaks are bare CRs (a range could not be cut at an LF): read it whole.
    """
    with open(path, "rb") as fh:
        head = b""
        while b"\n" not in head and b"\r" not in head:
            chunk = fh.read(1 << 16)
            if not chunk:
                return [size, size]  # a header line and nothing else
            head += chunk
        first = min(i for i in (head.find(b"\r"), head.find(b"\n")) if i >= 0)
        if head[first] == 0x0D:
            if (head[first + 1 : first + 2] or fh.read(1)) != b"\n":
                return None
            first += 1
        bounds = [first + 1]
        parts = max(-(-(size - bounds[0]) // max(split_bytes, 1)), 1)
        for k in range(1, parts):
            target = bounds[0] + (size - bounds[0]) * k // parts
            fh.seek(max(target - 1, bounds[-1]))
            at = fh.tell()
            while chunk := fh.read(1 << 16):
                found = chunk.find(b"\n")
                if found >= 0:
                    at += found + 1
                    break
                at += len(chunk)
            if bounds[-1] < at < size:
                bounds.append(at)
    bounds.append(size)
    return bounds


def read_split(
    path: str, start: int, end: int, columns: Sequence[str], encoding: str, part: int, *, block_size: int
) -> Iterator[pa.Table]:
    """The rows of ``path[start:end]`` (whole lines, no header) as Arrow string tables of the file engine's
    batch size, read as the file engine reads them (RFC 4180, "" kept as "", every value a string), with
    the file index (0) and each row's id (``part`` above the low 33 bits, the row's index in the range
    below: Spark's ``monotonically_increasing_id`` layout). A malformed row (or bytes not in
    ``encoding``) raises a RuntimeError carrying :data:`READ_MARK` and the range, never the row's values."""
    import pyarrow as pa

    if end <= start:
        return
    try:
        yield from _read_range(path, start, end, columns, encoding, part, block_size)
    except (pa.ArrowInvalid, UnicodeError) as exc:
        # Arrow's message quotes the row; a task's error is logged by Spark: name only the range.
        raise RuntimeError(f"{READ_MARK} part={part} {type(exc).__name__} END") from None


def _read_range(
    path: str, start: int, end: int, columns: Sequence[str], encoding: str, part: int, block_size: int
) -> Iterator[pa.Table]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from pipekit.io._read import DEFAULT_BATCH_ROWS, batch_bytes_for, rebatch
    from pipekit.spark._clean_tasks import FILE_COLUMN, ROW_BITS, ROW_COLUMN

    with pa.memory_map(path) as source:
        data = source.read_at(end - start, start)
    reader = pacsv.open_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(
            column_names=list(columns), use_threads=False, block_size=block_size, encoding=encoding
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    first = 0
    for table in rebatch(reader, DEFAULT_BATCH_ROWS, batch_bytes_for(len(columns))):
        n = table.num_rows
        ids = np.arange(first, first + n, dtype=np.int64) | (part << ROW_BITS)
        yield table.append_column(FILE_COLUMN, pa.array(np.zeros(n, np.int32))).append_column(
            ROW_COLUMN, pa.array(ids)
        )
        first += n


def session(spark: Any | None, master: str | None) -> tuple[Any, bool]:
    """(session, whether this call created it): the given one, the active one, or a new local one."""
    if spark is not None:
        return spark, False
    from pipekit._extras import require

    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    from pipekit.spark.etl import local_spark

    cores = _cores(master or f"local[{os.cpu_count() or 1}]")
    try:
        session = local_spark(
            cores, app_name="pipekit-clean", memory=os.environ.get("PIPEKIT_SPARK_MEMORY", "2g")
        )
    except Exception as exc:  # no Java, or a JVM that would not start: the gateway's error is all there is
        from pipekit.spark.etl import _first_line

        raise ConfigError(
            f"Spark could not start ({_first_line(exc)})",
            hint="Spark needs Java 17 on the PATH (or JAVA_HOME); or use --engine file",
        ) from exc
    # Few, even partitions: AQE would fold a small shuffle into one partition (one core working).
    session.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    return session, True


@contextmanager
def quiet_task_logs(spark: Any) -> Iterator[None]:
    """Spark's log off while the cleaning runs (``PIPEKIT_SPARK_LOG_LEVEL`` overrides), then back to the
    level it had: a failed task's log line quotes the malformed record Spark's CSV reader met, and the
    error pipekit raises names the file and line instead, never the values."""
    jvm = spark.sparkContext._jvm
    before = str(jvm.org.apache.logging.log4j.LogManager.getRootLogger().getLevel().toString())
    spark.sparkContext.setLogLevel(os.environ.get("PIPEKIT_SPARK_LOG_LEVEL", "OFF"))
    try:
        yield
    finally:
        spark.sparkContext.setLogLevel(before)


def _cores(master: str) -> int:
    """N of ``local[N]`` (``local`` = 1, ``local[*]`` = CPU count); ConfigError for anything else."""
    match = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master.strip())
    if not match:
        raise ConfigError(
            f"--master {master!r} is not a local master", hint="use local, local[N] or local[*]"
        )
    value = match.group(1)
    if value is None:
        return 1
    cores = (os.cpu_count() or 1) if value == "*" else int(value)
    if cores < 1:
        raise ConfigError(f"--master {master!r}: N must be at least 1")
    return cores


def read_csv_strings(
    spark: Any,
    source: str | Sequence[str],
    columns: Sequence[str],
    *,
    multiline: bool,
    encoding: str = "utf-8",
) -> Any:
    """Read CSV with a header as the file engine does: these column names, every value a string, RFC 4180
    quoting (``""`` is a quote), a malformed row fails the read."""
    reader = spark.read.schema(string_schema(columns)).options(
        header=True, sep=",", quote='"', escape='"', multiLine=multiline, encoding=encoding, mode="FAILFAST",
        enforceSchema=True,
    )  # fmt: skip
    return reader.csv(source if isinstance(source, str) else list(source))


def string_schema(columns: Sequence[str]) -> Any:
    """A Spark schema of these columns, every one a nullable string."""
    from pyspark.sql.types import StringType, StructField, StructType

    return StructType([StructField(c, StringType(), True) for c in columns])
