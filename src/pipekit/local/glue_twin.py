"""Twin operations for Glue that moto lacks or only pretends: classifiers, a real crawl, real job runs.

* ``StartCrawler`` crawls for real: it reads the objects under each S3 target, classifies them and groups
  them into tables and partitions (``crawler_infer``, pure) and writes the catalog under the crawler's
  schema change policy, recrawl policy and Configuration (``Grouping``, ``CrawlerOutput``). CSV gets
  OpenCSVSerde when fields are quoted, else LazySimpleSerDe; Parquet gets ParquetHiveSerDe.
  ``GetCrawler``/``GetCrawlers``/``BatchGetCrawlers``/``ListCrawls`` report crawl states in botocore's
  enums with the failed crawl's ``ErrorMessage``; ``StopCrawler``, ``UpdateCrawler`` (moto lacks it) and
  ``GetCrawlerMetrics`` (tables created/updated/deleted) complete the crawler API.
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
        _MODULE, {"classifiers": {}, "metrics": {}, "crawls": {}, "runs": {}, "lock": threading.RLock()}
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

# Crawl states -> botocore's enums: LastCrawlInfo.Status in GetCrawler (SUCCEEDED|CANCELLED|FAILED) and
# CrawlerHistory.State in ListCrawls (RUNNING|COMPLETED|FAILED|STOPPED).
_LAST_CRAWL_STATUS = {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED", "FAILED": "FAILED"}
_CRAWL_STATE = {"RUNNING": "RUNNING", "STOPPING": "RUNNING", "COMPLETED": "COMPLETED",
                "STOPPED": "STOPPED", "FAILED": "FAILED"}


def _get_crawler(ctx: TwinContext, name: str) -> Any:
    from moto.glue.exceptions import CrawlerNotFoundException

    try:
        return _backend(ctx).get_crawler(name)
    except CrawlerNotFoundException as exc:
        raise TwinFault("EntityNotFoundException", f"Crawler entry with name {name} does not exist") from exc


def _crawl_records(ctx: TwinContext, name: str) -> list[dict[str, Any]]:
    return _state(ctx).setdefault("crawls", {}).setdefault(name, [])


def _crawler_dict(crawler: Any, ctx: TwinContext) -> dict[str, Any]:
    """The Crawler structure as Glue returns it: no null members, LastCrawl is the last finished crawl."""
    data = {k: v for k, v in crawler.as_dict().items() if v not in (None, "", [], {}) or k == "Classifiers"}
    data.pop("LastCrawl", None)
    finished = [r for r in _crawl_records(ctx, crawler.name) if r["_status"] in _LAST_CRAWL_STATUS]
    if finished:
        last = finished[-1]
        data["LastCrawl"] = {"Status": _LAST_CRAWL_STATUS[last["_status"]], "LogGroup": last["LogGroup"],
                             "LogStream": last["LogStream"], "MessagePrefix": last["MessagePrefix"],
                             "StartTime": last["StartTime"]}
        if last.get("ErrorMessage"):
            data["LastCrawl"]["ErrorMessage"] = last["ErrorMessage"]
    data.setdefault("Classifiers", [])
    return _epoch(data)


@operation("AWSGlue.GetCrawler")
def get_crawler(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """One crawler; LastCrawl carries SUCCEEDED/CANCELLED/FAILED and the failed crawl's ErrorMessage."""
    return {"Crawler": _crawler_dict(_get_crawler(ctx, body.get("Name", "")), ctx)}


@operation("AWSGlue.GetCrawlers")
def get_crawlers(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Every crawler, described like GetCrawler."""
    return {"Crawlers": [_crawler_dict(c, ctx) for c in _backend(ctx).get_crawlers()]}


@operation("AWSGlue.BatchGetCrawlers")
def batch_get_crawlers(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """The named crawlers, and the names not found."""
    names = body.get("CrawlerNames") or []
    known = {c.name: c for c in _backend(ctx).get_crawlers()}
    return {"Crawlers": [_crawler_dict(known[n], ctx) for n in names if n in known],
            "CrawlersNotFound": [n for n in names if n not in known]}


@operation("AWSGlue.UpdateCrawler")
def update_crawler(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Change the members given (moto lacks UpdateCrawler); refused while the crawler runs."""
    crawler = _get_crawler(ctx, body.get("Name", ""))
    if crawler.status != "READY":
        raise TwinFault("CrawlerRunningException", f"Crawler {crawler.name} is running; stop it or wait")
    fields = {"Role": "role", "DatabaseName": "database_name", "Description": "description",
              "Targets": "targets", "Schedule": "schedule", "Classifiers": "classifiers",
              "TablePrefix": "table_prefix", "SchemaChangePolicy": "schema_change_policy",
              "RecrawlPolicy": "recrawl_policy", "LineageConfiguration": "lineage_configuration",
              "Configuration": "configuration", "CrawlerSecurityConfiguration": "crawler_security_configuration"}
    for member, attr in fields.items():
        if member in body:
            setattr(crawler, attr, body[member])
    crawler.version = int(crawler.version or 1) + 1
    crawler.last_updated = datetime.now(UTC).replace(tzinfo=None)
    return {}


@operation("AWSGlue.ListCrawls")
def list_crawls(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """The crawler's crawls, newest first, with CrawlerHistory.State from botocore's enum."""
    crawler = _get_crawler(ctx, body.get("CrawlerName", ""))
    out = []
    for r in reversed(_crawl_records(ctx, crawler.name)):
        crawl = {k: v for k, v in r.items() if not k.startswith("_")}
        crawl["State"] = _CRAWL_STATE[r["_status"]]
        out.append(crawl)
    limit = int(body.get("MaxResults") or 100)
    return {"Crawls": _epoch(out[:limit])}


@operation("AWSGlue.GetCrawlerMetrics")
def get_crawler_metrics(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Tables created/updated/deleted by each crawler's last crawl."""
    names = body.get("CrawlerNameList") or [c.name for c in _backend(ctx).get_crawlers()]
    metrics = _state(ctx)["metrics"]
    out = []
    for name in names:
        _get_crawler(ctx, name)
        m = metrics.get(name, {})
        out.append({
            "CrawlerName": name,
            "TimeLeftSeconds": 0.0,
            "StillEstimating": False,
            "LastRuntimeSeconds": m.get("LastRuntimeSeconds", 0.0),
            "MedianRuntimeSeconds": m.get("LastRuntimeSeconds", 0.0),
            "TablesCreated": m.get("TablesCreated", 0),
            "TablesUpdated": m.get("TablesUpdated", 0),
            "TablesDeleted": m.get("TablesDeleted", 0),
        })
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
        crawl.status = "RUNNING"  # moto's crawler.State follows this; the record below is what we report
        crawler.crawls.append(crawl)
        record = {"CrawlId": crawl.crawl_id, "_status": "RUNNING", "StartTime": datetime.now(UTC),
                  "LogGroup": "/aws-glue/crawlers", "LogStream": crawler.name, "MessagePrefix": crawl.crawl_id,
                  "DPUHour": 0.0, "_moto": crawl}
        _crawl_records(ctx, crawler.name).append(record)
    threading.Thread(target=_crawl_thread, args=(crawler, record, ctx), daemon=True,
                     name=f"crawl-{crawler.name}").start()
    return {}


@operation("AWSGlue.StopCrawler")
def stop_crawler(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Ask a running crawl to stop: STOPPING, then READY with LastCrawl CANCELLED."""
    crawler = _get_crawler(ctx, body.get("Name", ""))
    records = _crawl_records(ctx, crawler.name)
    if not records or records[-1]["_status"] != "RUNNING":
        raise TwinFault("CrawlerNotRunningException", f"Crawler with name {crawler.name} isn't running")
    records[-1]["_status"] = "STOPPING"
    records[-1]["_moto"].status = "STOPPING"
    return {}


def _crawl_thread(crawler: Any, record: dict[str, Any], ctx: TwinContext) -> None:
    state = _state(ctx)
    started = time.monotonic()
    crawl = record["_moto"]
    try:
        result = crawl_targets(crawler, ctx)
        state["metrics"][crawler.name] = {**result, "LastRuntimeSeconds": time.monotonic() - started}
        record["Summary"] = json.dumps(result)
        status = "COMPLETED"
    except Exception as exc:  # the crawl's failure is reported through the API, like Glue does
        record["ErrorMessage"] = _clean_message(f"{type(exc).__name__}: {exc}")
        status = "FAILED"
    if record["_status"] == "STOPPING":
        status = "STOPPED"
    record["_status"] = status
    record["EndTime"] = datetime.now(UTC)
    crawl.end_time = datetime.now(UTC).replace(tzinfo=None)
    crawl.status = status
    crawler.crawl_elapsed_time = int((time.monotonic() - started) * 1000)


def _clean_message(text: str) -> str:
    """Printable text only, at most Glue's 2048 characters (never the object's raw bytes)."""
    return re.sub(r"[^\x20-\x7e\u00a0-\uffff]+", "?", text)[:2048]


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


def _classify(key: str, data: bytes, spec: dict[str, Any]) -> Any:
    """One object's FileSchema, or None when no classifier recognises it (Glue: UNKNOWN, no table)."""
    import pyarrow.parquet as pq

    from pipekit.local.crawler_infer import FileSchema, decompress, infer_csv, is_text

    if data[:4] == b"PAR1":
        schema = pq.read_schema(io.BytesIO(data))
        rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
        return FileSchema(key=key, kind="parquet", compression="none", rows=rows, size=len(data),
                          columns=[(f.name, _glue_type(f.type)) for f in schema])
    raw, compression = decompress(key, data)
    if not raw.strip() or not is_text(raw):
        return None
    return infer_csv(key, raw.decode("utf-8-sig", errors="replace"), spec, compression, len(data))


def _crawler_options(crawler: Any) -> dict[str, Any]:
    try:
        config = json.loads(crawler.configuration or "{}")
    except ValueError as exc:
        raise ValueError(f"crawler {crawler.name}: Configuration is not JSON: {exc}") from exc
    grouping = config.get("Grouping") or {}
    tables = ((config.get("CrawlerOutput") or {}).get("Tables") or {})
    policy = crawler.schema_change_policy or {}
    return {
        "table_level": int(grouping["TableLevelConfiguration"]) if grouping.get("TableLevelConfiguration") else None,
        "combine": grouping.get("TableGroupingPolicy") == "CombineCompatibleSchemas",
        "merge_new": tables.get("AddOrUpdateBehavior") == "MergeNewColumns",
        "update": policy.get("UpdateBehavior") or "UPDATE_IN_DATABASE",
        "delete": policy.get("DeleteBehavior") or "DEPRECATE_IN_DATABASE",
        "new_folders_only": (crawler.recrawl_policy or {}).get("RecrawlBehavior") == "CRAWL_NEW_FOLDERS_ONLY",
    }


def crawl_targets(crawler: Any, ctx: TwinContext) -> dict[str, int]:
    """Crawl every S3 target of ``crawler`` into tables and partitions; TablesCreated/Updated/Deleted."""
    from pipekit.local.crawler_infer import group_tables, table_name

    s3 = ctx.boto3_client("s3")
    glue = _backend(ctx)
    spec = _classifier_spec(crawler, ctx)
    opts = _crawler_options(crawler)
    seen = _state(ctx).setdefault("seen_folders", {})
    incremental = opts["new_folders_only"] and crawler.name in seen
    known_folders: set[str] = set(seen.get(crawler.name, set()))
    result = {"TablesCreated": 0, "TablesUpdated": 0, "TablesDeleted": 0}
    live_prefixes: list[tuple[str, str]] = []
    folders: set[str] = set()
    for target in (crawler.targets or {}).get("S3Targets", []):
        bucket, prefix = _split_s3(target["Path"])
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        excluded = [re.compile(_glob_re(p)) for p in target.get("Exclusions", [])]
        objects = [o for o in _list_keys(s3, bucket, prefix)
                   if not o["Key"].endswith("/")
                   and not any(part.startswith(("_", ".")) for part in o["Key"][len(prefix):].split("/"))
                   and not any(rx.match(o["Key"][len(prefix):]) for rx in excluded)]
        live_prefixes += [(bucket, o["Key"]) for o in objects]
        folders |= {f"{bucket}/{o['Key'].rsplit('/', 1)[0] if '/' in o['Key'] else ''}" for o in objects}
        if incremental:
            objects = [o for o in objects
                       if f"{bucket}/{o['Key'].rsplit('/', 1)[0] if '/' in o['Key'] else ''}" not in known_folders]
        files = []
        for obj in objects:
            found = _classify(obj["Key"], s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read(), spec)
            if found is not None:
                files.append(found)
        for group in group_tables(prefix, files, combine=opts["combine"], table_level=opts["table_level"]):
            name = table_name(group, bucket, crawler.table_prefix or "")
            outcome = _write_table(glue, crawler, name, f"s3://{bucket}/{group.root}", group, spec, opts,
                                   incremental)
            if outcome:
                result[outcome] += 1
    if not incremental:
        result["TablesDeleted"] = _handle_deleted(glue, crawler, live_prefixes, opts)
    seen[crawler.name] = folders | known_folders
    return result


def _write_table(glue: Any, crawler: Any, name: str, location: str, group: Any, spec: dict[str, Any],
                 opts: dict[str, Any], incremental: bool) -> str | None:
    """Create or update one table and register its new partitions; which metric it counts toward."""
    from moto.glue.exceptions import TableNotFoundException

    table_input = _table_input(name, location, group, spec, crawler.name)
    try:
        existing = glue.get_table(crawler.database_name, name)
    except TableNotFoundException:
        existing = None
    outcome: str | None = None
    if existing is None:
        glue.create_table(crawler.database_name, name, table_input)
        outcome = "TablesCreated"
    else:
        current = existing.get_version(str(existing._current_version))
        # Incremental crawls and UpdateBehavior LOG leave the schema alone; new partitions still come in
        # ("New tables and partitions are always created regardless of the SchemaChangePolicy").
        if not incremental and opts["update"] != "LOG":
            old_cols = (current.get("StorageDescriptor") or {}).get("Columns") or []
            old_types = {c["Name"]: c["Type"] for c in old_cols}
            new_cols = table_input["StorageDescriptor"]["Columns"]
            open_names = {n for n, t in group.columns if t is None}
            for col in new_cols:  # a column no object gave a value for (header-only file) keeps its type
                if col["Name"] in open_names and col["Name"] in old_types:
                    col["Type"] = old_types[col["Name"]]
            if opts["merge_new"]:  # MergeNewColumns: existing columns and types stay, new ones are added
                names = set(old_types)
                table_input["StorageDescriptor"]["Columns"] = [dict(c) for c in old_cols] + [
                    c for c in new_cols if c["Name"] not in names]
            if not _same_shape(current, table_input):
                glue.update_table(crawler.database_name, name, table_input)
                outcome = "TablesUpdated"
        table_input = existing.get_version(str(existing._current_version))
    _add_partitions(glue, crawler, existing, name, table_input, group, opts, incremental)
    return outcome


def _add_partitions(glue: Any, crawler: Any, existing: Any, name: str, table_input: dict[str, Any],
                    group: Any, opts: dict[str, Any], incremental: bool) -> None:
    if not group.partitions:
        return
    bucket = table_input["StorageDescriptor"]["Location"][len("s3://"):].split("/", 1)[0]
    table = glue.get_table(crawler.database_name, name)
    wanted = {}
    for values, folder in sorted(group.partitions.items()):
        sd = json.loads(json.dumps(table_input["StorageDescriptor"]))
        sd["Location"] = f"s3://{bucket}/{folder}"
        wanted[str(list(values))] = {"Values": list(values), "StorageDescriptor": sd,
                                     "Parameters": dict(table_input.get("Parameters") or {})}
    fresh = [p for key, p in wanted.items() if key not in table.partitions]
    if fresh:
        glue.batch_create_partition(crawler.database_name, name, fresh)
    if not incremental and opts["delete"] == "DELETE_FROM_DATABASE" and existing is not None:
        for key in [k for k in table.partitions if k not in wanted]:
            del table.partitions[key]


def _handle_deleted(glue: Any, crawler: Any, live: list[tuple[str, str]], opts: dict[str, Any]) -> int:
    """Tables this crawler made whose objects are all gone, per DeleteBehavior; the count removed."""
    from moto.glue.exceptions import DatabaseNotFoundException

    try:
        tables = glue.get_tables(crawler.database_name, None)
    except DatabaseNotFoundException:
        return 0
    deleted = 0
    for table in list(tables):
        current = table.get_version(str(table._current_version))
        params = current.get("Parameters") or {}
        if params.get("UPDATED_BY_CRAWLER") != crawler.name:
            continue
        bucket, prefix = _split_s3((current.get("StorageDescriptor") or {}).get("Location", ""))
        if any(b == bucket and k.startswith(prefix) for b, k in live):
            continue
        if opts["delete"] == "DELETE_FROM_DATABASE":
            glue.delete_table(crawler.database_name, table.name)
            deleted += 1
        elif opts["delete"] == "DEPRECATE_IN_DATABASE" and "DEPRECATED_BY_CRAWLER" not in params:
            updated = json.loads(json.dumps(current, default=str))
            for key in ("DatabaseName", "CreateTime", "UpdateTime", "VersionId", "CatalogId"):
                updated.pop(key, None)
            updated.setdefault("Parameters", {})["DEPRECATED_BY_CRAWLER"] = "1"
            glue.update_table(crawler.database_name, table.name, updated)
    return deleted


def _glob_re(pattern: str) -> str:
    """Glue exclude patterns: ``*`` within a folder, ``**`` across folders, ``?``, ``[...]``, ``{a,b}``."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                out += re.escape(c)
            else:
                body = pattern[i + 1:end]
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                i = end
        elif c == "{":
            end = pattern.find("}", i)
            if end < 0:
                out += re.escape(c)
            else:
                out += "(?:" + "|".join(re.escape(a) for a in pattern[i + 1:end].split(",")) + ")"
                i = end
        else:
            out += re.escape(c)
        i += 1
    return f"^{out}$"


def _same_shape(current: dict[str, Any], new: dict[str, Any]) -> bool:
    a, b = current.get("StorageDescriptor", {}), new.get("StorageDescriptor", {})
    return (a.get("Columns") == b.get("Columns") and a.get("SerdeInfo") == b.get("SerdeInfo")
            and a.get("Location") == b.get("Location")
            and current.get("PartitionKeys", []) == new.get("PartitionKeys", []))


def _table_input(name: str, location: str, group: Any, spec: dict[str, Any], crawler: str) -> dict[str, Any]:
    files = group.files
    first = files[0]
    kind, compression = first.kind, first.compression
    rows = sum(f.rows for f in files)
    size = sum(f.size for f in files)
    cols = [{"Name": n, "Type": t or "string"} for n, t in group.columns]
    params = {
        "classification": kind,
        "typeOfData": "file",
        "compressionType": compression,
        "recordCount": str(rows),
        "sizeKey": str(size),
        "objectCount": str(len(files)),
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
        delimiter, quote = first.delimiter, first.quote
        quoted = any(f.quoted for f in files)
        serde = spec.get("Serde")
        use_open_csv = serde == "OpenCSVSerDe" or (serde in (None, "", "None") and quoted)
        if use_open_csv:
            serde_info = {"SerializationLibrary": _CSV_SERDE,
                          "Parameters": {"separatorChar": delimiter, "quoteChar": quote}}
        else:
            serde_info = {"SerializationLibrary": _LAZY_SERDE, "Parameters": {"field.delim": delimiter}}
        sd_formats = {"InputFormat": _TEXT_IN, "OutputFormat": _TEXT_OUT, "SerdeInfo": serde_info}
        params.update({"delimiter": delimiter, "columnsOrdered": "true", "areColumnsQuoted": str(quoted).lower()})
        if first.header:
            params["skip.header.line.count"] = "1"
    if not location.endswith("/"):
        location += "/"
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": params,
        "StorageDescriptor": {"Columns": cols, "Location": location, "Compressed": compression != "none",
                              "NumberOfBuckets": -1, "StoredAsSubDirectories": False,
                              "Parameters": dict(params), **sd_formats},
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in group.partition_keys],
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
