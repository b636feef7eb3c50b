"""The Glue job's runtime: parse Glue-style job arguments, get a Spark session (Glue's or a plain one), run.

``adapters/glue/customers_etl.py`` only calls :func:`main`. On AWS Glue 5.0 (Spark 3.5, Python 3.11) the
``awsglue`` libraries are importable and the job runs under ``GlueContext``/``Job`` (so bookmarks and run
bookkeeping work); anywhere else (tests, the offline twin, a laptop) it runs on a plain SparkSession.

Job bookmarks (``--job-bookmark-option job-bookmark-enable|pause|disable``): the source read asks a
:class:`Bookmarks` which files to read. On Glue that is awsglue's bookmark service (a DynamicFrame source
with ``transformation_ctx``, ``job.init``/``job.commit``); elsewhere it is :class:`LocalBookmarks`, a JSON
state handed in by whoever runs the script (the twin stages its GetJobBookmark state into
``--pipekit_bookmark_dir``) and a ``commit.json`` written back only when the run succeeded.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from pipekit.errors import ConfigError, PipekitError

#: Arguments the job cannot run without (Glue passes ``--JOB_NAME`` itself).
REQUIRED_ARGS: tuple[str, ...] = ("JOB_NAME", "source_path", "target_path")
#: The source's ``transformation_ctx``: the key of its state in the job bookmark. Renaming it forgets the state.
SOURCE_CTX = "customers_source"
BOOKMARK_OPTIONS: tuple[str, ...] = ("job-bookmark-enable", "job-bookmark-disable", "job-bookmark-pause")
#: ``--clean``: "none" masks per --policy (the job as it always was); "full" runs the whole customer cleaning.
CLEAN_MODES: tuple[str, ...] = ("none", "full")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class GlueJobArgs:
    """The job's arguments, resolved once at the edge."""

    job_name: str
    source_path: str
    target_path: str
    policy: str | None = None
    temp_dir: str | None = None
    detect_pii: bool = True
    pii_sample: int = 1000
    multiline: bool = False
    bookmark_option: str = "job-bookmark-disable"
    #: Where a non-Glue runner (the twin) put the bookmark state; ``commit.json`` is written there.
    bookmark_dir: str | None = None
    run_id: str | None = None
    #: The ``ingest_date=`` partition this run's rows land in (default: today, UTC).
    ingest_date: str | None = None
    #: "none" (mask only) or "full" (``pipekit clean``'s whole cleaning, on Spark, before writing).
    clean: str = "none"
    raw: tuple[tuple[str, str], ...] = ()

    @property
    def bookmarks(self) -> bool:
        """True when the run reads from and advances the job bookmark."""
        return self.bookmark_option == "job-bookmark-enable"

    @property
    def incremental(self) -> bool:
        """True when the run reads only files the bookmark has not seen (enable or pause) and appends."""
        return self.bookmark_option != "job-bookmark-disable"

    @property
    def as_dict(self) -> dict[str, str]:
        """Every ``--key value`` pair as given (what ``Job.init`` expects)."""
        return dict(self.raw)


def resolve_options(argv: Sequence[str]) -> dict[str, str]:
    """Parse ``--key value`` / ``--key=value`` pairs the way Glue passes job arguments (last one wins)."""
    options: dict[str, str] = {}
    i = 0
    args = list(argv)
    while i < len(args):
        token = args[i]
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            if not eq:
                # A flag followed by another flag (or nothing) is a switch: Glue never sends those,
                # but a person running the script by hand might.
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    value = args[i + 1]
                    i += 1
                else:
                    value = "true"
            options[name] = value
        i += 1
    return options


def parse_job_args(argv: Sequence[str]) -> GlueJobArgs:
    """Turn Glue's argv into :class:`GlueJobArgs`; a missing or bad argument raises ConfigError naming it."""
    options = resolve_options(argv)
    missing = [f"--{name}" for name in REQUIRED_ARGS if not options.get(name)]
    if missing:
        raise ConfigError(
            f"Glue job argument(s) missing: {', '.join(missing)}",
            hint="run as: customers_etl.py --JOB_NAME NAME --source_path PATH --target_path PATH [--policy FILE]",
        )
    return GlueJobArgs(
        job_name=options["JOB_NAME"],
        source_path=options["source_path"],
        target_path=options["target_path"],
        policy=options.get("policy") or None,
        temp_dir=options.get("TempDir") or None,
        detect_pii=_flag(options, "detect_pii", True),
        pii_sample=_int(options, "pii_sample", 1000),
        multiline=_flag(options, "multiline", False),
        bookmark_option=_bookmark_option(options),
        bookmark_dir=options.get("pipekit_bookmark_dir") or None,
        run_id=options.get("JOB_RUN_ID") or None,
        ingest_date=_date(options, "ingest_date"),
        clean=_clean_mode(options),
        raw=tuple(options.items()),
    )


def load_policy(location: str | None, session: Any | None = None) -> Any:
    """The masking policy from a local YAML/JSON file or ``s3://`` object; GLUE_CUSTOMER_POLICY when None."""
    from pipekit.core import GLUE_CUSTOMER_POLICY, MaskingPolicy

    if not location:
        return GLUE_CUSTOMER_POLICY
    if not location.startswith("s3://"):
        return MaskingPolicy.from_file(location)
    import yaml

    from pipekit.aws._client import client

    bucket, _, key = location[len("s3://") :].partition("/")
    try:
        body = client("s3", session).get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise ConfigError(f"cannot read the masking policy {location}: {exc}",
                          hint="check --policy and that the job role may read it") from exc  # fmt: skip
    try:
        data = yaml.safe_load(body.decode("utf-8"))  # YAML is a superset of JSON: one parser for both
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"masking policy {location} is not valid YAML or JSON: {exc}") from exc
    return MaskingPolicy.from_dict(data)


@dataclass(frozen=True)
class SourceFiles:
    """What the bookmark lets this run read: the files (paths Spark can open) and their keys."""

    files: list[str]
    #: Keys (paths relative to the source) of ``files``, for the run's report.
    keys: list[str]
    #: Files under the source the bookmark says were processed already (None when the runtime does not say).
    skipped: int | None = 0


class Bookmarks(Protocol):
    """The job bookmark as the script sees it: which source files are new, and the state to commit."""

    option: str

    def select(self, spark: Any, source: str, transformation_ctx: str, csv: Any) -> SourceFiles:
        """The files under ``source`` this run reads (all of them unless the option is enable or pause)."""
        ...

    def commit(self) -> None:
        """Persist what this run read (enable only); called once, after the output is written."""
        ...


@dataclass
class LocalBookmarks:
    """Bookmarks off Glue: the state (GetJobBookmark's ``JobBookmark``) is ``state.json`` in ``store``; a
    successful run writes the advanced state to ``commit.json`` there. S3 semantics, by content: a file
    is new when its key is unknown or its ETag (MD5 of a single-part object) changed."""

    option: str
    store: str | None = None
    _pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The bookmark state handed in (``{}`` when there is none)."""
        if not self.store:
            return {}
        path = Path(self.store) / "state.json"
        if not path.is_file() or not path.read_text().strip():
            return {}
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"job bookmark state {path} is not JSON: {exc}",
                              hint="reset the bookmark (aws glue reset-job-bookmark)") from exc  # fmt: skip
        return data if isinstance(data, dict) else {}

    def select(self, spark: Any, source: str, transformation_ctx: str, csv: Any) -> SourceFiles:
        """Every visible file under ``source``; with enable/pause only those the state has not seen."""
        listed = _list_local(source)
        if not listed and not Path(source.removeprefix("file://")).exists():
            return SourceFiles([source], [source], 0)  # the CSV reader reports the missing path, as it always has
        if self.option == "job-bookmark-disable":
            return SourceFiles([str(p) for p, _ in listed], [k for _, k in listed], 0)
        seen = self.state().get("states", {}).get(transformation_ctx, {}).get("files", {})
        new: list[tuple[Path, str, dict[str, Any]]] = []
        for path, key in listed:
            entry = {"etag": _md5(path), "size": path.stat().st_size}
            if seen.get(key, {}).get("etag") != entry["etag"]:
                new.append((path, key, entry))
        # Keys are relative to the source, so the state survives the source being staged somewhere else.
        self._pending[transformation_ctx] = {"files": {**seen, **{k: e for _, k, e in new}}}
        return SourceFiles([str(p) for p, _, _ in new], [k for _, k, _ in new], len(listed) - len(new))

    def commit(self) -> None:
        """Write ``commit.json`` (enable only: pause reads from the bookmark without advancing it)."""
        if self.option != "job-bookmark-enable" or not self.store or not self._pending:
            return
        state = self.state()
        states = {**state.get("states", {}), **self._pending}
        out = Path(self.store) / "commit.json"
        out.write_text(json.dumps({"version": 1, "states": states}, sort_keys=True))


@dataclass
class GlueBookmarks:
    """Bookmarks on AWS Glue: awsglue's own service. The source is a DynamicFrame with ``transformation_ctx``,
    so Glue filters the S3 listing by its bookmark; ``job.commit()`` (in :func:`_runtime`) advances it."""

    option: str
    glue_context: Any

    def select(self, spark: Any, source: str, transformation_ctx: str, csv: Any) -> SourceFiles:
        """The files Glue's bookmark lets through, by name (the rows are read again by the CSV reader
        the job always uses, so "007" stays a string and FAILFAST still applies: one extra pass on Glue)."""
        from pyspark.sql import functions as F

        frame = self.glue_context.create_dynamic_frame.from_options(
            connection_type="s3",
            connection_options={"paths": [source], "recurse": True},
            format="csv",
            format_options={"withHeader": True, "separator": csv.separator, "quoteChar": '"',
                            "escaper": '"', "multiLine": csv.multiline},
            transformation_ctx=transformation_ctx,
        ).toDF()
        files = sorted(r[0] for r in frame.select(F.input_file_name()).distinct().collect() if r[0])
        base = source.rstrip("/") + "/"
        return SourceFiles(files, [f[len(base):] if f.startswith(base) else f for f in files], None)

    def commit(self) -> None:
        """Nothing here: ``job.commit()`` is Glue's commit."""


def main(argv: Sequence[str] | None = None, *, spark: Any | None = None) -> int:
    """Run the customers ETL job; print its stats as JSON; return the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_job_args(argv)
        # --clean full without --policy masks as `pipekit clean` does (CleaningConfig's policy).
        policy = load_policy(args.policy) if args.policy or args.clean == "none" else None
        with _runtime(args, spark) as (session, bookmarks):
            from pipekit.spark.etl import CsvOptions, run_customers_etl

            csv = CsvOptions(multiline=args.multiline)
            selection = bookmarks.select(session, args.source_path, SOURCE_CTX, csv)
            # Incremental runs add a partition's worth of files; a full read replaces the table.
            write_mode = "append" if args.incremental else "overwrite"
            partition = ("ingest_date", args.ingest_date or datetime.now(UTC).date().isoformat())
            if args.clean == "full":
                from pipekit.spark.clean import run_customers_clean

                stats = run_customers_clean(
                    session, args.source_path, args.target_path, policy, csv=csv, temp_dir=args.temp_dir,
                    files=selection.files, write_mode=write_mode, partition=partition,
                )  # fmt: skip
            else:
                stats = run_customers_etl(
                    session,
                    args.source_path,
                    args.target_path,
                    policy,
                    detect_pii=args.detect_pii,
                    pii_sample=args.pii_sample,
                    csv=csv,
                    temp_dir=args.temp_dir,
                    files=selection.files,
                    write_mode=write_mode,
                    partition=partition,
                )
            stats.bookmark = args.bookmark_option
            stats.files_read = selection.keys
            stats.files_skipped = selection.skipped
    except PipekitError as exc:
        # One line, "TypeName: message -> hint", last on stderr: the shape Glue (and the twin) show as
        # the run's ErrorMessage, and what a person reads first.
        hint = f" -> {exc.hint}" if exc.hint else ""
        sys.stderr.write(f"{type(exc).__name__}: {' '.join(exc.message.split())}{hint}\n")
        sys.stderr.flush()
        if spark is None and _on_glue():
            raise  # on Glue an uncaught exception is what marks the run FAILED with this message
        return exc.exit_code or 1
    sys.stdout.write(json.dumps({"job": args.job_name, "run_id": args.run_id, **stats.to_dict()}) + "\n")
    sys.stdout.flush()
    return 0


def _on_glue() -> bool:
    """True when the AWS Glue libraries are importable (only on Glue and its Docker images)."""
    import importlib.util

    return importlib.util.find_spec("awsglue") is not None


@contextmanager
def _runtime(args: GlueJobArgs, spark: Any | None) -> Iterator[tuple[Any, Bookmarks]]:
    """Yield (SparkSession, Bookmarks): the given session, Glue's (``awsglue`` present), or a local one.
    The bookmark is committed only when the body finished without an exception."""
    if spark is not None:
        local = LocalBookmarks(args.bookmark_option, args.bookmark_dir)
        yield spark, local
        local.commit()
        return
    if _on_glue():
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        job = Job(glue_context)
        job.init(args.job_name, args.as_dict)
        yield glue_context.spark_session, GlueBookmarks(args.bookmark_option, glue_context)
        # Only a successful run commits, so a failed run is retried from the same bookmark state.
        job.commit()
        return
    from pipekit._extras import require

    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(args.job_name)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Started as `python customers_etl.py`, not by spark-submit: nobody set a master, so run locally,
        # with Python workers (keyed masks) on this interpreter, which can import pipekit.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(os.environ.get("PIPEKIT_SPARK_MASTER", "local[*]"))
        builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("PIPEKIT_SPARK_LOG_LEVEL", "ERROR"))
    bookmarks = LocalBookmarks(args.bookmark_option, args.bookmark_dir)
    try:
        yield session, bookmarks
        bookmarks.commit()
    finally:
        session.stop()


def _list_local(source: str) -> list[tuple[Path, str]]:
    """``[(path, key)]`` of the visible files under ``source`` (a file or a directory), sorted by key.
    Hidden files (``.x``, ``_x``) are skipped, as Spark's reader skips them."""
    root = Path(source.removeprefix("file://"))
    if root.is_file():
        return [(root, root.name)]
    if not root.is_dir():
        return []

    def visible(p: Path) -> bool:
        return not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)

    files = [p for p in root.rglob("*") if p.is_file() and visible(p)]
    return sorted(((p, p.relative_to(root).as_posix()) for p in files), key=lambda t: t[1])


def _md5(path: Path) -> str:
    """MD5 hex of a file: what S3 reports as the ETag of a single-part upload."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _bookmark_option(options: dict[str, str]) -> str:
    """``--job-bookmark-option``, checked against Glue's three values."""
    value = options.get("job-bookmark-option") or "job-bookmark-disable"
    if value not in BOOKMARK_OPTIONS:
        raise ConfigError(f"--job-bookmark-option must be one of {', '.join(BOOKMARK_OPTIONS)}, got {value!r}")
    return value


def _clean_mode(options: dict[str, str]) -> str:
    """``--clean``, checked against CLEAN_MODES."""
    value = options.get("clean") or "none"
    if value not in CLEAN_MODES:
        raise ConfigError(
            f"--clean must be one of {', '.join(CLEAN_MODES)}, got {value!r}",
            hint="--clean full runs pipekit's whole customer cleaning; --clean none (the default) only masks",
        )
    return value


def _date(options: dict[str, str], name: str) -> str | None:
    """An optional YYYY-MM-DD job argument."""
    value = options.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise ConfigError(f"--{name} must be a date (YYYY-MM-DD), got {value!r}") from exc


def _flag(options: dict[str, str], name: str, default: bool) -> bool:
    """A true/false job argument."""
    value = options.get(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"--{name} must be true or false, got {value!r}")


def _int(options: dict[str, str], name: str, default: int) -> int:
    """A non-negative integer job argument."""
    value = options.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"--{name} must be a non-negative integer, got {value!r}")
    return number
