"""Athena: run a query in a workgroup, wait, page through results, and keep a Parquet copy via UNLOAD."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipekit.aws._calls import call
from pipekit.aws._client import client
from pipekit.errors import ConfigError, JobRunError


@dataclass
class QueryResult:
    """A finished query: its id, columns, rows (strings, None for NULL) and where the files landed."""

    query_id: str
    sql: str
    columns: list[str]
    types: list[str]
    rows: list[list[str | None]]
    csv_uri: str | None
    parquet_uri: str | None = None
    parquet_query_id: str | None = None
    scanned_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)

    def scalar(self) -> str | None:
        """The single value of a one-row, one-column result."""
        if len(self.rows) != 1 or len(self.columns) != 1:
            raise ConfigError(f"expected one value from {self.sql!r}, got {len(self.rows)} rows x {len(self.columns)} columns")
        return self.rows[0][0]


def start_query(sql: str, *, workgroup: str, database: str | None = None, output_location: str | None = None,
                session: Any | None = None) -> str:
    """StartQueryExecution in ``workgroup``; returns the QueryExecutionId."""
    kwargs: dict[str, Any] = {"QueryString": sql, "WorkGroup": workgroup}
    if database:
        kwargs["QueryExecutionContext"] = {"Database": database}
    if output_location:
        kwargs["ResultConfiguration"] = {"OutputLocation": output_location}
    return call(client("athena", session).start_query_execution,
                f"Athena workgroup {workgroup!r} (StartQueryExecution)", **kwargs)["QueryExecutionId"]


def wait_for_query(query_id: str, *, poll_s: float = 1.0, timeout_s: float = 1800.0,
                   session: Any | None = None, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll until the query ends; JobRunError with Athena's reason when it failed or was cancelled."""
    athena = client("athena", session)
    deadline = time.monotonic() + timeout_s
    while True:
        ex = call(athena.get_query_execution, f"Athena query {query_id} (GetQueryExecution)",
                  QueryExecutionId=query_id)["QueryExecution"]
        state = ex["Status"]["State"]
        if state == "SUCCEEDED":
            return ex
        if state in {"FAILED", "CANCELLED"}:
            reason = ex["Status"].get("StateChangeReason") or (ex["Status"].get("AthenaError") or {}).get("ErrorMessage")
            raise JobRunError(f"Athena query {query_id} {state}: {reason or 'no reason given'}",
                              hint=f"query was: {' '.join(ex.get('Query', '').split())[:300]}")
        if time.monotonic() > deadline:
            raise JobRunError(f"Athena query {query_id} still {state} after {timeout_s:.0f}s")
        sleep(poll_s)


def get_results(query_id: str, *, header: bool = True,
                session: Any | None = None) -> tuple[list[str], list[str], list[list[str | None]]]:
    """``(column names, column types, rows)`` of a finished query, all pages; drops the header row of SELECTs."""
    paginator = client("athena", session).get_paginator("get_query_results")
    names: list[str] = []
    types: list[str] = []
    rows: list[list[str | None]] = []
    first = True
    for page in paginator.paginate(QueryExecutionId=query_id):
        rs = page["ResultSet"]
        if not names:
            info = rs.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            names, types = [c["Name"] for c in info], [c.get("Type", "") for c in info]
        page_rows = [[d.get("VarCharValue") for d in r.get("Data", [])] for r in rs.get("Rows", [])]
        if first and header and page_rows and page_rows[0] == names:
            page_rows = page_rows[1:]  # Athena repeats the column names as the first row of a SELECT
        first = False
        rows.extend(page_rows)
    return names, types, rows


def _results_root(csv_uri: str) -> str:
    return csv_uri.rsplit("/", 1)[0] + "/"


def is_select(sql: str) -> bool:
    """True for a query UNLOAD can wrap (SELECT / WITH / VALUES)."""
    body = re.sub(r"^\s*(--[^\n]*\n\s*)*", "", sql).lstrip("(").lstrip()
    return body[:6].upper() in {"SELECT", "WITH ", "VALUES"} or body[:4].upper() == "WITH"


def run_query(
    sql: str,
    *,
    workgroup: str,
    database: str | None = None,
    output_location: str | None = None,
    parquet_copy: bool = True,
    poll_s: float = 1.0,
    timeout_s: float = 1800.0,
    session: Any | None = None,
) -> QueryResult:
    """Run ``sql``; its CSV lands in the results location, and for a SELECT a Parquet copy via UNLOAD beside it.

    The Parquet copy goes to ``<results location>/parquet/<query id>/`` (UNLOAD needs an empty prefix).
    """
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise ConfigError("the SQL query is empty")
    qid = start_query(sql, workgroup=workgroup, database=database, output_location=output_location, session=session)
    ex = wait_for_query(qid, poll_s=poll_s, timeout_s=timeout_s, session=session)
    names, types, rows = get_results(qid, session=session)
    csv_uri = ex.get("ResultConfiguration", {}).get("OutputLocation")
    result = QueryResult(qid, sql, names, types, rows, csv_uri,
                         scanned_bytes=int(ex.get("Statistics", {}).get("DataScannedInBytes", 0)))
    if parquet_copy and csv_uri and is_select(sql):
        target = f"{_results_root(csv_uri)}parquet/{qid}/"
        unload = f"UNLOAD ({sql}) TO '{target}' WITH (format = 'PARQUET', compression = 'SNAPPY')"
        uid = start_query(unload, workgroup=workgroup, database=database, output_location=output_location,
                          session=session)
        wait_for_query(uid, poll_s=poll_s, timeout_s=timeout_s, session=session)
        result.parquet_uri, result.parquet_query_id = target, uid
    return result
