"""Twin operations for Glue that moto lacks or only pretends: classifiers, a real crawl, real job runs.

* ``StartCrawler`` crawls for real: it reads the objects under each S3 target, infers the schema with
  pyarrow and creates or updates the table as a Glue crawler would (CSV: OpenCSVSerde when fields are
  quoted, else LazySimpleSerDe, ``skip.header.line.count``, ``classification``; Parquet:
  ParquetHiveSerDe). ``GetCrawler`` adds the last crawl's ``ErrorMessage``; ``GetCrawlerMetrics`` reports
  tables created/updated.
* ``StartJobRun`` runs the job's real script (``Command.ScriptLocation``) with ``python`` on local Spark in a
  subprocess, with DefaultArguments + Arguments. Spark's S3 connector jars cannot be fetched offline, so
  every ``s3://`` argument is staged through a local directory: objects are downloaded before the run and
  what the script wrote is uploaded back afterwards. ``GetJobRun``/``GetJobRuns`` report
  RUNNING/SUCCEEDED/FAILED with the script's error as ``ErrorMessage``. ``BatchStopJobRun`` (in
  ``glue_jobs_twin``) stops a run through the ``glue_run_stoppers`` hook registered here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipekit.local.server import TwinContext, TwinFault, operation

_MODULE = "glue_twin"
_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
_LAZY_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
_PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
_TEXT_IN = "org.apache.hadoop.mapred.TextInputFormat"
_TEXT_OUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
_PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
_PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def _state(ctx: TwinContext) -> dict[str, Any]:
    return ctx.shared.setdefault(
        _MODULE, {"classifiers": {}, "metrics": {}, "crawl_errors": {}, "runs": {}, "lock": threading.RLock()}
    )


def _backend(ctx: TwinContext) -> Any:
    from moto.glue.models import glue_backends

    return glue_backends[ctx.account][ctx.region]


def _epoch(value: Any) -> Any:
    """JSON-protocol timestamps: datetimes become epoch seconds, recursively."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _epoch(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epoch(v) for v in value]
    return value


def _split_s3(uri: str) -> tuple[str, str]:
    m = re.match(r"^s3a?://([^/]+)/?(.*)$", uri)
    if not m:
        raise TwinFault("InvalidInputException", f"not an s3:// path: {uri}")
    return m.group(1), m.group(2)


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(page.get("Contents", []))
    return out


# ---------------------------------------------------------------- classifiers (moto has none)


@operation("AWSGlue.CreateClassifier")
def create_classifier(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Store a CSV/JSON/XML/Grok classifier."""
    kinds = [k for k in ("CsvClassifier", "JsonClassifier", "XMLClassifier", "GrokClassifier") if k in body]
    if len(kinds) != 1:
        raise TwinFault("InvalidInputException", "give exactly one of CsvClassifier/JsonClassifier/XMLClassifier/GrokClassifier")
    spec = dict(body[kinds[0]])
    name = spec.get("Name")
    classifiers = _state(ctx)["classifiers"]
    if name in classifiers:
        raise TwinFault("AlreadyExistsException", f"Classifier {name} already exists.")
    now = time.time()
    spec.update({"CreationTime": now, "LastUpdated": now, "Version": 1})
    classifiers[name] = {kinds[0]: spec}
    return {}


@operation("AWSGlue.GetClassifier")
def get_classifier(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Return one classifier."""
    found = _state(ctx)["classifiers"].get(body.get("Name"))
    if found is None:
        raise TwinFault("EntityNotFoundException", f"Classifier {body.get('Name')} not found.")
    return {"Classifier": found}


@operation("AWSGlue.GetClassifiers")
def get_classifiers(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Return every classifier."""
    return {"Classifiers": list(_state(ctx)["classifiers"].values())}


@operation("AWSGlue.DeleteClassifier")
def delete_classifier(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Delete a classifier."""
    if _state(ctx)["classifiers"].pop(body.get("Name"), None) is None:
        raise TwinFault("EntityNotFoundException", f"Classifier {body.get('Name')} not found.")
    return {}


# ---------------------------------------------------------------- crawler


def _get_crawler(ctx: TwinContext, name: str) -> Any:
    from moto.glue.exceptions import CrawlerNotFoundException

    try:
        return _backend(ctx).get_crawler(name)
    except CrawlerNotFoundException as exc:
        raise TwinFault("EntityNotFoundException", f"Crawler entry with name {name} does not exist") from exc


@operation("AWSGlue.GetCrawler")
def get_crawler(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """moto's crawler description plus the last crawl's ErrorMessage."""
    crawler = _get_crawler(ctx, body.get("Name", ""))
    data = crawler.as_dict()
    err = _state(ctx)["crawl_errors"].get(crawler.name)
    if err and "LastCrawl" in data:
        data["LastCrawl"]["ErrorMessage"] = err
    return {"Crawler": _epoch(data)}


@operation("AWSGlue.GetCrawlerMetrics")
def get_crawler_metrics(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Tables created/updated/deleted by each crawler's last crawl."""
    names = body.get("CrawlerNameList") or [c.name for c in _backend(ctx).get_crawlers()]
    metrics = _state(ctx)["metrics"]
    out = []
    for name in names:
        crawler = _get_crawler(ctx, name)
        m = metrics.get(name, {})
        out.append({
            "CrawlerName": name,
            "TimeLeftSeconds": 0.0,
            "StillEstimating": False,
            "LastRuntimeSeconds": m.get("LastRuntimeSeconds", 0.0),
            "MedianRuntimeSeconds": m.get("LastRuntimeSeconds", 0.0),
            "TablesCreated": m.get("TablesCreated", 0),
            "TablesUpdated": m.get("TablesUpdated", 0),
            "TablesDeleted": 0,
        })
        del crawler
    return {"CrawlerMetricsList": out}


@operation("AWSGlue.StartCrawler")
def start_crawler(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Start a real crawl in the background; the crawler reads RUNNING until it finishes."""
    from moto.glue.models import FakeCrawl

    state = _state(ctx)
    with state["lock"]:
        crawler = _get_crawler(ctx, body.get("Name", ""))
        if crawler.status != "READY":
            raise TwinFault("CrawlerRunningException", f"Crawler with name {crawler.name} has already started")
        crawl = FakeCrawl(crawler.name)
        crawl.status = "RUNNING"
        crawler.crawls.append(crawl)
        state["crawl_errors"].pop(crawler.name, None)
    threading.Thread(target=_crawl_thread, args=(crawler, crawl, ctx), daemon=True,
                     name=f"crawl-{crawler.name}").start()
    return {}


def _crawl_thread(crawler: Any, crawl: Any, ctx: TwinContext) -> None:
    state = _state(ctx)
    started = time.monotonic()
    try:
        created, updated = crawl_targets(crawler, ctx)
        state["metrics"][crawler.name] = {"TablesCreated": created, "TablesUpdated": updated,
                                          "LastRuntimeSeconds": time.monotonic() - started}
        crawl.status = "COMPLETED"
    except Exception as exc:  # the crawl's failure is reported through the API, like Glue does
        state["crawl_errors"][crawler.name] = f"{type(exc).__name__}: {exc}"
        crawl.status = "FAILED"
    crawl.end_time = datetime.now(UTC).replace(tzinfo=None)
    crawler.crawl_elapsed_time = int((time.monotonic() - started) * 1000)


def _classifier_spec(crawler: Any, ctx: TwinContext) -> dict[str, Any]:
    for name in crawler.classifiers or []:
        found = _state(ctx)["classifiers"].get(name, {})
        if "CsvClassifier" in found:
            return found["CsvClassifier"]
    return {}


def _glue_type(arrow_type: Any) -> str:
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t):
        return "smallint"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_float32(t):
        return "float"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    return "string"


def _widen(a: str, b: str) -> str:
    if a == b:
        return a
    numeric = ["smallint", "int", "bigint", "float", "double"]
    if a in numeric and b in numeric:
        return numeric[max(numeric.index(a), numeric.index(b))]
    return "string"


def _infer_csv(data: bytes, spec: dict[str, Any]) -> tuple[list[tuple[str, str]], bool, int]:
    """Columns (name, glue type), whether fields are quoted, and the number of data rows."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    delimiter = spec.get("Delimiter") or ","
    quote = spec.get("QuoteSymbol") or '"'
    header = spec.get("ContainsHeader", "UNKNOWN") != "ABSENT"
    text = data.decode("utf-8-sig", errors="replace")
    first_line = text.split("\n", 1)[0]
    if header and "Header" in spec:
        names = list(spec["Header"])
    elif header:
        names = next(iter(__import__("csv").reader([first_line], delimiter=delimiter, quotechar=quote)), [])
    else:
        names = [f"col{i}" for i in range(len(first_line.split(delimiter)))]
    body = text.split("\n", 1)[1] if header and "\n" in text else ("" if header else text)
    quoted = quote in text
    if not body.strip():
        return [(n, "string") for n in names], quoted, 0
    table = pcsv.read_csv(
        io.BytesIO(body.encode()),
        read_options=pcsv.ReadOptions(column_names=names, block_size=1 << 22),
        parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=quote, newlines_in_values=True),
        # Glue's CSV classifier only infers numbers and booleans; dates stay strings.
        convert_options=pcsv.ConvertOptions(timestamp_parsers=[], column_types={}, strings_can_be_null=False,
                                            auto_dict_encode=False),
    )
    cols = []
    for field in table.schema:
        t = field.type
        if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_null(t):
            t = pa.string()
        cols.append((field.name, _glue_type(t)))
    return cols, quoted, table.num_rows


def _clean_name(name: str) -> str:
    # Glue stores lower-case names; characters Athena cannot use become underscores.
    return re.sub(r"[^a-z0-9_]", "_", name.strip().lower()) or "col"


def crawl_targets(crawler: Any, ctx: TwinContext) -> tuple[int, int]:
    """Crawl every S3 target of ``crawler``: create or update one table per target; (created, updated)."""
    import pyarrow.parquet as pq

    s3 = ctx.boto3_client("s3")
    glue = _backend(ctx)
    spec = _classifier_spec(crawler, ctx)
    created = updated = 0
    for target in (crawler.targets or {}).get("S3Targets", []):
        path = target["Path"]
        bucket, prefix = _split_s3(path)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        excluded = [re.compile(_glob_re(p)) for p in target.get("Exclusions", [])]
        objects = [o for o in _list_keys(s3, bucket, prefix)
                   if not o["Key"].endswith("/")
                   and not Path(o["Key"]).name.startswith(("_", "."))
                   and not any(rx.match(o["Key"][len(prefix):]) for rx in excluded)]
        columns: dict[str, str] = {}
        kind: str | None = None
        quoted = False
        rows = 0
        size = 0
        for obj in objects:
            data = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            size += len(data)
            if not data.strip():
                continue  # an empty object classifies as UNKNOWN and adds nothing
            if data[:4] == b"PAR1":
                this_kind = "parquet"
                schema = pq.read_schema(io.BytesIO(data))
                cols = [(f.name, _glue_type(f.type)) for f in schema]
                rows += pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
            else:
                this_kind = "csv"
                cols, q, n = _infer_csv(data, spec)
                quoted = quoted or q
                rows += n
            if kind not in (None, this_kind):
                raise ValueError(f"{path}: mixes {kind} and {this_kind} objects; Glue would make separate tables")
            kind = this_kind
            for name, gtype in cols:
                key = _clean_name(name)
                columns[key] = _widen(columns[key], gtype) if key in columns else gtype
        if kind is None:
            continue  # nothing classifiable: Glue creates no table
        name = (crawler.table_prefix or "") + _clean_name(Path(prefix.rstrip("/")).name or bucket)
        table_input = _table_input(name, path, kind, columns, quoted, spec, rows, size, len(objects), crawler.name)
        try:
            existing = glue.get_table(crawler.database_name, name)
        except Exception:
            existing = None
        if existing is None:
            glue.create_table(crawler.database_name, name, table_input)
            created += 1
            continue
        policy = (crawler.schema_change_policy or {}).get("UpdateBehavior", "UPDATE_IN_DATABASE")
        current = existing.get_version(str(existing._current_version))
        if policy == "LOG" or _same_shape(current, table_input):
            continue
        existing.update(table_input)
        updated += 1
    return created, updated


def _glob_re(pattern: str) -> str:
    out = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", ".")
    return f"^{out}$"


def _same_shape(current: dict[str, Any], new: dict[str, Any]) -> bool:
    a, b = current.get("StorageDescriptor", {}), new.get("StorageDescriptor", {})
    return (a.get("Columns") == b.get("Columns") and a.get("SerdeInfo") == b.get("SerdeInfo")
            and a.get("Location") == b.get("Location"))


def _table_input(name: str, location: str, kind: str, columns: dict[str, str], quoted: bool,
                 spec: dict[str, Any], rows: int, size: int, objects: int, crawler: str) -> dict[str, Any]:
    cols = [{"Name": n, "Type": t} for n, t in columns.items()]
    params = {
        "classification": kind,
        "typeOfData": "file",
        "compressionType": "none",
        "recordCount": str(rows),
        "sizeKey": str(size),
        "objectCount": str(objects),
        "averageRecordSize": str(size // rows) if rows else "0",
        "UPDATED_BY_CRAWLER": crawler,
        "CrawlerSchemaSerializerVersion": "1.0",
        "CrawlerSchemaDeserializerVersion": "1.0",
        "EXTERNAL": "TRUE",
    }
    if kind == "parquet":
        sd_formats = {"InputFormat": _PARQUET_IN, "OutputFormat": _PARQUET_OUT,
                      "SerdeInfo": {"SerializationLibrary": _PARQUET_SERDE,
                                    "Parameters": {"serialization.format": "1"}}}
    else:
        delimiter = spec.get("Delimiter") or ","
        quote = spec.get("QuoteSymbol") or '"'
        serde = spec.get("Serde")
        use_open_csv = serde == "OpenCSVSerDe" or (serde in (None, "", "None") and quoted)
        if use_open_csv:
            serde_info = {"SerializationLibrary": _CSV_SERDE,
                          "Parameters": {"separatorChar": delimiter, "quoteChar": quote}}
        else:
            serde_info = {"SerializationLibrary": _LAZY_SERDE, "Parameters": {"field.delim": delimiter}}
        sd_formats = {"InputFormat": _TEXT_IN, "OutputFormat": _TEXT_OUT, "SerdeInfo": serde_info}
        params.update({"delimiter": delimiter, "columnsOrdered": "true", "areColumnsQuoted": str(quoted).lower()})
        if spec.get("ContainsHeader", "UNKNOWN") != "ABSENT":
            params["skip.header.line.count"] = "1"
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": params,
        "StorageDescriptor": {"Columns": cols, "Location": location, "Compressed": False,
                              "NumberOfBuckets": -1, "StoredAsSubDirectories": False,
                              "Parameters": dict(params), **sd_formats},
        "PartitionKeys": [],
    }


# ---------------------------------------------------------------- job runs

_ACTIVE = {"STARTING", "RUNNING", "STOPPING", "WAITING"}


def _job(ctx: TwinContext, name: str) -> Any:
    from moto.glue.exceptions import JobNotFoundException

    try:
        return _backend(ctx).get_job(name)
    except JobNotFoundException as exc:
        raise TwinFault("EntityNotFoundException", f"Job {name} not found") from exc


@operation("AWSGlue.StartJobRun")
def start_job_run(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Start the job's real script on local Spark in a subprocess; returns the JobRunId at once."""
    name = body.get("JobName", "")
    job = _job(ctx, name)
    state = _state(ctx)
    max_runs = int((job.execution_property or {}).get("MaxConcurrentRuns", 1))
    with state["lock"]:
        active = [r for r in state["runs"].values() if r["JobName"] == name and r["JobRunState"] in _ACTIVE]
        if len(active) >= max_runs:
            raise TwinFault("ConcurrentRunsExceededException",
                            f"Concurrent runs exceeded for {name}: {len(active)} of {max_runs} running")
        run_id = "jr_" + uuid.uuid4().hex + uuid.uuid4().hex[:32]
        args = {**(job.default_arguments or {}), **(body.get("Arguments") or {}),
                **(job.non_overridable_arguments or {})}
        now = time.time()
        run = {
            "Id": run_id,
            "Attempt": 0,
            "JobName": name,
            "JobMode": "SCRIPT",
            "StartedOn": now,
            "LastModifiedOn": now,
            "JobRunState": "RUNNING",
            "Arguments": args,
            "PredecessorRuns": [],
            "AllocatedCapacity": int(job.number_of_workers or 2),
            "ExecutionTime": 0,
            "Timeout": int(body.get("Timeout") or job.timeout or 2880),
            "WorkerType": body.get("WorkerType") or job.worker_type or "G.1X",
            "NumberOfWorkers": int(body.get("NumberOfWorkers") or job.number_of_workers or 2),
            "GlueVersion": job.glue_version or "5.0",
            "LogGroupName": "/aws-glue/jobs",
        }
        if job.security_configuration:
            run["SecurityConfiguration"] = job.security_configuration
        state["runs"][run_id] = run
        run["_shadow"] = _shadow_run(job, run)
        stoppers = ctx.shared.setdefault("glue_run_stoppers", [])
        if not any(getattr(f, "__name__", "") == "_twin_stopper" for f in stoppers):

            def _twin_stopper(job_name: str, rid: str) -> None:
                _stop_run(job_name, rid, ctx)

            stoppers.append(_twin_stopper)
    threading.Thread(target=_run_thread, args=(job, run, ctx), daemon=True, name=f"jobrun-{run_id[:12]}").start()
    return {"JobRunId": run_id}


@operation("AWSGlue.GetJobRun")
def get_job_run(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """One run of a job, with its state and ErrorMessage."""
    _job(ctx, body.get("JobName", ""))
    run = _state(ctx)["runs"].get(body.get("RunId", ""))
    if run is None or run["JobName"] != body.get("JobName"):
        raise TwinFault("EntityNotFoundException", f"Job run {body.get('RunId')} not found")
    return {"JobRun": _public(run)}


@operation("AWSGlue.GetJobRuns")
def get_job_runs(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Runs of a job, newest first, paginated."""
    name = body.get("JobName", "")
    _job(ctx, name)
    runs = sorted((r for r in _state(ctx)["runs"].values() if r["JobName"] == name),
                  key=lambda r: r["StartedOn"], reverse=True)
    start = int(body.get("NextToken") or 0)
    size = int(body.get("MaxResults") or 100)
    page = runs[start:start + size]
    out: dict[str, Any] = {"JobRuns": [_public(r) for r in page]}
    if start + size < len(runs):
        out["NextToken"] = str(start + size)
    return out


def _stop_run(job_name: str, run_id: str, ctx: TwinContext) -> None:
    """Stopper for glue_jobs_twin's BatchStopJobRun: terminate the script's process."""
    run = _state(ctx)["runs"].get(run_id)
    if run is None or run["JobRunState"] not in _ACTIVE:
        return
    run["JobRunState"] = "STOPPING"
    proc = run.get("_proc")
    if proc is not None:
        proc.terminate()


def _shadow_run(job: Any, run: dict[str, Any]) -> Any:
    """A moto FakeJobRun that mirrors ours (its state never advances on its own)."""
    from moto.glue.models import FakeJobRun

    shadow = FakeJobRun(job_name=run["JobName"], arguments=run["Arguments"])
    shadow.job_run_id = run["Id"]
    shadow._transitions = []
    shadow.status = "RUNNING"
    job.job_runs.append(shadow)
    return shadow


def _public(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if not k.startswith("_")}


class _Staging:
    """Maps ``s3://`` arguments to local paths before a run and uploads what changed afterwards."""

    def __init__(self, s3: Any, root: Path) -> None:
        self.s3 = s3
        self.root = root
        self.dirs: dict[Path, tuple[str, str]] = {}
        self.before: dict[Path, dict[str, tuple[int, int]]] = {}

    def local(self, uri: str) -> str:
        bucket, key = _split_s3(uri)
        base = self.root / bucket
        objects = _list_keys(self.s3, bucket, key) if key else _list_keys(self.s3, bucket, "")
        exact = [o for o in objects if o["Key"] == key]
        if exact and not key.endswith("/"):
            dest = base / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, key, str(dest))
            return str(dest)
        prefix = key if key.endswith("/") or not key else key + "/"
        dest_dir = base / prefix
        dest_dir.mkdir(parents=True, exist_ok=True)
        for obj in objects:
            if not obj["Key"].startswith(prefix) or obj["Key"].endswith("/"):
                continue
            dest = base / obj["Key"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, obj["Key"], str(dest))
        self.dirs[dest_dir] = (bucket, prefix)
        self.before[dest_dir] = _snapshot(dest_dir)
        return str(dest_dir) + ("/" if uri.endswith("/") else "")

    def upload_changes(self) -> int:
        """Upload new or changed files and delete removed ones under every staged prefix; count of changes."""
        changes = 0
        for d, (bucket, prefix) in self.dirs.items():
            before, after = self.before[d], _snapshot(d)
            for rel, sig in after.items():
                if before.get(rel) != sig:
                    self.s3.upload_file(str(d / rel), bucket, prefix + rel)
                    changes += 1
            for rel in before.keys() - after.keys():
                self.s3.delete_object(Bucket=bucket, Key=prefix + rel)
                changes += 1
        return changes


def _snapshot(d: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in d.rglob("*"):
        # Hadoop's local checksum files are an artefact of the local filesystem, not job output.
        if p.is_file() and not p.name.endswith(".crc"):
            st = p.stat()
            out[p.relative_to(d).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)\b:?.*)$")


def error_message(stderr: str, returncode: int) -> str:
    """The line Glue would show as ErrorMessage: the last exception line of the driver's stderr."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if _ERROR_LINE.match(line):
            return line[:2000]
    tail = lines[-1] if lines else ""
    return f"Script exited with code {returncode}: {tail}"[:2000]


def _run_thread(job: Any, run: dict[str, Any], ctx: TwinContext) -> None:
    started = time.monotonic()
    workdir = ctx.state_dir / "glue-runs" / run["Id"]
    try:
        code, message = _execute(job, run, ctx, workdir)
    except Exception as exc:  # staging failures are job failures, reported through the API
        code, message = 1, f"{type(exc).__name__}: {exc}"
    now = time.time()
    if run["JobRunState"] == "STOPPING":
        run["JobRunState"] = "STOPPED"
    elif code == 0:
        run["JobRunState"] = "SUCCEEDED"
    elif code == "TIMEOUT":
        run["JobRunState"] = "TIMEOUT"
        run["ErrorMessage"] = message
    else:
        run["JobRunState"] = "FAILED"
        run["ErrorMessage"] = message
    run.update({"CompletedOn": now, "LastModifiedOn": now,
                "ExecutionTime": int(time.monotonic() - started)})
    run.pop("_proc", None)
    if run.get("_shadow") is not None:
        run["_shadow"].status = run["JobRunState"]


def _execute(job: Any, run: dict[str, Any], ctx: TwinContext, workdir: Path) -> tuple[Any, str]:
    s3 = ctx.boto3_client("s3")
    workdir.mkdir(parents=True, exist_ok=True)
    command = job.command or {}
    script_uri = command.get("ScriptLocation", "")
    bucket, key = _split_s3(script_uri)
    script = workdir / "script" / Path(key).name
    script.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3.download_file(bucket, key, str(script))
    except Exception as exc:
        return 1, f"Script {script_uri} could not be read: {exc}. Upload it first (pipekit etl deploy)."
    staging = _Staging(s3, workdir / "s3")
    args = dict(run["Arguments"])
    py_path: list[str] = []
    extra = args.pop("--extra-py-files", "")
    for uri in filter(None, (u.strip() for u in extra.split(","))):
        b, k = _split_s3(uri)
        dest = workdir / "py" / Path(k).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(b, k, str(dest))
        py_path.append(str(dest))
    argv: list[str] = ["--JOB_NAME", run["JobName"], "--JOB_ID", f"j_{run['JobName']}", "--JOB_RUN_ID", run["Id"]]
    for name, value in args.items():
        if name in {"--JOB_NAME", "--JOB_ID", "--JOB_RUN_ID"}:
            continue
        if isinstance(value, str) and value.startswith(("s3://", "s3a://")):
            value = staging.local(value)
        argv += [name, value]
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)  # the script sees only local paths, like a job with no AWS access
    env["PYTHONPATH"] = os.pathsep.join([*py_path, env.get("PYTHONPATH", "")]).strip(os.pathsep)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log_path = workdir / "driver.log"
    with open(log_path, "wb") as log_out:
        proc = subprocess.Popen([sys.executable, str(script), *argv], cwd=workdir, env=env,
                                stdout=log_out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        run["_proc"] = proc
        if run["JobRunState"] == "STOPPING":  # stopped while the inputs were still being staged
            proc.terminate()
        try:
            _, err = proc.communicate(timeout=run["Timeout"] * 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            return "TIMEOUT", f"Job run timed out after {run['Timeout']} minutes"
    stderr = err.decode("utf-8", errors="replace")
    (workdir / "driver.err").write_text(stderr)
    _ship_logs(ctx, run, log_path.read_text(errors="replace"), stderr)
    if proc.returncode != 0:
        return proc.returncode, error_message(stderr, proc.returncode)
    staging.upload_changes()
    return 0, ""


def _ship_logs(ctx: TwinContext, run: dict[str, Any], stdout: str, stderr: str) -> None:
    """Put the driver's output into CloudWatch Logs (/aws-glue/jobs/output|error), as Glue does."""
    try:
        logs = ctx.boto3_client("logs")
        for group, text in (("/aws-glue/jobs/output", stdout), ("/aws-glue/jobs/error", stderr)):
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName=run["Id"])
            lines = [ln for ln in text.splitlines() if ln.strip()][-5000:] or ["(no output)"]
            ts = int(time.time() * 1000)
            logs.put_log_events(logGroupName=group, logStreamName=run["Id"],
                                logEvents=[{"timestamp": ts, "message": ln[:8000]} for ln in lines])
    except Exception as exc:  # logs are a convenience; never fail the run over them
        run["_log_error"] = json.dumps(str(exc))
