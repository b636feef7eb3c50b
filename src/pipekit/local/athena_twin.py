"""Twin operations for Athena: real SQL over the Glue tables' S3 data.

moto's Athena accepts queries but runs nothing. Here ``StartQueryExecution`` runs each statement in the
background the way Athena engine v3 would: catalog statements (SHOW, DESCRIBE) and the metadata API from
the Glue catalog (:mod:`pipekit.local.athena_catalog`); DDL, CTAS and INSERT INTO as catalog and S3
operations (:mod:`pipekit.local.athena_ddl`); queries translated from Trino by sqlglot with Trino's
grammar and naming (:mod:`pipekit.local.athena_sql`) and run by DuckDB over the tables' data read through
their SerDe (:mod:`pipekit.local.athena_read`), the result typed and printed as Trino does
(:mod:`pipekit.local.athena_format`). Results land where Athena puts them:
``<output>/<QueryExecutionId>.csv`` plus ``.csv.metadata`` for queries, ``<id>.txt`` for DDL and catalog
statements, in the call's output location or, when none is given or the workgroup enforces its own, the
workgroup's. ``UNLOAD (SELECT ...) TO 's3://...' WITH (format = ...)`` writes Parquet, ORC, JSON or
TEXTFILE there and a ``<qid>-manifest.csv`` in the output location. ``GetQueryExecution`` and
``GetQueryResults`` (with paging) follow the Athena API.

What still differs from Athena is listed in docs/aws.md ("What the twin still does differently from
Athena"), each item pinned by tests/local/test_athena_fidelity.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any

from pipekit.local import athena_catalog, athena_ddl, athena_sql
from pipekit.local.athena_catalog import QueryFailed
from pipekit.local.athena_format import QueryTable, column_info, type_id
from pipekit.local.athena_read import ident, join, split_s3
from pipekit.local.server import TwinContext, TwinFault, operation

__all__ = ["QueryFailed"]

_MODULE = "athena_twin"
_UNLOAD = re.compile(r"^\s*UNLOAD\s*\((?P<query>.*)\)\s*TO\s*'(?P<to>[^']+)'\s*WITH\s*\((?P<props>.*)\)\s*$",
                     re.IGNORECASE | re.DOTALL)


def _state(ctx: TwinContext) -> dict[str, Any]:
    return ctx.shared.setdefault(_MODULE, {"executions": {}, "results": {}, "update_counts": {},
                                           "lock": threading.RLock()})


def _athena(ctx: TwinContext) -> Any:
    from moto.athena.models import athena_backends

    return athena_backends[ctx.account][ctx.region]


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
        "StatementType": _statement_type(sql, kind),
        "SubstatementType": _substatement_type(sql, kind),
        "ResultConfiguration": {"OutputLocation": join(location, f"{qid}.{'txt' if _is_utility(sql) else 'csv'}")},
        "QueryExecutionContext": body.get("QueryExecutionContext") or {},
        "Status": {"State": "QUEUED", "SubmissionDateTime": now},
        "Statistics": {"EngineExecutionTimeInMillis": 0, "DataScannedInBytes": 0,
                       "TotalExecutionTimeInMillis": 0, "QueryQueueTimeInMillis": 0},
        "WorkGroup": wg_name,
        **({"ExecutionParameters": list(body["ExecutionParameters"])} if body.get("ExecutionParameters") else {}),
        "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3",
                          "EffectiveEngineVersion": "Athena engine version 3"},
    }
    state = _state(ctx)
    with state["lock"]:
        state["executions"][qid] = execution
    threading.Thread(target=_run, args=(execution, location, ctx), daemon=True, name=f"athena-{qid[:8]}").start()
    return {"QueryExecutionId": qid}


def _statement_type(sql: str, kind: str) -> str:
    """Athena's StatementType: DML for queries, UNLOAD, CTAS and INSERT; UTILITY for SHOW/DESCRIBE/EXPLAIN."""
    if kind in {"SELECT", "UNLOAD", "INSERT"} or re.match(r"^\s*CREATE\s+TABLE\b.*\bAS\b", _strip_comments(sql),
                                                           re.IGNORECASE | re.DOTALL):
        return "DML"
    return "UTILITY" if kind in {"SHOW", "DESCRIBE", "DESC", "EXPLAIN"} else "DDL"


_SUBSTATEMENTS = [
    (r"UNLOAD\b", "UNLOAD"), (r"INSERT\s+INTO\b", "INSERT"), (r"CREATE\s+TABLE\b.*\bAS\b", "CREATE_TABLE_AS_SELECT"),
    (r"CREATE\s+(EXTERNAL\s+)?TABLE\b", "CREATE_TABLE"), (r"CREATE\s+(OR\s+REPLACE\s+)?VIEW\b", "CREATE_VIEW"),
    (r"CREATE\s+(DATABASE|SCHEMA)\b", "CREATE_DATABASE"), (r"DROP\s+TABLE\b", "DROP_TABLE"),
    (r"DROP\s+VIEW\b", "DROP_VIEW"), (r"DROP\s+(DATABASE|SCHEMA)\b", "DROP_DATABASE"),
    (r"ALTER\s+TABLE\b.*\bADD\s+(IF\s+NOT\s+EXISTS\s+)?PARTITION", "ALTER_TABLE_ADD_PARTITION"),
    (r"ALTER\s+TABLE\b.*\bDROP\s+(IF\s+EXISTS\s+)?PARTITION", "ALTER_TABLE_DROP_PARTITION"),
    (r"MSCK\s+REPAIR\b", "MSCK_REPAIR_TABLE"), (r"SHOW\s+(DATABASES|SCHEMAS)\b", "SHOW_DATABASES"),
    (r"SHOW\s+TABLES\b", "SHOW_TABLES"), (r"SHOW\s+VIEWS\b", "SHOW_VIEWS"), (r"SHOW\s+COLUMNS\b", "SHOW_COLUMNS"),
    (r"SHOW\s+PARTITIONS\b", "SHOW_PARTITIONS"), (r"SHOW\s+CREATE\s+TABLE\b", "SHOW_CREATE_TABLE"),
    (r"SHOW\s+TBLPROPERTIES\b", "SHOW_TBLPROPERTIES"), (r"(DESCRIBE|DESC)\b", "DESCRIBE_TABLE"),
    (r"EXPLAIN\b", "EXPLAIN"),
]


def _is_utility(sql: str) -> bool:
    """True for statements whose result Athena writes as ``<qid>.txt``: DDL and catalog statements."""
    text = _strip_comments(sql).strip().rstrip(";").strip()
    return bool(athena_catalog.catalog_statement(text) or athena_ddl.ddl_statement(text))


def _substatement_type(sql: str, kind: str) -> str:
    """Athena's SubstatementType (``SELECT``, ``CREATE_TABLE_AS_SELECT``, ``SHOW_TABLES``...)."""
    text = _strip_comments(sql).strip()
    for pattern, name in _SUBSTATEMENTS:
        if re.match(pattern, text, re.IGNORECASE | re.DOTALL):
            return name
    return kind


def _bind_parameters(sql: str, params: list[str]) -> str:
    """Put ``ExecutionParameters`` in place of the ``?`` placeholders, in order (Athena passes them verbatim)."""
    parts = re.split(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")", sql)
    found = sum(p.count("?") for i, p in enumerate(parts) if i % 2 == 0)
    if found != len(params):
        raise QueryFailed(f"INVALID_PARAMETER_USAGE: Incorrect number of parameters: expected {found} but found "
                          f"{len(params)}", error_type=1006)
    values = iter(params)
    return "".join(re.sub(r"\?", lambda _: next(values), p) if i % 2 == 0 else p for i, p in enumerate(parts))


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
    columns, rows, header = _state(ctx)["results"].get(qid, ([], [], True))
    size = min(int(body.get("MaxResults") or 1000), 1000)
    start = int(body.get("NextToken") or 0)
    # Queries answer a header row first; DDL and catalog statements (Hive's engine) do not.
    all_rows = ([[c["Name"] for c in columns]] if columns and header else []) + rows
    page = all_rows[start:start + size]
    out: dict[str, Any] = {
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in page],
            "ResultSetMetadata": {"ColumnInfo": columns},
        },
        "UpdateCount": _state(ctx)["update_counts"].get(qid, 0),  # rows written by CTAS / INSERT INTO
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


def _connect() -> Any:
    import duckdb

    con = duckdb.connect()
    athena_sql.prepare(con)
    return con


def _execute(execution: dict[str, Any], location: str, ctx: TwinContext) -> int:
    sql = _strip_comments(execution["Query"]).strip().rstrip(";").strip()
    if execution.get("ExecutionParameters") or "?" in sql:
        sql = _bind_parameters(sql, list(execution.get("ExecutionParameters") or []))
    qid = execution["QueryExecutionId"]
    database = ((execution["QueryExecutionContext"] or {}).get("Database") or "default").lower()
    s3 = ctx.boto3_client("s3")
    catalog = athena_catalog.catalog_statement(sql)
    if catalog:
        columns, rows = athena_catalog.run_catalog_statement(ctx, catalog[0], catalog[1], database)
        _store(execution, ctx, s3, columns, rows, header=False)
        return 0
    ddl = athena_ddl.ddl_statement(sql)
    if ddl is not None:
        written: list[int] = []

        def run_and_count(q: str, db: str, s3_client: Any, c: TwinContext) -> tuple[QueryTable, int]:
            table, scanned = _query_table(q, db, s3_client, c)
            written.append(len(table.values))
            return table, scanned

        scanned = athena_ddl.run_ddl(ddl, sql, database, ctx, s3, run_and_count, location, qid)
        if ddl[0] in {"ctas", "insert"}:
            _state(ctx)["update_counts"][qid] = sum(written)
        _store(execution, ctx, s3, [], [], header=False)
        return scanned
    unload = _UNLOAD.match(sql)
    query = unload.group("query") if unload else sql
    explain = re.match(r"^EXPLAIN\s+(?:\((?P<opts>[^)]*)\)\s*)?(?P<q>.*)$", query, re.IGNORECASE | re.DOTALL)
    if explain:
        plan, scanned = _explain(explain.group("q"), database, s3, ctx)
        columns = [column_info("Query Plan", "varchar")]
        _store(execution, ctx, s3, columns, [[plan]], header=True)
        return scanned
    table, scanned = _query_table(query, database, s3, ctx)
    if unload:
        _write_unload(table, unload.group("to"), unload.group("props"), qid, location, s3)
        _state(ctx)["results"][qid] = ([], [], True)
        execution["Statistics"]["DataManifestLocation"] = join(location, f"{qid}-manifest.csv")
        return scanned
    columns = [column_info(n, t) for n, t in zip(table.names, table.types, strict=True)]
    _store(execution, ctx, s3, columns, table.text_rows(), header=True)
    return scanned


def _store(execution: dict[str, Any], ctx: TwinContext, s3: Any, columns: list[dict[str, Any]],
           rows: list[list[str | None]], header: bool) -> None:
    """Keep the result for GetQueryResults and write it where Athena does: ``<qid>.csv`` (+ metadata) for
    queries, ``<qid>.txt`` (tab-separated, no header) for DDL and catalog statements."""
    qid = execution["QueryExecutionId"]
    _state(ctx)["results"][qid] = (columns, rows, header)
    output = execution["ResultConfiguration"]["OutputLocation"]
    if not header:
        output = output[: -len(".csv")] + ".txt" if output.endswith(".csv") else output
        execution["ResultConfiguration"]["OutputLocation"] = output
        bucket, key = split_s3(output)
        text = "".join("\t".join("" if v is None else v for v in row) + "\n" for row in rows)
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="text/plain")
        return
    bucket, key = split_s3(output)
    s3.put_object(Bucket=bucket, Key=key, Body=_athena_csv(columns, rows).encode("utf-8"), ContentType="text/csv")
    s3.put_object(Bucket=bucket, Key=key + ".metadata",
                  Body=json.dumps({"QueryExecutionId": qid, "ColumnInfo": columns, "RowCount": len(rows)}).encode(),
                  ContentType="application/json")


def _strip_comments(sql: str) -> str:
    return re.sub(r"^\s*(--[^\n]*(\n|$)\s*)*", "", sql)


def _query_table(query: str, database: str, s3: Any, ctx: TwinContext) -> tuple[QueryTable, int]:
    """Run a Trino SELECT on DuckDB: names as Trino gives them (``_colN``), Trino's types (sums are bigint)."""
    import duckdb

    con = _connect()
    try:
        duck_sql, scanned, generated = athena_sql.translate(query, database, con, s3, ctx)
        try:
            relation = con.sql(duck_sql)
            names, types = list(relation.columns), list(relation.types)
            outputs = []
            for i, (name, typ) in enumerate(zip(names, types, strict=True)):
                final = f"_col{i}" if name in generated else name
                cast = "BIGINT" if type_id(typ) in {"hugeint", "uhugeint", "ubigint"} else None
                outputs.append((final, cast))
            if any(c for _, c in outputs) or [n for n, _ in outputs] != names:
                projection = ", ".join((f"CAST(#{i + 1} AS {c})" if c else f"#{i + 1}") + f" AS {ident(n)}"
                                       for i, (n, c) in enumerate(outputs))
                relation = con.sql(f"SELECT {projection} FROM ({duck_sql})")
                names, types = list(relation.columns), list(relation.types)
            arrow = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
            # One execution: the values come back from the Arrow result (DuckDB's own Python values).
            values = con.from_arrow(arrow).fetchall() if arrow.num_rows else []
            return QueryTable(names, types, values, arrow), scanned
        except duckdb.Error as exc:
            raise QueryFailed(athena_sql.athena_message(str(exc), query), error_type=athena_sql.error_type(str(exc))) from exc
    finally:
        con.close()


def _explain(query: str, database: str, s3: Any, ctx: TwinContext) -> tuple[str, int]:
    import duckdb

    con = _connect()
    try:
        duck_sql, scanned, _ = athena_sql.translate(query, database, con, s3, ctx)
        try:
            rows = con.sql(f"EXPLAIN {duck_sql}").fetchall()
        except duckdb.Error as exc:
            raise QueryFailed(athena_sql.athena_message(str(exc), query), error_type=athena_sql.error_type(str(exc))) from exc
        return "\n".join(str(r[-1]) for r in rows), scanned
    finally:
        con.close()


def _athena_csv(columns: list[dict[str, Any]], rows: list[list[str | None]]) -> str:
    """Athena's result format: header row, every value double-quoted, NULL as an empty unquoted field."""

    def q(v: str | None) -> str:
        return "" if v is None else '"' + v.replace('"', '""') + '"'

    lines = [",".join(q(c["Name"]) for c in columns)] + [",".join(q(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def _write_unload(table: QueryTable, to: str, props: str, qid: str, location: str, s3: Any) -> None:
    """UNLOAD: the result as PARQUET, ORC, JSON or TEXTFILE files under an empty ``to``, and a manifest."""
    options = {k.lower(): v for k, v in re.findall(r"(\w+)\s*=\s*'([^']*)'", props)}
    fmt = options.get("format", "").upper()
    if fmt not in {"PARQUET", "ORC", "AVRO", "JSON", "TEXTFILE"}:
        raise QueryFailed(f"INVALID_TABLE_PROPERTY: UNLOAD format must be one of PARQUET, ORC, AVRO, JSON, "
                          f"TEXTFILE, not {fmt!r}", error_type=1006)
    bucket, prefix = split_s3(to)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
        raise QueryFailed(f"HIVE_PATH_ALREADY_EXISTS: Target directory for table already exists: {to}. "
                          "UNLOAD needs an empty location.", error_type=1003)
    options.setdefault("field_delimiter", ",")
    uris = athena_ddl.write_files(table, fmt, bucket, prefix, f"{qid}_00000", s3, options)
    mb, mk = split_s3(join(location, f"{qid}-manifest.csv"))
    s3.put_object(Bucket=mb, Key=mk, Body="".join(u + "\n" for u in uris).encode())
