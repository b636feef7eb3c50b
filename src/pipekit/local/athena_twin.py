"""Twin operations for Athena: real SQL over the Glue tables' S3 data.

moto's Athena accepts queries but runs nothing. Here ``StartQueryExecution`` parses the query as Athena's
Trino dialect with sqlglot, maps each catalog table to its S3 data (staged into a local cache, re-read
only when an object's ETag changes) read through the table's SerDe, runs the DuckDB translation, and
writes the result where Athena would: ``<output>/<QueryExecutionId>.csv`` plus ``.csv.metadata``, in
the call's output location or, when none is given or the workgroup enforces its own, the workgroup's.
``UNLOAD (SELECT ...) TO 's3://...' WITH (format = 'PARQUET')`` writes snappy Parquet there and a
``<qid>-manifest.csv`` in the output location. ``GetQueryExecution`` and ``GetQueryResults`` (with
paging) follow the Athena API.

Known differences: the ``.csv.metadata`` file is JSON (Athena's is a binary protobuf only the
console reads); only SELECT/WITH/VALUES/SHOW TABLES and UNLOAD statements run, DDL fails with a clear reason.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pipekit.local.server import TwinContext, TwinFault, operation

_MODULE = "athena_twin"
_UNLOAD = re.compile(r"^\s*UNLOAD\s*\((?P<query>.*)\)\s*TO\s*'(?P<to>[^']+)'\s*WITH\s*\((?P<props>.*)\)\s*$",
                     re.IGNORECASE | re.DOTALL)
_GLUE_TO_DUCK = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER",
    "integer": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT", "double": "DOUBLE",
    "float": "FLOAT", "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE", "binary": "BLOB",
}


class QueryFailed(Exception):
    """A query failed the way Athena reports it: an Athena error type and a message."""

    def __init__(self, message: str, error_type: int = 1006, category: int = 2) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.category = category  # 1 system, 2 user, 3 other


def _state(ctx: TwinContext) -> dict[str, Any]:
    return ctx.shared.setdefault(_MODULE, {"executions": {}, "results": {}, "etags": {},
                                           "lock": threading.RLock()})


def _athena(ctx: TwinContext) -> Any:
    from moto.athena.models import athena_backends

    return athena_backends[ctx.account][ctx.region]


def _glue(ctx: TwinContext) -> Any:
    from moto.glue.models import glue_backends

    return glue_backends[ctx.account][ctx.region]


def _split_s3(uri: str) -> tuple[str, str]:
    m = re.match(r"^s3://([^/]+)/?(.*)$", uri)
    if not m:
        raise QueryFailed(f"not an s3:// location: {uri}")
    return m.group(1), m.group(2)


def _join(loc: str, name: str) -> str:
    return loc.rstrip("/") + "/" + name


@operation("AmazonAthena.StartQueryExecution")
def start_query_execution(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Queue a query and run it in the background; returns its QueryExecutionId."""
    sql = body.get("QueryString") or ""
    if not sql.strip():
        raise TwinFault("InvalidRequestException", "QueryString must not be empty")
    wg_name = body.get("WorkGroup") or "primary"
    wg = _athena(ctx).get_work_group(wg_name)
    if wg is None:
        raise TwinFault("InvalidRequestException", f"WorkGroup {wg_name} is not found.")
    if wg.get("State") == "DISABLED":
        raise TwinFault("InvalidRequestException", f"WorkGroup {wg_name} is disabled.")
    config = wg.get("Configuration") or {}
    wg_loc = (config.get("ResultConfiguration") or {}).get("OutputLocation")
    call_loc = (body.get("ResultConfiguration") or {}).get("OutputLocation")
    location = wg_loc if (config.get("EnforceWorkGroupConfiguration") and wg_loc) else (call_loc or wg_loc)
    if not location:
        raise TwinFault(
            "InvalidRequestException",
            "No output location provided. An output location is required either through the Workgroup result "
            "configuration setting or as an API input.",
        )
    qid = str(uuid.uuid4())
    kind = "UNLOAD" if _UNLOAD.match(sql.strip().rstrip(";")) else _statement_kind(sql)
    now = time.time()
    execution = {
        "QueryExecutionId": qid,
        "Query": sql,
        "StatementType": "DML" if kind in {"SELECT", "UNLOAD"} else ("UTILITY" if kind == "SHOW" else "DDL"),
        "SubstatementType": kind,
        "ResultConfiguration": {"OutputLocation": _join(location, f"{qid}.csv")},
        "QueryExecutionContext": body.get("QueryExecutionContext") or {},
        "Status": {"State": "QUEUED", "SubmissionDateTime": now},
        "Statistics": {"EngineExecutionTimeInMillis": 0, "DataScannedInBytes": 0,
                       "TotalExecutionTimeInMillis": 0, "QueryQueueTimeInMillis": 0},
        "WorkGroup": wg_name,
        "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3",
                          "EffectiveEngineVersion": "Athena engine version 3"},
    }
    state = _state(ctx)
    with state["lock"]:
        state["executions"][qid] = execution
    threading.Thread(target=_run, args=(execution, location, ctx), daemon=True, name=f"athena-{qid[:8]}").start()
    return {"QueryExecutionId": qid}


def _statement_kind(sql: str) -> str:
    first = re.sub(r"^\s*(--[^\n]*\n\s*)*", "", sql).split(None, 1)
    word = first[0].upper() if first else ""
    if word in {"SELECT", "WITH", "VALUES", "(", "TABLE"}:
        return "SELECT"
    return word or "UNKNOWN"


def _execution(ctx: TwinContext, qid: str) -> dict[str, Any]:
    found = _state(ctx)["executions"].get(qid)
    if found is None:
        raise TwinFault("InvalidRequestException", f"QueryExecution {qid} was not found")
    return found


@operation("AmazonAthena.GetQueryExecution")
def get_query_execution(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """State, output location, statistics and (on failure) the reason."""
    return {"QueryExecution": _execution(ctx, body.get("QueryExecutionId", ""))}


@operation("AmazonAthena.BatchGetQueryExecution")
def batch_get_query_execution(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Several executions at once."""
    found, missing = [], []
    for qid in body.get("QueryExecutionIds", []):
        ex = _state(ctx)["executions"].get(qid)
        if ex is None:
            missing.append({"QueryExecutionId": qid, "ErrorCode": "InvalidRequestException",
                            "ErrorMessage": "not found"})
        else:
            found.append(ex)
    return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}


@operation("AmazonAthena.ListQueryExecutions")
def list_query_executions(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Execution ids in a workgroup, newest first."""
    wg = body.get("WorkGroup") or "primary"
    ids = [q for q, ex in sorted(_state(ctx)["executions"].items(),
                                 key=lambda kv: kv[1]["Status"]["SubmissionDateTime"], reverse=True)
           if ex["WorkGroup"] == wg]
    start = int(body.get("NextToken") or 0)
    size = int(body.get("MaxResults") or 50)
    out: dict[str, Any] = {"QueryExecutionIds": ids[start:start + size]}
    if start + size < len(ids):
        out["NextToken"] = str(start + size)
    return out


@operation("AmazonAthena.StopQueryExecution")
def stop_query_execution(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Mark a queued or running query CANCELLED."""
    ex = _execution(ctx, body.get("QueryExecutionId", ""))
    if ex["Status"]["State"] in {"QUEUED", "RUNNING"}:
        ex["Status"].update({"State": "CANCELLED", "CompletionDateTime": time.time()})
    return {}


@operation("AmazonAthena.GetQueryResults")
def get_query_results(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Rows of a finished SELECT (header row first), paged by MaxResults/NextToken like Athena."""
    qid = body.get("QueryExecutionId", "")
    ex = _execution(ctx, qid)
    st = ex["Status"]["State"]
    if st == "FAILED":
        raise TwinFault("InvalidRequestException", ex["Status"].get("StateChangeReason", "Query failed"))
    if st != "SUCCEEDED":
        raise TwinFault("InvalidRequestException", f"Query has not yet finished. Current state: {st}")
    columns, rows = _state(ctx)["results"].get(qid, ([], []))
    size = min(int(body.get("MaxResults") or 1000), 1000)
    start = int(body.get("NextToken") or 0)
    all_rows = ([[c["Name"] for c in columns]] if columns else []) + rows
    page = all_rows[start:start + size]
    out: dict[str, Any] = {
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in page],
            "ResultSetMetadata": {"ColumnInfo": columns},
        },
        "UpdateCount": 0,
    }
    if start + size < len(all_rows):
        out["NextToken"] = str(start + size)
    return out


# ---------------------------------------------------------------- execution


def _run(execution: dict[str, Any], location: str, ctx: TwinContext) -> None:
    started = time.monotonic()
    status = execution["Status"]
    status["State"] = "RUNNING"
    try:
        scanned = _execute(execution, location, ctx)
        if status["State"] == "CANCELLED":
            return
        status["State"] = "SUCCEEDED"
        execution["Statistics"]["DataScannedInBytes"] = scanned
    except QueryFailed as exc:
        status.update({"State": "FAILED", "StateChangeReason": str(exc),
                       "AthenaError": {"ErrorCategory": exc.category, "ErrorType": exc.error_type,
                                       "Retryable": False, "ErrorMessage": str(exc)}})
    except Exception as exc:  # a twin bug still reaches the caller as a failed query with the reason
        status.update({"State": "FAILED", "StateChangeReason": f"INTERNAL_ERROR: {type(exc).__name__}: {exc}",
                       "AthenaError": {"ErrorCategory": 1, "ErrorType": 401, "Retryable": False,
                                       "ErrorMessage": str(exc)}})
    finally:
        ms = int((time.monotonic() - started) * 1000)
        status["CompletionDateTime"] = time.time()
        execution["Statistics"].update({"EngineExecutionTimeInMillis": ms, "TotalExecutionTimeInMillis": ms})


def _execute(execution: dict[str, Any], location: str, ctx: TwinContext) -> int:
    import duckdb

    sql = execution["Query"].strip().rstrip(";").strip()
    qid = execution["QueryExecutionId"]
    database = (execution["QueryExecutionContext"] or {}).get("Database", "default")
    s3 = ctx.boto3_client("s3")
    unload = _UNLOAD.match(sql)
    query = unload.group("query") if unload else sql
    con = duckdb.connect()
    try:
        if re.match(r"^\s*SHOW\s+TABLES\b", query, re.IGNORECASE):
            table = _show_tables(ctx, database, query)
            scanned = 0
        else:
            duck_sql, scanned = _translate(query, database, con, s3, ctx)
            try:
                relation = con.sql(duck_sql)
                # DuckDB 2 names it to_arrow_table; 1.x (the extra's floor) calls it arrow().
                fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
                table = fetch()
            except duckdb.Error as exc:
                raise QueryFailed(_athena_message(str(exc)), error_type=1006) from exc
    finally:
        con.close()
    if unload:
        _write_unload(table, unload.group("to"), unload.group("props"), qid, location, s3)
        _state(ctx)["results"][qid] = ([], [])
        execution["Statistics"]["DataManifestLocation"] = _join(location, f"{qid}-manifest.csv")
        return scanned
    columns = _column_info(table)
    rows = _rows(table)
    bucket, key = _split_s3(execution["ResultConfiguration"]["OutputLocation"])
    s3.put_object(Bucket=bucket, Key=key, Body=_athena_csv(columns, rows).encode("utf-8"),
                  ContentType="text/csv")
    s3.put_object(Bucket=bucket, Key=key + ".metadata",
                  Body=json.dumps({"QueryExecutionId": qid, "ColumnInfo": columns, "RowCount": len(rows)}).encode(),
                  ContentType="application/json")
    _state(ctx)["results"][qid] = (columns, rows)
    return scanned


def _show_tables(ctx: TwinContext, database: str, query: str) -> Any:
    import pyarrow as pa

    m = re.match(r"^\s*SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+`?(\w+)`?)?", query, re.IGNORECASE)
    db = (m.group(1) if m and m.group(1) else database)
    try:
        names = sorted(t.name for t in _glue(ctx).get_tables(db, None))
    except Exception as exc:
        raise QueryFailed(f"SCHEMA_NOT_FOUND: Schema '{db}' does not exist") from exc
    return pa.table({"tab_name": names})


def _athena_message(msg: str) -> str:
    first = msg.strip().splitlines()[0] if msg.strip() else msg
    if "Binder Error" in first or "Catalog Error" in first:
        return f"COLUMN_NOT_FOUND: {first}" if "column" in first.lower() else f"SYNTAX_ERROR: {first}"
    if "Parser Error" in first:
        return f"SYNTAX_ERROR: {first}"
    return f"GENERIC_USER_ERROR: {first}"


def _translate(query: str, database: str, con: Any, s3: Any, ctx: TwinContext) -> tuple[str, int]:
    """Trino SQL -> DuckDB SQL with every catalog table bound to a view over its staged S3 data."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(query, read="trino")
    except sqlglot.errors.ParseError as exc:
        raise QueryFailed(f"SYNTAX_ERROR: {exc}", error_type=1004) from exc
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    scanned = 0
    views: dict[tuple[str, str], str] = {}
    for table in list(tree.find_all(exp.Table)):
        name = table.name.lower()
        if not name or (not table.db and name in ctes):
            continue
        db = (table.db or database).lower()
        key = (db, name)
        if key not in views:
            view = f"__t{len(views)}_{re.sub(r'[^a-z0-9_]', '_', name)}"
            scanned += _bind_table(con, view, db, name, s3, ctx)
            views[key] = view
        alias = table.alias
        table.set("this", exp.to_identifier(views[key]))
        table.set("db", None)
        table.set("catalog", None)
        if not alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
    return tree.sql(dialect="duckdb"), scanned


def _bind_table(con: Any, view: str, db: str, name: str, s3: Any, ctx: TwinContext) -> int:
    glue = _glue(ctx)
    try:
        table = glue.get_table(db, name)
    except Exception as exc:
        raise QueryFailed(f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{db}.{name}' does not exist",
                          error_type=1301) from exc
    spec = table.get_version(str(table._current_version))
    sd = spec.get("StorageDescriptor", {})
    location = sd.get("Location", "")
    columns = [(c["Name"], c.get("Type", "string")) for c in sd.get("Columns", [])]
    columns += [(c["Name"], c.get("Type", "string")) for c in spec.get("PartitionKeys", [])]
    serde = (sd.get("SerdeInfo") or {}).get("SerializationLibrary", "")
    params = {**(sd.get("SerdeInfo") or {}).get("Parameters", {}), **spec.get("Parameters", {})}
    files, size = _stage(location, s3, ctx)
    duck_cols = {n: _duck_type(t) for n, t in columns}
    if not files:
        select = ", ".join(f"CAST(NULL AS {t}) AS \"{n}\"" for n, t in duck_cols.items()) or "NULL AS none"
        con.execute(f'CREATE VIEW "{view}" AS SELECT {select} WHERE false')
        return 0
    file_list = "[" + ", ".join(_sql_str(f) for f in files) + "]"
    if "parquet" in serde.lower() or params.get("classification") == "parquet":
        import pyarrow.parquet as pq

        present = {f.name.lower(): f.name for f in pq.read_schema(files[0])}
        select = ", ".join(
            f'CAST("{present[n.lower()]}" AS {t}) AS "{n}"' if n.lower() in present else f'CAST(NULL AS {t}) AS "{n}"'
            for n, t in duck_cols.items()
        )
        con.execute(f'CREATE VIEW "{view}" AS SELECT {select} FROM read_parquet({file_list}, union_by_name=true)')
        return size
    header = int(params.get("skip.header.line.count", "0") or 0) > 0
    delim = params.get("separatorChar") or params.get("field.delim") or params.get("delimiter") or ","
    quote = params.get("quoteChar", '"')
    col_spec = "{" + ", ".join(f"{_sql_str(n)}: {_sql_str(t)}" for n, t in duck_cols.items()) + "}"
    con.execute(
        f'CREATE VIEW "{view}" AS SELECT * FROM read_csv({file_list}, header={str(header).lower()}, '
        f"delim={_sql_str(delim)}, quote={_sql_str(quote)}, escape={_sql_str(quote)}, columns={col_spec}, "
        f"auto_detect=false, null_padding=true, strict_mode=false)"
    )
    return size


def _duck_type(glue_type: str) -> str:
    t = glue_type.strip().lower()
    if t.startswith("decimal"):
        return t.upper()
    if t.startswith(("varchar", "char")):
        return "VARCHAR"
    return _GLUE_TO_DUCK.get(t, "VARCHAR")


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _stage(location: str, s3: Any, ctx: TwinContext) -> tuple[list[str], int]:
    """Download the objects under ``location`` into the cache (only those whose ETag changed)."""
    bucket, prefix = _split_s3(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    cache = ctx.state_dir / "athena-cache" / bucket
    etags = _state(ctx)["etags"]
    files: list[str] = []
    size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            base = Path(key).name
            # Like Athena, skip "folders", hidden files and Hadoop/Spark markers (_SUCCESS, _temporary).
            if key.endswith("/") or base.startswith(("_", ".")) or "/_" in key[len(prefix):] or obj["Size"] == 0:
                continue
            dest = cache / key
            if etags.get(str(dest)) != obj["ETag"] or not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(dest))
                etags[str(dest)] = obj["ETag"]
            files.append(str(dest))
            size += obj["Size"]
    return sorted(files), size


_ARROW_TO_ATHENA = [
    ("is_boolean", "boolean"), ("is_int8", "tinyint"), ("is_int16", "smallint"), ("is_int32", "integer"),
    ("is_integer", "bigint"), ("is_float32", "float"), ("is_floating", "double"), ("is_decimal", "decimal"),
    ("is_timestamp", "timestamp"), ("is_date", "date"), ("is_binary", "varbinary"),
]


def _column_info(table: Any) -> list[dict[str, Any]]:
    import pyarrow as pa

    out = []
    for field in table.schema:
        athena_type = "varchar"
        for pred, name in _ARROW_TO_ATHENA:
            if getattr(pa.types, pred)(field.type):
                athena_type = name
                break
        info = {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": field.name, "Label": field.name,
                "Type": athena_type, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive":
                athena_type == "varchar"}
        if pa.types.is_decimal(field.type):
            info.update({"Precision": field.type.precision, "Scale": field.type.scale})
        out.append(info)
    return out


def _fmt(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat") and hasattr(value, "hour"):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _rows(table: Any) -> list[list[str | None]]:
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [[_fmt(c[r]) for c in cols] for r in range(table.num_rows)]


def _athena_csv(columns: list[dict[str, Any]], rows: list[list[str | None]]) -> str:
    """Athena's result format: header row, every value double-quoted, NULL as an empty unquoted field."""

    def q(v: str | None) -> str:
        return "" if v is None else '"' + v.replace('"', '""') + '"'

    lines = [",".join(q(c["Name"]) for c in columns)] + [",".join(q(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def _write_unload(table: Any, to: str, props: str, qid: str, location: str, s3: Any) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    options = {k.lower(): v for k, v in re.findall(r"(\w+)\s*=\s*'([^']*)'", props)}
    fmt = options.get("format", "").upper()
    if fmt not in {"PARQUET", "TEXTFILE"}:
        raise QueryFailed(f"NOT_SUPPORTED: pipekit twin UNLOAD supports format 'PARQUET' or 'TEXTFILE', not {fmt!r}")
    bucket, prefix = _split_s3(to)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
        raise QueryFailed(f"HIVE_PATH_ALREADY_EXISTS: Target directory for table already exists: {to}. "
                          "UNLOAD needs an empty location.", error_type=1003)
    buf = io.BytesIO()
    if fmt == "PARQUET":
        compression = options.get("compression", "snappy").lower()
        pq.write_table(table, buf, compression=compression)
        key = f"{prefix}{qid}_00000.{compression}.parquet" if compression != "none" else f"{prefix}{qid}_00000.parquet"
    else:
        pcsv.write_csv(table, buf, pcsv.WriteOptions(include_header=False,
                                                      delimiter=options.get("field_delimiter", ",")))
        key = f"{prefix}{qid}_00000.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    mb, mk = _split_s3(_join(location, f"{qid}-manifest.csv"))
    s3.put_object(Bucket=mb, Key=mk, Body=f"s3://{bucket}/{key}\n".encode())
