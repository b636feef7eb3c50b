"""The customers ETL on Spark: read CSV (every value a string), apply the masking policy, write snappy Parquet."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipekit._extras import require
from pipekit.core import column_key
from pipekit.errors import InputError, PipekitError, StorageError, ValidationError

#: Columns the job cannot run without (matched case- and separator-insensitively, like policy rules).
REQUIRED_COLUMNS: tuple[str, ...] = ("FirstName",)


@dataclass(frozen=True)
class CsvOptions:
    """How the source CSV is read; the defaults match RFC 4180 exports and Glue Studio's CSV source."""

    #: Quoted fields may hold line breaks. Off by default, as in Glue: it stops Spark splitting big files.
    multiline: bool = False
    separator: str = ","
    encoding: str = "UTF-8"


@dataclass
class EtlStats:
    """What one run did: rows in/out, values masked per column, PII detection, timing."""

    source: str
    target: str
    rows_in: int
    rows_out: int
    columns: list[str]
    masked: dict[str, int]
    pii_masked: list[str] = field(default_factory=list)
    pii_detected: dict[str, dict[str, int]] = field(default_factory=dict)
    pii_rows_scanned: int = 0
    write_mode: str = "overwrite"
    seconds: float = 0.0
    #: ``--job-bookmark-option`` of the run, and what the bookmark let it read.
    bookmark: str = "job-bookmark-disable"
    files_read: list[str] = field(default_factory=list)
    files_skipped: int | None = 0
    #: The ``name=value`` partition the rows were written to (None: unpartitioned).
    partition: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def local_spark(cores: int = 1, *, app_name: str = "pipekit", memory: str = "2g") -> Any:
    """A quiet local SparkSession (UI off, shuffle partitions = cores, UTC): for tests, benchmarks, the twin."""
    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    # Keyed masks run in Python workers, which must import pipekit: this interpreter, not the PATH's python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark's own log4j2 defaults print a banner on stderr (loopback address, "Setting default log level",
    # native-hadoop) before setLogLevel can run: the JVM starts with log4j2.properties instead, whose level
    # is PIPEKIT_SPARK_LOG_LEVEL too. It goes through the environment of the JVM pyspark launches, never
    # the conf: a spark.driver.extraJavaOptions of the user's (spark-defaults.conf, PYSPARK_SUBMIT_ARGS)
    # stays whole, and a -Dlog4j2.configurationFile in it, or the user's own LOG4J_CONFIGURATION_FILE, wins.
    # A log4j2.properties of the user's Spark configuration folder wins too.
    log_config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
    conf_dirs = [os.environ.get("SPARK_CONF_DIR"), os.path.join(os.environ.get("SPARK_HOME", ""), "conf")]
    users = any(d and os.path.isfile(os.path.join(d, "log4j2.properties")) for d in conf_dirs)
    set_here = "LOG4J_CONFIGURATION_FILE" not in os.environ and os.path.isfile(log_config) and not users
    if set_here:
        os.environ["LOG4J_CONFIGURATION_FILE"] = log_config
    try:
        spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(cores))
            .config("spark.default.parallelism", str(cores))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.memory", memory)
            .getOrCreate()
        )
    finally:
        if set_here:
            os.environ.pop("LOG4J_CONFIGURATION_FILE", None)
    spark.sparkContext.setLogLevel(os.environ.get("PIPEKIT_SPARK_LOG_LEVEL", "ERROR"))
    return spark


def read_customers_csv(spark: Any, source: str | Sequence[str], options: CsvOptions | None = None) -> Any:
    """Read the CSV at ``source`` (file, prefix or list of files) with its header; every column stays a string."""
    options = options or CsvOptions()
    reader = spark.read.options(
        header=True,
        inferSchema=False,  # "007" stays "007": types are decided downstream, never guessed here
        sep=options.separator,
        quote='"',
        escape='"',  # RFC 4180: a quote inside a quoted field is doubled
        multiLine=options.multiline,
        encoding=options.encoding,
        mode="FAILFAST",  # a malformed row stops the job instead of silently becoming nulls
    )
    try:
        return reader.csv(source if isinstance(source, str) else list(source))
    except Exception as exc:
        raise _input_error(exc, source if isinstance(source, str) else ", ".join(source)) from exc


def check_columns(columns: Sequence[str], source: str, required: Sequence[str] = REQUIRED_COLUMNS) -> None:
    """Raise ValidationError naming each required column missing from ``columns`` and the file."""
    if not columns:
        raise InputError(f"{source} is empty: no header row and no data.", hint="upload a CSV with a header row")
    have = {column_key(c) for c in columns}
    missing = [c for c in required if column_key(c) not in have]
    if missing:
        raise ValidationError(
            f"column {', '.join(repr(m) for m in missing)} not found in {source} "
            f"(header has: {', '.join(columns)})",
            hint="the job masks the first name: make sure the CSV has a FirstName column and a header row",
        )


def run_customers_etl(
    spark: Any,
    source: str,
    target: str,
    policy: Any | None = None,
    *,
    key: bytes | None = None,
    detect_pii: bool = True,
    pii_sample: int = 1000,
    required: Sequence[str] = REQUIRED_COLUMNS,
    csv: CsvOptions | None = None,
    write_mode: str = "overwrite",
    temp_dir: str | None = None,
    files: Sequence[str] | None = None,
    partition: tuple[str, str] | None = None,
) -> EtlStats:
    """Read ``source`` CSV (only ``files`` of it when given, e.g. what the job bookmark let through), mask it
    with ``policy`` (default GLUE_CUSTOMER_POLICY), write snappy Parquet to ``target`` (into the
    ``partition`` (name, value) directory when given). An empty ``files`` writes nothing."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from pipekit.spark.masking import count_exprs, masking_exprs

    if policy is None:
        from pipekit.core import GLUE_CUSTOMER_POLICY

        policy = GLUE_CUSTOMER_POLICY
    started = time.perf_counter()
    part = f"{partition[0]}={partition[1]}" if partition else None
    if files is not None and not files:  # the bookmark says nothing is new: a successful run that adds nothing
        return EtlStats(source=source, target=target, rows_in=0, rows_out=0, columns=[], masked={},
                        write_mode=write_mode, seconds=round(time.perf_counter() - started, 3))
    frame = read_customers_csv(spark, source if files is None else files, csv)
    check_columns(frame.columns, source, required)
    try:
        empty = not frame.head(1)
    except Exception as exc:
        raise _input_error(exc, source) from exc
    if empty:
        raise InputError(f"{source} has a header but no data rows.", hint="upload a CSV with at least one row")

    try:  # PII detection reads a sample, which may be where a malformed row first shows up
        exprs, rules, detected, pii = masking_exprs(frame, policy, key=key, detect_pii=detect_pii,
                                                    pii_sample=pii_sample)  # fmt: skip
    except PipekitError:
        raise
    except Exception as exc:
        raise _input_error(exc, source) from exc
    # Counts come from the write itself (Observation), so the data is read and masked exactly once.
    observation = Observation("pipekit_masking")
    observed = frame.select(*exprs).observe(observation, F.count(F.lit(1)).alias("__rows__"), *count_exprs(rules))
    write_parquet_staged(spark, observed, target, source=source, write_mode=write_mode, temp_dir=temp_dir,
                         partition=partition)  # fmt: skip
    metrics: Mapping[str, Any] = observation.get
    rows = int(metrics.get("__rows__", 0))
    return EtlStats(
        source=source,
        target=target,
        rows_in=rows,  # the policy never adds or drops rows
        rows_out=rows,
        columns=list(frame.columns),
        masked={c: int(metrics[c]) for c in frame.columns if c in rules and c in metrics},
        pii_masked=list(detected),
        pii_detected={c: dict(e) for c, e in (pii.findings.items() if pii else ())},
        pii_rows_scanned=pii.rows_scanned if pii else 0,
        write_mode=write_mode,
        partition=part,
        seconds=round(time.perf_counter() - started, 3),
    )


def write_parquet_staged(
    spark: Any,
    frame: Any,
    target: str,
    *,
    source: str,
    write_mode: str,
    temp_dir: str | None,
    partition: tuple[str, str] | None,
    task_error: Callable[[BaseException], PipekitError | None] | None = None,
) -> None:
    """Write ``frame`` as snappy Parquet to ``target`` (into the ``partition`` (name, value) directory when
    given). Overwrite goes through a staging directory that replaces the target only once every row is
    written: a bad row halfway through ``source`` leaves the previous output in place. A failure becomes
    ``task_error(exc)`` when that names one, else InputError (a read failure) or StorageError."""
    from pyspark.sql import functions as F

    out = frame.withColumn(partition[0], F.lit(partition[1])) if partition else frame
    staging = _staging_path(target, temp_dir) if write_mode == "overwrite" else target
    try:
        writer = out.write.mode(write_mode).option("compression", "snappy")
        (writer.partitionBy(partition[0]) if partition else writer).parquet(staging)
    except Exception as exc:
        if staging != target:
            _delete(spark, staging)
        mapped = task_error(exc) if task_error is not None else None
        if mapped is not None:
            raise mapped from exc
        if _is_read_failure(exc):
            raise _input_error(exc, source) from exc
        raise StorageError(f"writing Parquet to {target} failed: {_first_line(exc)}",
                           hint="check the target path and its permissions") from exc  # fmt: skip
    if staging != target:
        _replace(spark, staging, target)


def _hadoop_path(spark: Any, path: str) -> tuple[Any, Any]:
    """(FileSystem, Path) for ``path`` through Spark's Hadoop configuration (local, s3://, hdfs://)."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def _staging_path(target: str, temp_dir: str | None) -> str:
    """A fresh directory for this run's output: under ``temp_dir`` (Glue's --TempDir) or beside the target."""
    run = uuid.uuid4().hex[:12]
    if temp_dir:
        return f"{temp_dir.rstrip('/')}/pipekit-staging/{run}"
    parent, _, name = target.rstrip("/").rpartition("/")
    return f"{parent}/.{name}.pipekit-staging-{run}" if parent else f".{name}.pipekit-staging-{run}"


def _delete(spark: Any, path: str) -> None:
    """Delete ``path`` recursively if it exists."""
    fs, hpath = _hadoop_path(spark, path)
    if fs.exists(hpath):
        fs.delete(hpath, True)


def _replace(spark: Any, staging: str, target: str) -> None:
    """Move the finished ``staging`` directory to ``target``, replacing what was there."""
    fs, src = _hadoop_path(spark, staging)
    _, dst = _hadoop_path(spark, target)
    if fs.exists(dst):
        fs.delete(dst, True)
    parent = dst.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    if not fs.rename(src, dst):
        raise StorageError(f"could not move the job output from {staging} to {target}",
                           hint=f"the complete output is still at {staging}")  # fmt: skip


def _first_line(exc: BaseException) -> str:
    """The first meaningful line of a (possibly Java) exception message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_read_failure(exc: BaseException) -> bool:
    """True when a Spark failure came from parsing the source (malformed CSV, unreadable file)."""
    text = str(exc)
    return "MALFORMED" in text or "Encountered error while reading file" in text


def _input_error(exc: BaseException, source: str) -> InputError:
    """Map a Spark read failure to InputError naming the file, never echoing row contents (they may hold PII)."""
    text = str(exc)
    if "PATH_NOT_FOUND" in text or "Path does not exist" in text:
        return InputError(f"{source} does not exist.", hint="check --source_path")
    if "MALFORMED" in text:
        return InputError(
            f"{source} has a malformed CSV row (more fields than the header, or an unclosed quote).",
            hint="fix the row or re-export the file as RFC 4180 CSV; quoted fields with line breaks need "
            "--multiline true",
        )
    return InputError(f"cannot read {source} as CSV: {_first_line(exc)}")
