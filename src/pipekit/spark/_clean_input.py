"""Reading for ``pipekit.spark.clean``: one pass over the input (sha256, quoted line breaks), the CSV read
as the file engine reads it, and the local SparkSession a run creates."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipekit.errors import ConfigError

#: Rows per Arrow batch handed to the Python workers in sessions this module creates (the core's
#: kernels have a fixed cost per batch; Spark's default is 10,000).
ARROW_BATCH_ROWS = 65536
_SCAN_CHUNK = 8 << 20


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
