"""The Glue job's runtime: parse Glue-style job arguments, get a Spark session (Glue's or a plain one), run.

``adapters/glue/customers_etl.py`` only calls :func:`main`. On AWS Glue 5.0 (Spark 3.5, Python 3.11) the
``awsglue`` libraries are importable and the job runs under ``GlueContext``/``Job`` (so bookmarks and run
bookkeeping work); anywhere else (tests, the offline twin, a laptop) it runs on a plain SparkSession.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipekit.errors import ConfigError, PipekitError

#: Arguments the job cannot run without (Glue passes ``--JOB_NAME`` itself).
REQUIRED_ARGS: tuple[str, ...] = ("JOB_NAME", "source_path", "target_path")
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
    bookmarks: bool = False
    raw: tuple[tuple[str, str], ...] = ()

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
        bookmarks=options.get("job-bookmark-option", "job-bookmark-disable") == "job-bookmark-enable",
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


def main(argv: Sequence[str] | None = None, *, spark: Any | None = None) -> int:
    """Run the customers ETL job; print its stats as JSON; return the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_job_args(argv)
        policy = load_policy(args.policy)
        with _runtime(args, spark) as session:
            from pipekit.spark.etl import CsvOptions, run_customers_etl

            stats = run_customers_etl(
                session,
                args.source_path,
                args.target_path,
                policy,
                detect_pii=args.detect_pii,
                pii_sample=args.pii_sample,
                csv=CsvOptions(multiline=args.multiline),
                temp_dir=args.temp_dir,
            )
    except PipekitError as exc:
        # One line, "TypeName: message -> hint", last on stderr: the shape Glue (and the twin) show as
        # the run's ErrorMessage, and what a person reads first.
        hint = f" -> {exc.hint}" if exc.hint else ""
        sys.stderr.write(f"{type(exc).__name__}: {' '.join(exc.message.split())}{hint}\n")
        sys.stderr.flush()
        if spark is None and _on_glue():
            raise  # on Glue an uncaught exception is what marks the run FAILED with this message
        return exc.exit_code or 1
    sys.stdout.write(json.dumps({"job": args.job_name, **stats.to_dict()}) + "\n")
    sys.stdout.flush()
    return 0


def _on_glue() -> bool:
    """True when the AWS Glue libraries are importable (only on Glue and its Docker images)."""
    import importlib.util

    return importlib.util.find_spec("awsglue") is not None


@contextmanager
def _runtime(args: GlueJobArgs, spark: Any | None) -> Iterator[Any]:
    """Yield a SparkSession: the given one, Glue's (``awsglue`` present), or a plain local one."""
    if spark is not None:
        yield spark
        return
    if _on_glue():
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        job = Job(glue_context)
        job.init(args.job_name, args.as_dict)
        yield glue_context.spark_session
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
    try:
        yield session
    finally:
        session.stop()


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
