"""Athena DDL on the twin as catalog operations, and the writers CTAS, INSERT INTO and UNLOAD share.

``CREATE EXTERNAL TABLE``, ``CREATE [OR REPLACE] VIEW``, ``DROP TABLE``/``VIEW``, ``ALTER TABLE ADD``/``DROP
PARTITION``, ``MSCK REPAIR TABLE``, ``CREATE``/``DROP DATABASE`` change the Glue Data Catalog (moto's
Glue, through boto3 on the twin's endpoint). ``CREATE TABLE ... WITH (...) AS SELECT`` and ``INSERT INTO
... SELECT`` run the query, write its files to S3 (Parquet, ORC, JSON or TEXTFILE) and create or update the
table and its partitions. Views are stored the way Athena stores them: ``/* Presto View: <base64 JSON> */``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from pipekit.local import athena_catalog
from pipekit.local.athena_catalog import QueryFailed
from pipekit.local.athena_format import QueryTable
from pipekit.local.server import TwinContext

_DDL_FAILED = 1003
_NAME = r"[`\"]?([\w-]+)[`\"]?(?:\s*\.\s*[`\"]?([\w-]+)[`\"]?)?"
_PATTERNS = [
    ("create_external", re.compile(rf"^CREATE\s+EXTERNAL\s+TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_NAME}\s*\(", re.I)),
    ("ctas", re.compile(rf"^CREATE\s+TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_NAME}\s*(?:WITH\s*\((?P<props>.*?)\)\s*)?"
                        r"AS\s+(?P<query>.*?)(?P<nodata>\s+WITH\s+NO\s+DATA)?$", re.I | re.S)),
    ("create_view", re.compile(rf"^CREATE\s+(?P<replace>OR\s+REPLACE\s+)?VIEW\s+{_NAME}\s+AS\s+(?P<query>.*)$",
                               re.I | re.S)),
    ("drop", re.compile(rf"^DROP\s+(?P<what>TABLE|VIEW)\s+(?P<ie>IF\s+EXISTS\s+)?{_NAME}$", re.I)),
    ("add_partition", re.compile(rf"^ALTER\s+TABLE\s+{_NAME}\s+ADD\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<rest>PARTITION.*)$",
                                 re.I | re.S)),
    ("drop_partition", re.compile(rf"^ALTER\s+TABLE\s+{_NAME}\s+DROP\s+(?P<ie>IF\s+EXISTS\s+)?(?P<rest>PARTITION.*)$",
                                  re.I | re.S)),
    ("msck", re.compile(rf"^MSCK\s+REPAIR\s+TABLE\s+{_NAME}$", re.I)),
    ("insert", re.compile(rf"^INSERT\s+INTO\s+{_NAME}\s*(?:\((?P<cols>[^)]*)\)\s*)?(?P<query>(?:SELECT|WITH|VALUES|\().*)$",
                          re.I | re.S)),
    ("create_database", re.compile(r"^CREATE\s+(?:DATABASE|SCHEMA)\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?[`\"]?([\w-]+)[`\"]?"
                                   r"(?:\s+COMMENT\s+'(?P<comment>[^']*)')?(?:\s+LOCATION\s+'(?P<loc>[^']*)')?", re.I)),
    ("drop_database", re.compile(r"^DROP\s+(?:DATABASE|SCHEMA)\s+(?P<ie>IF\s+EXISTS\s+)?[`\"]?([\w-]+)[`\"]?"
                                 r"(?P<cascade>\s+CASCADE)?$", re.I)),
]

_TEXT_IN = "org.apache.hadoop.mapred.TextInputFormat"
_TEXT_OUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
_LAZY = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
_FORMATS = {
    "PARQUET": ("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe", "parquet"),
    "ORC": ("org.apache.hadoop.hive.ql.io.orc.OrcInputFormat", "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcSerde", "orc"),
    "JSON": (_TEXT_IN, _TEXT_OUT, "org.openx.data.jsonserde.JsonSerDe", "json"),
    "TEXTFILE": (_TEXT_IN, _TEXT_OUT, _LAZY, "csv"),
}
_FORMATS["JSONFILE"] = _FORMATS["JSON"]

QueryRunner = Callable[[str, str, Any, TwinContext], tuple[Any, int]]


def ddl_statement(sql: str) -> tuple[str, re.Match[str]] | None:
    """Which DDL statement ``sql`` is and its parse, or None for anything else."""
    text = sql.strip()
    for kind, pattern in _PATTERNS:
        m = pattern.match(text)
        if m:
            return kind, m
    return None


def _names(m: re.Match[str], database: str, first: int = 1) -> tuple[str, str]:
    a, b = m.group(first), m.group(first + 1)
    return ((a.lower(), b.lower()) if b else (database, a.lower()))


def _client_error(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def run_ddl(ddl: tuple[str, re.Match[str]], sql: str, database: str, ctx: TwinContext, s3: Any,
            run_query: QueryRunner, result_location: str, qid: str) -> int:
    """Apply one DDL statement to the catalog (and S3 for CTAS/INSERT); returns bytes scanned."""
    kind, m = ddl
    glue = athena_catalog.glue(ctx)
    if kind == "create_database":
        name = m.group(2).lower()
        try:
            glue.create_database(DatabaseInput={k: v for k, v in {"Name": name, "Description": m.group("comment"),
                                                                  "LocationUri": m.group("loc")}.items() if v})
        except Exception as exc:
            if _client_error(exc) != "AlreadyExistsException" or not m.group("ine"):
                raise QueryFailed(f"FAILED: AlreadyExistsException: Database {name} already exists",
                                  error_type=_DDL_FAILED) from exc
        return 0
    if kind == "drop_database":
        name = m.group(2).lower()
        try:
            if athena_catalog.tables(ctx, name) and not m.group("cascade"):
                raise QueryFailed(f"FAILED: InvalidOperationException: Database {name} is not empty. "
                                  "One or more tables exist.", error_type=_DDL_FAILED)
            glue.delete_database(Name=name)
        except QueryFailed as exc:
            if "SCHEMA_NOT_FOUND" in str(exc) and m.group("ie"):
                return 0
            raise
        return 0
    if kind == "create_external":
        _create_external(sql, m, database, glue)
        return 0
    if kind == "create_view":
        db, name = _names(m, database, 2)
        return _create_view(db, name, m.group("query"), bool(m.group("replace")), database, ctx, s3, run_query, glue)
    if kind == "drop":
        db, name = _names(m, database, 3)
        try:
            tbl = athena_catalog.table(ctx, db, name)
        except QueryFailed:
            if m.group("ie"):
                return 0
            what = "View" if m.group("what").upper() == "VIEW" else "Table"
            raise QueryFailed(f"{'VIEW' if what == 'View' else 'TABLE'}_NOT_FOUND: line 1:1: {what} "
                              f"'{athena_catalog.CATALOG}.{db}.{name}' does not exist", error_type=1301) from None
        is_view = tbl.get("TableType") == "VIRTUAL_VIEW"
        if is_view != (m.group("what").upper() == "VIEW"):
            raise QueryFailed(f"FAILED: SemanticException [Error 10137]: Cannot drop a {'view' if is_view else 'table'}"
                              f" with DROP {m.group('what').upper()}", error_type=_DDL_FAILED)
        glue.delete_table(DatabaseName=db, Name=name)  # like Athena: the data stays in S3
        return 0
    if kind in {"add_partition", "drop_partition"}:
        db, name = _names(m, database)
        tbl = athena_catalog.table(ctx, db, name)
        specs = _partition_specs(m.group("rest"))
        keys = [k["Name"] for k in tbl.get("PartitionKeys", [])]
        if not keys:
            raise QueryFailed(f"FAILED: SemanticException table is not partitioned but partition spec exists: "
                              f"{specs[0][0] if specs else ''}", error_type=_DDL_FAILED)
        for values, location in specs:
            missing = [k for k in keys if k not in values]
            if missing:
                raise QueryFailed(f"FAILED: ValidationException: partition spec is missing {missing}",
                                  error_type=_DDL_FAILED)
            ordered = [values[k] for k in keys]
            if kind == "add_partition":
                _add_partition(glue, db, tbl, ordered, location, if_not_exists=bool(m.group("ine")))
            else:
                try:
                    glue.delete_partition(DatabaseName=db, TableName=name, PartitionValues=ordered)
                except Exception as exc:
                    if not m.group("ie"):
                        raise QueryFailed(f"FAILED: SemanticException [Error 10006]: Partition not found "
                                          f"{values}", error_type=_DDL_FAILED) from exc
        return 0
    if kind == "msck":
        db, name = _names(m, database)
        _msck(glue, db, athena_catalog.table(ctx, db, name), ctx, s3)
        return 0
    if kind == "ctas":
        db, name = _names(m, database, 2)
        return _ctas(db, name, m, database, ctx, s3, run_query, glue, result_location, qid)
    if kind == "insert":
        db, name = _names(m, database)
        return _insert(db, name, m.group("query"), database, ctx, s3, run_query, glue, qid)
    raise QueryFailed(f"NOT_SUPPORTED: {kind}", error_type=1006)


# ---------------------------------------------------------------- CREATE EXTERNAL TABLE


def _balanced(text: str, start: int) -> tuple[str, int]:
    """The text inside the parenthesis opening at ``text[start]`` and the index after its close."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
        i += 1
    raise QueryFailed("SYNTAX_ERROR: line 1:1: mismatched input '<EOF>'. Expecting: ')'", error_type=1004)


def _split(text: str) -> list[str]:
    parts, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*parts, cur.strip()] if cur.strip() else parts


def _column_defs(text: str) -> list[dict[str, str]]:
    out = []
    for item in _split(text):
        m = re.match(r"^[`\"]?([\w$-]+)[`\"]?\s+(.+?)(?:\s+COMMENT\s+'((?:[^']|'')*)')?$", item, re.I | re.S)
        if not m:
            raise QueryFailed(f"SYNTAX_ERROR: line 1:1: cannot read column definition '{item}'", error_type=1004)
        col = {"Name": m.group(1).lower(), "Type": re.sub(r"\s+", "", m.group(2)).lower()}
        if m.group(3):
            col["Comment"] = m.group(3)
        out.append(col)
    return out


def _props(text: str | None) -> dict[str, str]:
    return {k: v for k, v in re.findall(r"'([^']*)'\s*=\s*'([^']*)'", text or "")}


def _create_external(sql: str, m: re.Match[str], database: str, glue: Any) -> None:
    db, name = _names(m, database, 2)
    cols_text, pos = _balanced(sql, m.end() - 1)
    rest = sql[pos:]
    columns = _column_defs(cols_text)
    keys: list[dict[str, str]] = []
    pm = re.search(r"PARTITIONED\s+BY\s*\(", rest, re.I)
    if pm:
        keys_text, _ = _balanced(rest, pm.end() - 1)
        keys = _column_defs(keys_text)
    serde_lib, serde_params = _LAZY, {}
    sm = re.search(r"ROW\s+FORMAT\s+SERDE\s+'([^']+)'", rest, re.I)
    if sm:
        serde_lib = sm.group(1)
    wm = re.search(r"WITH\s+SERDEPROPERTIES\s*\(", rest, re.I)
    if wm:
        serde_params = _props(_balanced(rest, wm.end() - 1)[0])
    for clause, key in [("FIELDS TERMINATED BY", "field.delim"), ("ESCAPED BY", "escape.delim"),
                        ("COLLECTION ITEMS TERMINATED BY", "collection.delim"), ("MAP KEYS TERMINATED BY", "mapkey.delim"),
                        ("LINES TERMINATED BY", "line.delim"), ("NULL DEFINED AS", "serialization.null.format")]:
        cm = re.search(clause.replace(" ", r"\s+") + r"\s+'((?:[^'\\]|\\.)*)'", rest, re.I)
        if cm:
            value = cm.group(1).encode().decode("unicode_escape")
            serde_params[key] = value
            if key == "field.delim":
                serde_params["serialization.format"] = value
    input_format, output_format = _TEXT_IN, _TEXT_OUT
    stored = re.search(r"STORED\s+AS\s+(\w+)", rest, re.I)
    classification = "csv"
    if stored and stored.group(1).upper() == "INPUTFORMAT":
        io_m = re.search(r"INPUTFORMAT\s+'([^']+)'\s+OUTPUTFORMAT\s+'([^']+)'", rest, re.I)
        if io_m:
            input_format, output_format = io_m.group(1), io_m.group(2)
    elif stored:
        fmt = _FORMATS.get(stored.group(1).upper())
        if fmt is None:
            raise QueryFailed(f"NOT_SUPPORTED: STORED AS {stored.group(1)} on the pipekit twin", error_type=1006)
        input_format, output_format = fmt[0], fmt[1]
        if not sm:
            serde_lib = fmt[2]
        classification = fmt[3]
    lm = re.search(r"LOCATION\s+'([^']+)'", rest, re.I)
    if not lm:
        raise QueryFailed("FAILED: SemanticException an external table needs LOCATION 's3://...'",
                          error_type=_DDL_FAILED)
    tm = re.search(r"TBLPROPERTIES\s*\(", rest, re.I)
    params = {"EXTERNAL": "TRUE", "classification": classification}
    if tm:
        params.update(_props(_balanced(rest, tm.end() - 1)[0]))
    table_input = {
        "Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": params, "PartitionKeys": keys,
        "StorageDescriptor": {"Columns": columns, "Location": lm.group(1), "InputFormat": input_format,
                              "OutputFormat": output_format,
                              "SerdeInfo": {"SerializationLibrary": serde_lib, "Parameters": serde_params}},
    }
    try:
        glue.create_table(DatabaseName=db, TableInput=table_input)
    except Exception as exc:
        code = _client_error(exc)
        if code == "AlreadyExistsException" and m.group("ine"):
            return
        if code == "AlreadyExistsException":
            raise QueryFailed(f"FAILED: AlreadyExistsException: Table {db}.{name} already exists",
                              error_type=_DDL_FAILED) from exc
        if code == "EntityNotFoundException":
            raise QueryFailed(f"FAILED: SemanticException [Error 10072]: Database does not exist: {db}",
                              error_type=_DDL_FAILED) from exc
        raise


# ---------------------------------------------------------------- views


def _create_view(db: str, name: str, query: str, replace: bool, database: str, ctx: TwinContext, s3: Any,
                 run_query: QueryRunner, glue: Any) -> int:
    table, scanned = run_query(f"SELECT * FROM ({query}) LIMIT 0", db, s3, ctx)  # checks the query, finds columns
    columns = [{"name": n, "type": athena_catalog_type(t)} for n, t in zip(table.names, table.types, strict=True)]
    encoded = base64.b64encode(json.dumps({"originalSql": query, "catalog": "awsdatacatalog", "schema": db,
                                           "columns": columns}).encode()).decode()
    table_input = {
        "Name": name, "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": f"/* Presto View: {encoded} */", "ViewExpandedText": "/* Presto View */",
        "StorageDescriptor": {"Columns": [{"Name": c["name"], "Type": _hive_type(c["type"])} for c in columns],
                              "SerdeInfo": {}},
        "PartitionKeys": [],
    }
    try:
        existing = glue.get_table(DatabaseName=db, Name=name)["Table"]
    except Exception:
        existing = None
    if existing is not None:
        if not replace:
            raise QueryFailed(f"ALREADY_EXISTS: line 1:1: View '{athena_catalog.CATALOG}.{db}.{name}' already exists",
                              error_type=_DDL_FAILED)
        if existing.get("TableType") != "VIRTUAL_VIEW":
            raise QueryFailed(f"TABLE_ALREADY_EXISTS: line 1:1: Table '{athena_catalog.CATALOG}.{db}.{name}' "
                              "already exists", error_type=_DDL_FAILED)
        glue.update_table(DatabaseName=db, TableInput=table_input)
    else:
        glue.create_table(DatabaseName=db, TableInput=table_input)
    return scanned


def athena_catalog_type(duck_type: Any) -> str:
    """Trino's full type spelling for a DuckDB type (``varchar``, ``array(integer)``, ``decimal(10,2)``)."""
    from pipekit.local.athena_format import athena_type, children, type_id

    kind = type_id(duck_type)
    kids = children(duck_type)
    if kind in {"list", "array"} and kids:
        return f"array({athena_catalog_type(kids[0][1])})"
    if kind == "map" and len(kids) > 1:
        return f"map({athena_catalog_type(kids[0][1])}, {athena_catalog_type(kids[1][1])})"
    if kind == "struct":
        return "row(" + ", ".join(f"{n} {athena_catalog_type(t)}" for n, t in kids) + ")"
    if kind == "decimal":
        return str(duck_type).lower().replace(" ", "")
    name = athena_type(duck_type)
    return "real" if name == "float" else name


def _hive_type(trino: str) -> str:
    t = trino.strip().lower()
    if t.startswith("array("):
        return f"array<{_hive_type(t[6:-1])}>"
    if t.startswith("map("):
        parts = _split(t[4:-1])
        return f"map<{_hive_type(parts[0])},{_hive_type(','.join(parts[1:]))}>"
    if t.startswith("row("):
        fields = [p.split(" ", 1) for p in _split(t[4:-1])]
        return "struct<" + ",".join(f"{n}:{_hive_type(ft)}" for n, ft in fields) + ">"
    return {"varchar": "string", "integer": "int", "real": "float", "varbinary": "binary",
            "timestamp with time zone": "timestamp"}.get(t, t)


# ---------------------------------------------------------------- partitions


def _partition_specs(text: str) -> list[tuple[dict[str, str], str | None]]:
    specs = []
    for m in re.finditer(r"PARTITION\s*\(([^)]*)\)(?:\s*LOCATION\s+'([^']+)')?", text, re.I):
        values = {k.lower(): v for k, v in re.findall(r"[`\"]?(\w+)[`\"]?\s*=\s*'?([^',)]*)'?", m.group(1))}
        specs.append(({k: v.strip() for k, v in values.items()}, m.group(2)))
    if not specs:
        raise QueryFailed("SYNTAX_ERROR: line 1:1: expected PARTITION (key = 'value', ...)", error_type=1004)
    return specs


def _add_partition(glue: Any, db: str, tbl: dict[str, Any], values: list[str], location: str | None,
                   if_not_exists: bool) -> None:
    sd = dict(tbl.get("StorageDescriptor") or {})
    keys = [k["Name"] for k in tbl.get("PartitionKeys", [])]
    sd["Location"] = location or (sd.get("Location", "").rstrip("/") + "/" +
                                  "/".join(f"{k}={v}" for k, v in zip(keys, values, strict=True)) + "/")
    try:
        glue.create_partition(DatabaseName=db, TableName=tbl["Name"],
                              PartitionInput={"Values": values, "StorageDescriptor": sd})
    except Exception as exc:
        if _client_error(exc) == "AlreadyExistsException":
            if if_not_exists:
                return
            raise QueryFailed(f"FAILED: AlreadyExistsException: Partition already exists: {values}",
                              error_type=_DDL_FAILED) from exc
        raise


def _msck(glue: Any, db: str, tbl: dict[str, Any], ctx: TwinContext, s3: Any) -> None:
    """Register every ``k=v/...`` folder under the table's location that the catalog lacks (Hive's rule:
    folders must follow the partition keys in order)."""
    keys = [k["Name"] for k in tbl.get("PartitionKeys", [])]
    if not keys:
        return
    location = (tbl.get("StorageDescriptor") or {}).get("Location", "")
    m = re.match(r"^s3://([^/]+)/?(.*)$", location)
    if not m:
        return
    bucket, prefix = m.group(1), m.group(2)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    known = {tuple(p["Values"]) for p in athena_catalog.partitions(ctx, db, tbl["Name"])}
    found: dict[tuple[str, ...], str] = {}
    pattern = re.compile("^" + "/".join(rf"{re.escape(k)}=([^/]+)" for k in keys) + "/", re.I)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            pm = pattern.match(obj["Key"][len(prefix):])
            if pm:
                found.setdefault(tuple(pm.groups()), f"s3://{bucket}/{prefix}{pm.group(0)}")
    for values, loc in sorted(found.items()):
        if values not in known:
            _add_partition(glue, db, tbl, list(values), loc, if_not_exists=True)


# ---------------------------------------------------------------- CTAS, INSERT INTO, UNLOAD writers


def write_files(table: Any, fmt: str, bucket: str, prefix: str, stem: str, s3: Any,
                options: dict[str, str] | None = None) -> list[str]:
    """Write a query result as Athena does for CTAS/INSERT/UNLOAD: one file under ``prefix`` (GZIP unless
    ``compression`` says otherwise; ZLIB for ORC, DEFLATE for Avro); returns its URI."""
    import pyarrow.orc as orc
    import pyarrow.parquet as pq

    options = {k.lower(): v for k, v in (options or {}).items()}
    fmt = fmt.upper()
    compression = (options.get("compression") or options.get("write_compression") or "").lower()
    buf = io.BytesIO()
    arrow = table.arrow
    if fmt == "PARQUET":
        codec = compression or "gzip"
        pq.write_table(arrow, buf, compression="none" if codec == "none" else codec)
        key = f"{prefix}{stem}.{codec}.parquet" if codec != "none" else f"{prefix}{stem}.parquet"
    elif fmt == "ORC":
        codec = compression or "zlib"
        orc.write_table(arrow, buf, compression="uncompressed" if codec == "none" else codec)
        key = f"{prefix}{stem}.orc"
    elif fmt == "AVRO":
        codec = compression or "deflate"  # DEFLATE is the codec Athena names for Avro (compression-formats)
        if codec not in {"deflate", "none"}:
            raise QueryFailed(f"INVALID_TABLE_PROPERTY: compression '{codec}' for AVRO on the pipekit twin "
                              "(DEFLATE or NONE)", error_type=1006)
        _write_avro(arrow, buf, codec="null" if codec == "none" else codec)
        key = f"{prefix}{stem}.avro"
    elif fmt in {"JSON", "JSONFILE"}:
        for row in arrow.to_pylist():
            buf.write((json.dumps({k: v for k, v in row.items() if v is not None}, default=str) + "\n").encode())
        key = f"{prefix}{stem}.json"
    elif fmt == "TEXTFILE":
        delim = options.get("field_delimiter", "\x01")
        for row in table.text_rows():
            buf.write((delim.join("\\N" if v is None else v for v in row) + "\n").encode())
        key = f"{prefix}{stem}"
    else:
        raise QueryFailed(f"NOT_SUPPORTED: format '{fmt}' is not supported by the pipekit twin "
                          "(PARQUET, ORC, AVRO, JSON, TEXTFILE are)", error_type=1006)
    body = buf.getvalue()
    # GZIP is Athena's default write compression for Parquet and text files (ZLIB for ORC).
    if fmt in {"JSON", "JSONFILE", "TEXTFILE"} and compression in {"", "gzip"}:
        import gzip

        body, key = gzip.compress(body), key + ".gz"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return [f"s3://{bucket}/{key}"]


def _avro_type(field: Any) -> Any:
    """The Avro schema of an Arrow field, nullable (Athena's columns all are)."""
    import pyarrow as pa

    t = field.type
    if pa.types.is_boolean(t):
        base: Any = "boolean"
    elif pa.types.is_integer(t):
        base = "long" if t.bit_width > 32 else "int"
    elif pa.types.is_float32(t):
        base = "float"
    elif pa.types.is_floating(t):
        base = "double"
    elif pa.types.is_timestamp(t):
        base = {"type": "long", "logicalType": "timestamp-micros"}
    elif pa.types.is_date(t):
        base = {"type": "int", "logicalType": "date"}
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        base = "bytes"
    else:
        base = "string"  # varchar, decimal (as its text), and anything nested, as Athena prints it
    return ["null", base]


def _write_avro(arrow: Any, buf: io.BytesIO, *, codec: str) -> None:
    """An Avro object container file of ``arrow``'s rows (fastavro), one nullable field per column."""
    import fastavro
    import pyarrow as pa

    fields = [{"name": f.name, "type": _avro_type(f)} for f in arrow.schema]
    stringly = {f.name for f in arrow.schema if _avro_type(f)[1] == "string" and not pa.types.is_string(f.type)
                and not pa.types.is_large_string(f.type)}
    rows = ({k: (None if v is None else str(v)) if k in stringly else v for k, v in row.items()}
            for row in arrow.to_pylist())
    schema = fastavro.parse_schema({"type": "record", "name": "athena_unload", "fields": fields})
    fastavro.writer(buf, schema, rows, codec=codec)


def _empty_prefix(s3: Any, location: str) -> tuple[str, str]:
    m = re.match(r"^s3://([^/]+)/?(.*)$", location)
    if not m:
        raise QueryFailed(f"INVALID_TABLE_PROPERTY: not an s3:// location: {location}", error_type=1006)
    bucket, prefix = m.group(1), m.group(2)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
        raise QueryFailed(f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{location}' already exists: "
                          f"{location}. You may need to manually clean the data at location before retrying.",
                          error_type=_DDL_FAILED)
    return bucket, prefix


def _trino_props(text: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for m in re.finditer(r"(\w+)\s*=\s*(ARRAY\s*\[[^\]]*\]|'[^']*'|[\w.]+)", text or "", re.I):
        value = m.group(2)
        if value.upper().startswith("ARRAY"):
            props[m.group(1).lower()] = re.findall(r"'([^']*)'", value)
        else:
            props[m.group(1).lower()] = value.strip("'")
    return props


def _storage(fmt: str, location: str, columns: list[dict[str, str]], delim: str) -> dict[str, Any]:
    in_f, out_f, serde, _ = _FORMATS[fmt]
    params = {"field.delim": delim, "serialization.format": delim} if fmt == "TEXTFILE" else {}
    return {"Columns": columns, "Location": location, "InputFormat": in_f, "OutputFormat": out_f,
            "SerdeInfo": {"SerializationLibrary": serde, "Parameters": params}}


def _split_by_partition(table: Any, keys: list[str]) -> list[tuple[list[str], Any]]:
    """Rows of ``table`` grouped by the text of their partition key values (keys are the last columns)."""
    import pyarrow as pa

    if not keys:
        return [([], table)]
    key_idx = [table.names.index(k) for k in keys]
    text = table.text_rows()
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(text):
        groups.setdefault(tuple("__HIVE_DEFAULT_PARTITION__" if row[j] is None else str(row[j]) for j in key_idx),
                          []).append(i)
    keep = [i for i, n in enumerate(table.names) if n not in keys]
    out = []
    for values, rows in groups.items():
        arrow = table.arrow.take(pa.array(rows)).select(keep)
        out.append((list(values), QueryTable([table.names[i] for i in keep], [table.types[i] for i in keep],
                                       [tuple(table.values[r][i] for i in keep) for r in rows], arrow)))
    return out


def _ctas(db: str, name: str, m: re.Match[str], database: str, ctx: TwinContext, s3: Any, run_query: QueryRunner,
          glue: Any, result_location: str, qid: str) -> int:
    props = _trino_props(m.group("props"))
    try:
        glue.get_table(DatabaseName=db, Name=name)
        if m.group("ine"):
            return 0
        raise QueryFailed(f"TABLE_ALREADY_EXISTS: line 1:1: Table '{athena_catalog.CATALOG}.{db}.{name}' "
                          "already exists", error_type=_DDL_FAILED)
    except QueryFailed:
        raise
    except Exception as exc:
        if _client_error(exc) != "EntityNotFoundException":
            raise
    fmt = str(props.get("format", "PARQUET")).upper()
    if fmt not in _FORMATS:
        raise QueryFailed(f"NOT_SUPPORTED: CTAS format '{fmt}' on the pipekit twin (PARQUET, ORC, JSON, TEXTFILE)",
                          error_type=1006)
    location = str(props.get("external_location") or f"{result_location.rstrip('/')}/tables/{qid}/")
    bucket, prefix = _empty_prefix(s3, location)
    table, scanned = run_query(m.group("query"), database, s3, ctx)
    keys = [k.lower() for k in props.get("partitioned_by", [])]
    missing = [k for k in keys if k not in table.names]
    if missing:
        raise QueryFailed(f"INVALID_TABLE_PROPERTY: Partition columns {missing} not present in the query",
                          error_type=1006)
    if keys and table.names[-len(keys):] != keys:
        raise QueryFailed("HIVE_COLUMN_ORDER_MISMATCH: Partition keys must be the last columns in the table "
                          "and in the same order as the table properties", error_type=1006)
    delim = str(props.get("field_delimiter", "\x01"))
    options = {"compression": str(props.get("write_compression") or props.get("parquet_compression") or ""),
               "field_delimiter": delim}
    cols = [{"Name": n, "Type": _hive_type(athena_catalog_type(t))} for n, t in zip(table.names, table.types, strict=True)
            if n not in keys]
    key_cols = [{"Name": n, "Type": _hive_type(athena_catalog_type(table.types[table.names.index(n)]))} for n in keys]
    table_input = {"Name": name, "TableType": "EXTERNAL_TABLE", "PartitionKeys": key_cols,
                   "Parameters": {"EXTERNAL": "TRUE", "classification": _FORMATS[fmt][3], "has_encrypted_data": "false"},
                   "StorageDescriptor": _storage(fmt, location, cols, delim)}
    parts = [] if m.group("nodata") else _split_by_partition(table, keys)
    glue.create_table(DatabaseName=db, TableInput=table_input)
    tbl = glue.get_table(DatabaseName=db, Name=name)["Table"]
    for values, sub in parts:
        sub_prefix = prefix + "".join(f"{k}={v}/" for k, v in zip(keys, values, strict=True))
        write_files(sub, fmt, bucket, sub_prefix, f"{qid}_{uuid.uuid4().hex[:8]}", s3, options)
        if keys:
            _add_partition(glue, db, tbl, values, f"s3://{bucket}/{sub_prefix}", if_not_exists=True)
    return scanned


def _format_of(tbl: dict[str, Any]) -> str:
    sd = tbl.get("StorageDescriptor") or {}
    lib = ((sd.get("SerdeInfo") or {}).get("SerializationLibrary") or "").lower()
    if "parquet" in lib:
        return "PARQUET"
    if "orc" in lib:
        return "ORC"
    if "json" in lib:
        return "JSON"
    if "lazysimpleserde" in lib:
        return "TEXTFILE"
    raise QueryFailed(f"NOT_SUPPORTED: INSERT INTO a table with SerDe {lib or 'unknown'} on the pipekit twin",
                      error_type=1006)


def _insert(db: str, name: str, query: str, database: str, ctx: TwinContext, s3: Any, run_query: QueryRunner,
            glue: Any, qid: str) -> int:
    tbl = athena_catalog.table(ctx, db, name)
    if tbl.get("TableType") == "VIRTUAL_VIEW":
        raise QueryFailed(f"NOT_SUPPORTED: Inserting into views is not supported: {db}.{name}", error_type=1006)
    fmt = _format_of(tbl)
    sd = tbl.get("StorageDescriptor") or {}
    cols = [c["Name"] for c in sd.get("Columns", [])]
    keys = [k["Name"] for k in tbl.get("PartitionKeys", [])]
    table, scanned = run_query(query, database, s3, ctx)
    if len(table.names) != len(cols) + len(keys):
        raise QueryFailed(f"TYPE_MISMATCH: line 1:1: Insert query has mismatched column types: Table has "
                          f"{len(cols) + len(keys)} columns, query has {len(table.names)}", error_type=1006)
    table.names = cols + keys  # INSERT matches by position, like Trino
    if hasattr(table, "arrow"):
        table.arrow = table.arrow.rename_columns(table.names)
    m = re.match(r"^s3://([^/]+)/?(.*)$", sd.get("Location", ""))
    if not m:
        raise QueryFailed(f"INVALID_TABLE_PROPERTY: table {db}.{name} has no s3:// location", error_type=1006)
    bucket, prefix = m.group(1), m.group(2)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    delim = ((sd.get("SerdeInfo") or {}).get("Parameters") or {}).get("field.delim", "\x01")
    for values, sub in _split_by_partition(table, keys):
        sub_prefix = prefix + "".join(f"{k}={v}/" for k, v in zip(keys, values, strict=True))
        write_files(sub, fmt, bucket, sub_prefix, f"{qid}_{uuid.uuid4().hex[:8]}", s3, {"field_delimiter": delim})
        if keys:
            _add_partition(glue, db, tbl, values, f"s3://{bucket}/{sub_prefix}", if_not_exists=True)
    return scanned
