"""The Glue Data Catalog as Athena sees it: catalog statements and the Athena metadata API on the twin.

Athena answers ``SHOW DATABASES``/``TABLES``/``COLUMNS``/``PARTITIONS``/``CREATE TABLE``/``VIEWS`` and
``DESCRIBE`` from the catalog (Hive-style results: no header row, ``string`` columns, a ``.txt`` file),
``information_schema`` (Trino's schemata/tables/columns) too, and ``GetTableMetadata``,
``ListTableMetadata``, ``ListDatabases``, ``GetDatabase`` read the same catalog. Everything here reads
moto's Glue through a boto3 client on the twin's own endpoint, so it sees exactly what ``aws glue`` sees.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from typing import Any

from pipekit.local.athena_format import column_info
from pipekit.local.server import TwinContext, TwinFault, operation

CATALOG = "awsdatacatalog"
Result = tuple[list[dict[str, Any]], list[list[str | None]]]


class QueryFailed(Exception):
    """A query failed the way Athena reports it: an Athena error type and a message."""

    def __init__(self, message: str, error_type: int = 1006, category: int = 2) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.category = category  # 1 system, 2 user, 3 other


def glue(ctx: TwinContext) -> Any:
    """A Glue client on the twin's endpoint (one per region, kept: clients are thread-safe)."""
    clients = ctx.shared.setdefault("athena_catalog.glue", {})
    if ctx.region not in clients:
        clients[ctx.region] = ctx.boto3_client("glue")
    return clients[ctx.region]


def _missing(exc: Exception) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") == "EntityNotFoundException"


def databases(ctx: TwinContext) -> list[dict[str, Any]]:
    """Every catalog database (Glue's order: by name)."""
    out: list[dict[str, Any]] = []
    for page in glue(ctx).get_paginator("get_databases").paginate():
        out.extend(page.get("DatabaseList", []))
    return sorted(out, key=lambda d: d["Name"])


def tables(ctx: TwinContext, database: str) -> list[dict[str, Any]]:
    """Every table (and view) of ``database``; SCHEMA_NOT_FOUND when there is no such database."""
    out: list[dict[str, Any]] = []
    try:
        for page in glue(ctx).get_paginator("get_tables").paginate(DatabaseName=database):
            out.extend(page.get("TableList", []))
    except Exception as exc:
        if _missing(exc):
            raise QueryFailed(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist", error_type=1301) from exc
        raise
    return sorted(out, key=lambda t: t["Name"])


def table(ctx: TwinContext, database: str, name: str) -> dict[str, Any]:
    """One catalog table; TABLE_NOT_FOUND (as Athena words it) when it is missing."""
    try:
        return glue(ctx).get_table(DatabaseName=database, Name=name)["Table"]
    except Exception as exc:
        if _missing(exc):
            raise QueryFailed(f"TABLE_NOT_FOUND: line 1:1: Table '{CATALOG}.{database}.{name}' does not exist",
                              error_type=1301) from exc
        raise


def partitions(ctx: TwinContext, database: str, name: str) -> list[dict[str, Any]]:
    """The table's registered partitions, in Glue's order."""
    out: list[dict[str, Any]] = []
    for page in glue(ctx).get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name):
        out.extend(page.get("Partitions", []))
    return out


def trino_type(glue_type: str) -> str:
    """The Trino spelling of a Hive/Glue column type (``string`` -> ``varchar``, ``int`` -> ``integer``)."""
    t = glue_type.strip().lower()
    simple = {"string": "varchar", "int": "integer", "float": "real", "binary": "varbinary",
              "timestamp": "timestamp(3)"}
    if t in simple:
        return simple[t]
    if t.startswith("array<"):
        return f"array({trino_type(t[6:-1])})"
    if t.startswith("map<"):
        key, value = _split_top(t[4:-1])
        return f"map({trino_type(key)}, {trino_type(value)})"
    if t.startswith("struct<"):
        fields = [f.split(":", 1) for f in _split_top_all(t[7:-1])]
        return "row(" + ", ".join(f"{n} {trino_type(ft)}" for n, ft in fields) + ")"
    return t


def _split_top_all(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*parts, cur.strip()] if cur.strip() else parts


def _split_top(text: str) -> tuple[str, str]:
    parts = _split_top_all(text)
    return parts[0], ",".join(parts[1:])


def view_sql(tbl: dict[str, Any]) -> str:
    """The SQL of a catalog view (Athena's ``/* Presto View: ... */`` encoding, or plain text)."""
    text = tbl.get("ViewOriginalText") or ""
    m = re.match(r"^/\*\s*Presto View:\s*(\S+)\s*\*/$", text.strip())
    if m:
        return str(json.loads(base64.b64decode(m.group(1)))["originalSql"])
    return text


def _columns(tbl: dict[str, Any]) -> list[dict[str, Any]]:
    return list((tbl.get("StorageDescriptor") or {}).get("Columns", []))


def _hive(names: list[str], rows: list[list[str | None]]) -> Result:
    """A Hive-DDL style result: ``string`` columns."""
    return [{**column_info(n, "varchar"), "Type": "string", "Precision": 0, "CaseSensitive": False}
            for n in names], rows


def _like(pattern: str | None, names: list[str]) -> list[str]:
    if not pattern:
        return names
    # Hive's SHOW ... LIKE takes '*' wildcards and '|' alternatives.
    alternatives = [p.strip().lower() for p in pattern.split("|")]
    return [n for n in names if any(fnmatch.fnmatchcase(n.lower(), p) for p in alternatives)]


_IDENT = r"[`\"]?([\w$-]+)[`\"]?"
_QUALIFIED = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"
_SHOW = [
    ("databases", re.compile(r"^SHOW\s+(?:DATABASES|SCHEMAS)(?:\s+(?:LIKE\s+)?'(?P<like>[^']*)')?$", re.I)),
    ("tables", re.compile(rf"^SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+{_IDENT})?(?:\s+(?:LIKE\s+)?'(?P<like>[^']*)')?$",
                          re.I)),
    ("views", re.compile(rf"^SHOW\s+VIEWS(?:\s+(?:IN|FROM)\s+{_IDENT})?(?:\s+LIKE\s+'(?P<like>[^']*)')?$", re.I)),
    ("columns", re.compile(rf"^SHOW\s+COLUMNS\s+(?:IN|FROM)\s+{_QUALIFIED}(?:\s+(?:IN|FROM)\s+{_IDENT})?$", re.I)),
    ("partitions", re.compile(rf"^SHOW\s+PARTITIONS\s+{_QUALIFIED}$", re.I)),
    ("create", re.compile(rf"^SHOW\s+CREATE\s+(?:TABLE|VIEW)\s+{_QUALIFIED}$", re.I)),
    ("tblproperties", re.compile(rf"^SHOW\s+TBLPROPERTIES\s+{_QUALIFIED}(?:\s*\(\s*'(?P<prop>[^']*)'\s*\))?$",
                                 re.I)),
    ("describe", re.compile(rf"^(?:DESCRIBE|DESC)(?:\s+(?:EXTENDED|FORMATTED))?\s+{_QUALIFIED}$", re.I)),
]


def catalog_statement(sql: str) -> tuple[str, re.Match[str]] | None:
    """Which catalog statement ``sql`` is (``tables``, ``describe``...) and its parse, or None."""
    text = " ".join(sql.split())
    for kind, pattern in _SHOW:
        m = pattern.match(text)
        if m:
            return kind, m
    return None


def _qualified(m: re.Match[str], database: str) -> tuple[str, str]:
    first, second = m.group(1), m.group(2)
    return ((first, second) if second else (database, first))


def run_catalog_statement(ctx: TwinContext, kind: str, m: re.Match[str], database: str) -> Result:
    """Answer one catalog statement from Glue the way Athena's Hive DDL engine prints it."""
    if kind == "databases":
        return _hive(["database_name"], [[n] for n in _like(m.group("like"), [d["Name"] for d in databases(ctx)])])
    if kind in {"tables", "views"}:
        db = (m.group(1) or database).lower()
        found = tables(ctx, db)
        if kind == "views":
            found = [t for t in found if t.get("TableType") == "VIRTUAL_VIEW"]
        names = _like(m.group("like"), [t["Name"] for t in found])
        return _hive(["tab_name" if kind == "tables" else "views"], [[n] for n in names])
    if kind == "columns":
        db, name = _qualified(m, database)
        db = (m.group(3) or db).lower()
        tbl = table(ctx, db, name.lower())
        cols = _columns(tbl) + list(tbl.get("PartitionKeys", []))
        return _hive(["field"], [[c["Name"]] for c in cols])
    db, name = _qualified(m, database)
    tbl = table(ctx, db.lower(), name.lower())
    if kind == "partitions":
        keys = [k["Name"] for k in tbl.get("PartitionKeys", [])]
        if not keys:
            raise QueryFailed(f"INVALID_TABLE_PROPERTY: Table {db}.{name} is not partitioned", error_type=1006)
        rows = sorted("/".join(f"{k}={v}" for k, v in zip(keys, p["Values"], strict=False))
                      for p in partitions(ctx, db.lower(), name.lower()))
        return _hive(["partition"], [[r] for r in rows])
    if kind == "create":
        return _hive(["createtab_stmt"], [[line] for line in show_create_table(tbl, db.lower()).splitlines()])
    if kind == "tblproperties":
        props = dict(sorted((tbl.get("Parameters") or {}).items()))
        wanted = m.group("prop")
        if wanted is not None:
            props = {wanted: props[wanted]} if wanted in props else {}
        return _hive(["prpt_name", "prpt_value"], [[k, v] for k, v in props.items()])
    return _hive(["col_name"], [[line] for line in describe(tbl)])


def _pad(*fields: str) -> str:
    return "\t".join(f"{f:<20}" for f in fields)


def describe(tbl: dict[str, Any]) -> list[str]:
    """Hive's DESCRIBE lines: name, type, comment padded to 20, then the partition section."""
    lines = [_pad(c["Name"], c.get("Type", "string"), c.get("Comment", "")) for c in _columns(tbl)]
    keys = list(tbl.get("PartitionKeys", []))
    lines += [_pad(c["Name"], c.get("Type", "string"), c.get("Comment", "")) for c in keys]
    if keys:
        lines += ["\t \t ", "# Partition Information\t \t ", _pad("# col_name", "data_type", "comment"), "\t \t "]
        lines += [_pad(c["Name"], c.get("Type", "string"), c.get("Comment", "")) for c in keys]
    return lines


def show_create_table(tbl: dict[str, Any], database: str) -> str:
    """``SHOW CREATE TABLE`` text in Athena's (Hive's) layout."""
    sd = tbl.get("StorageDescriptor") or {}
    serde = sd.get("SerdeInfo") or {}
    kind = "VIEW" if tbl.get("TableType") == "VIRTUAL_VIEW" else "EXTERNAL TABLE"
    if kind == "VIEW":
        return f"CREATE VIEW {database}.{tbl['Name']} AS\n{view_sql(tbl)}"
    cols = _columns(tbl)
    lines = [f"CREATE EXTERNAL TABLE `{database}`.`{tbl['Name']}`("]
    lines += [f"  `{c['Name']}` {c.get('Type', 'string')}{', ' if i < len(cols) - 1 else ')'}"
              for i, c in enumerate(cols)]
    keys = tbl.get("PartitionKeys") or []
    if keys:
        lines.append("PARTITIONED BY ( ")
        lines += [f"  `{c['Name']}` {c.get('Type', 'string')}{', ' if i < len(keys) - 1 else ')'}"
                  for i, c in enumerate(keys)]
    lines += ["ROW FORMAT SERDE ", f"  '{serde.get('SerializationLibrary', '')}' "]
    params = serde.get("Parameters") or {}
    if params:
        lines.append("WITH SERDEPROPERTIES ( ")
        items = sorted(params.items())
        lines += [f"  '{k}'='{v}'{', ' if i < len(items) - 1 else ') '}" for i, (k, v) in enumerate(items)]
    lines += ["STORED AS INPUTFORMAT ", f"  '{sd.get('InputFormat', '')}' ", "OUTPUTFORMAT ",
              f"  '{sd.get('OutputFormat', '')}'", "LOCATION", f"  '{sd.get('Location', '')}'"]
    props = sorted((tbl.get("Parameters") or {}).items())
    if props:
        lines.append("TBLPROPERTIES (")
        lines += [f"  '{k}'='{v}'{', ' if i < len(props) - 1 else ')'}" for i, (k, v) in enumerate(props)]
    return "\n".join(lines)


def information_schema(ctx: TwinContext, name: str) -> Any:
    """Trino's ``information_schema.<name>`` (schemata, tables, columns, views) over the catalog, as Arrow."""
    import pyarrow as pa

    dbs = [d["Name"] for d in databases(ctx)]
    if name == "schemata":
        names = [*dbs, "information_schema"]
        return pa.table({"catalog_name": [CATALOG] * len(names), "schema_name": names})
    rows: dict[str, list[Any]] = {}
    all_tables = [(db, t) for db in dbs for t in tables(ctx, db)]
    if name in {"tables", "views"}:
        if name == "views":
            all_tables = [(db, t) for db, t in all_tables if t.get("TableType") == "VIRTUAL_VIEW"]
            return pa.table({"table_catalog": [CATALOG] * len(all_tables), "table_schema": [d for d, _ in all_tables],
                             "table_name": [t["Name"] for _, t in all_tables],
                             "view_definition": [t.get("ViewOriginalText", "") for _, t in all_tables]})
        return pa.table({"table_catalog": [CATALOG] * len(all_tables), "table_schema": [d for d, _ in all_tables],
                         "table_name": [t["Name"] for _, t in all_tables],
                         "table_type": ["VIEW" if t.get("TableType") == "VIRTUAL_VIEW" else "BASE TABLE"
                                        for _, t in all_tables]})
    if name == "columns":
        for key in ["table_catalog", "table_schema", "table_name", "column_name", "ordinal_position",
                    "column_default", "is_nullable", "data_type", "comment", "extra_info"]:
            rows[key] = []
        for db, t in all_tables:
            cols = [(c, None) for c in _columns(t)] + [(c, "partition key") for c in t.get("PartitionKeys", [])]
            for i, (c, extra) in enumerate(cols, start=1):
                for key, value in [("table_catalog", CATALOG), ("table_schema", db), ("table_name", t["Name"]),
                                   ("column_name", c["Name"]), ("ordinal_position", i), ("column_default", None),
                                   ("is_nullable", "YES"), ("data_type", trino_type(c.get("Type", "string"))),
                                   ("comment", c.get("Comment")), ("extra_info", extra)]:
                    rows[key].append(value)
        return pa.table({k: pa.array(v, type=pa.int64() if k == "ordinal_position" else pa.string())
                         for k, v in rows.items()})
    raise QueryFailed(f"TABLE_NOT_FOUND: line 1:1: Table '{CATALOG}.information_schema.{name}' does not exist",
                      error_type=1301)


# ---------------------------------------------------------------- the Athena metadata API


def _check_catalog(body: dict[str, Any]) -> None:
    name = body.get("CatalogName") or ""
    if name.lower() != CATALOG:
        raise TwinFault("MetadataException", f"Catalog {name} not found")


def _page(items: list[Any], body: dict[str, Any], default: int = 50) -> tuple[list[Any], str | None]:
    start = int(body.get("NextToken") or 0)
    size = int(body.get("MaxResults") or default)
    return items[start:start + size], (str(start + size) if start + size < len(items) else None)


def _database_entry(db: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": db["Name"]}
    if db.get("Description"):
        out["Description"] = db["Description"]
    if db.get("Parameters"):
        out["Parameters"] = db["Parameters"]
    return out


def table_metadata(tbl: dict[str, Any]) -> dict[str, Any]:
    """Athena's ``TableMetadata`` for a Glue table: columns, partition keys, and the storage as parameters."""
    sd = tbl.get("StorageDescriptor") or {}
    serde = sd.get("SerdeInfo") or {}
    params: dict[str, str] = dict(tbl.get("Parameters") or {})
    if tbl.get("TableType") == "EXTERNAL_TABLE":
        params.setdefault("EXTERNAL", "TRUE")
    for key, value in [("inputformat", sd.get("InputFormat")), ("outputformat", sd.get("OutputFormat")),
                       ("location", sd.get("Location")), ("serde.serialization.lib", serde.get("SerializationLibrary"))]:
        if value:
            params[key] = value
    for key, value in (serde.get("Parameters") or {}).items():
        params[f"serde.param.{key}"] = value

    def cols(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in {"Name": c["Name"], "Type": c.get("Type", "string"),
                                   "Comment": c.get("Comment")}.items() if v is not None} for c in items]

    out: dict[str, Any] = {"Name": tbl["Name"], "TableType": tbl.get("TableType", "EXTERNAL_TABLE"),
                           "Columns": cols(sd.get("Columns", [])), "PartitionKeys": cols(tbl.get("PartitionKeys", [])),
                           "Parameters": params}
    for src, dst in [("CreateTime", "CreateTime"), ("LastAccessTime", "LastAccessTime")]:
        if tbl.get(src) is not None:
            out[dst] = tbl[src].timestamp() if hasattr(tbl[src], "timestamp") else tbl[src]
    return out


def _database_or_fault(ctx: TwinContext, name: str) -> dict[str, Any]:
    try:
        return glue(ctx).get_database(Name=name)["Database"]
    except Exception as exc:
        if _missing(exc):
            raise TwinFault("MetadataException", f"Database {name} not found.") from exc
        raise


@operation("AmazonAthena.ListDatabases")
def list_databases(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Every Glue database of the catalog, paged."""
    _check_catalog(body)
    page, token = _page([_database_entry(d) for d in databases(ctx)], body)
    return {"DatabaseList": page, **({"NextToken": token} if token else {})}


@operation("AmazonAthena.GetDatabase")
def get_database(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """One Glue database."""
    _check_catalog(body)
    return {"Database": _database_entry(_database_or_fault(ctx, body.get("DatabaseName", "")))}


@operation("AmazonAthena.GetTableMetadata")
def get_table_metadata(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """One table's metadata from Glue; MetadataException when the database or table is missing."""
    _check_catalog(body)
    db, name = body.get("DatabaseName", ""), body.get("TableName", "")
    _database_or_fault(ctx, db)
    try:
        tbl = glue(ctx).get_table(DatabaseName=db, Name=name)["Table"]
    except Exception as exc:
        if _missing(exc):
            raise TwinFault("MetadataException", f"Table {name} not found.") from exc
        raise
    return {"TableMetadata": table_metadata(tbl)}


@operation("AmazonAthena.ListTableMetadata")
def list_table_metadata(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """Metadata of every table in a database (optionally filtered by Expression, a regex), paged."""
    _check_catalog(body)
    db = body.get("DatabaseName", "")
    _database_or_fault(ctx, db)
    found = tables(ctx, db)
    expression = body.get("Expression")
    if expression:
        found = [t for t in found if re.fullmatch(expression, t["Name"])]
    page, token = _page([table_metadata(t) for t in found], body)
    return {"TableMetadataList": page, **({"NextToken": token} if token else {})}


_AWS_DATA_CATALOG = {"Name": "AwsDataCatalog", "Description": "AWS Glue Data Catalog", "Type": "GLUE",
                     "Parameters": {"catalog-id": "123456789012"}}


def _moto_athena(ctx: TwinContext) -> Any:
    from moto.athena.models import athena_backends

    return athena_backends[ctx.account][ctx.region]


@operation("AmazonAthena.ListDataCatalogs")
def list_data_catalogs(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """``AwsDataCatalog`` (always there in Athena) first, then the catalogs created with CreateDataCatalog."""
    created = [c for c in _moto_athena(ctx).list_data_catalogs() if c["CatalogName"].lower() != CATALOG]
    items = [{"CatalogName": "AwsDataCatalog", "Type": "GLUE"}, *created]
    page, token = _page(items, body)
    return {"DataCatalogsSummary": page, **({"NextToken": token} if token else {})}


@operation("AmazonAthena.GetDataCatalog")
def get_data_catalog(body: dict[str, Any], ctx: TwinContext) -> dict[str, Any]:
    """One data catalog; InvalidRequestException when there is no such catalog."""
    name = body.get("Name") or ""
    if name.lower() == CATALOG:
        return {"DataCatalog": {**_AWS_DATA_CATALOG, "Parameters": {"catalog-id": ctx.account}}}
    found = _moto_athena(ctx).get_data_catalog(name)
    if not found:
        raise TwinFault("InvalidRequestException", f"Catalog {name} was not found.")
    return {"DataCatalog": {k: v for k, v in found.items() if v is not None}}
