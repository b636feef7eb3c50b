"""How Athena reads a catalog table, done on DuckDB: a view over the table's S3 objects.

The objects are staged into a local cache (re-read only when an object's ETag changes) and read through
the table's SerDe rules: LazySimpleSerDe and OpenCSVSerde text (their NULL and empty-string rules,
``skip.header.line.count``, ``serialization.null.format``), Parquet, ORC (via pyarrow) and JSON. A
partitioned table reads exactly the partitions the catalog has (no hive auto-detection), with the partition
values as columns; ``"$path"`` and ``"$file_size"`` are added when a query asks for them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipekit.local import athena_catalog
from pipekit.local.athena_catalog import QueryFailed
from pipekit.local.server import TwinContext


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    m = re.match(r"^s3://([^/]+)/?(.*)$", uri)
    if not m:
        raise QueryFailed(f"not an s3:// location: {uri}")
    return m.group(1), m.group(2)


def join(loc: str, name: str) -> str:
    """``loc`` + "/" + ``name`` with one slash."""
    return loc.rstrip("/") + "/" + name


def ident(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


_GLUE_TO_DUCK = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER",
    "integer": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT", "double": "DOUBLE",
    "float": "FLOAT", "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE", "binary": "BLOB",
}


def bind_table(con: Any, view: str, tbl: dict[str, Any], s3: Any, ctx: TwinContext, hidden: set[str]) -> int:
    """A DuckDB view over the table's data read as Athena reads it: the table's SerDe rules, exactly the
    catalog's partitions (no hive auto-detection), ``$path``/``$file_size`` when the query asks."""
    import pyarrow as pa

    sd = tbl.get("StorageDescriptor") or {}
    serde_info = sd.get("SerdeInfo") or {}
    serde = serde_info.get("SerializationLibrary", "") or ""
    params = {**(serde_info.get("Parameters") or {}), **(tbl.get("Parameters") or {})}
    columns = [(c["Name"], c.get("Type", "string")) for c in sd.get("Columns", [])]
    keys = [(c["Name"], c.get("Type", "string")) for c in tbl.get("PartitionKeys", [])]
    # (local file, s3 uri, size, partition values) of every object Athena would read.
    files: list[tuple[str, str, int, list[str]]] = []
    if keys:
        for part in athena_catalog.partitions(ctx, tbl.get("DatabaseName", ""), tbl["Name"]):
            loc = (part.get("StorageDescriptor") or {}).get("Location") or _partition_location(sd, keys, part)
            files += [(f, uri, size, list(part["Values"])) for f, uri, size in stage(loc, s3, ctx)]
    else:
        files = [(f, uri, size, []) for f, uri, size in stage(sd.get("Location", ""), s3, ctx)]
    size = sum(f[2] for f in files)
    extra = [f'CAST(__pk.v{i} AS {_duck_type(t)}) AS {ident(n)}' for i, (n, t) in enumerate(keys)]
    extra += [f"__pk.{ident(h)}" for h in sorted(hidden)]
    if not files:
        select = ", ".join([f"CAST(NULL AS {_duck_type(t)}) AS {ident(n)}" for n, t in columns + keys]
                           + [f"CAST(NULL AS {'BIGINT' if h == '$file_size' else 'VARCHAR'}) AS {ident(h)}"
                              for h in sorted(hidden)]) or "NULL AS none"
        con.execute(f"CREATE VIEW {ident(view)} AS SELECT {select} WHERE false")
        return 0
    mapping = pa.table({"__file": [f[0] for f in files], "$path": [f[1] for f in files],
                        "$file_size": pa.array([f[2] for f in files], pa.int64()),
                        **{f"v{i}": [f[3][i] if i < len(f[3]) else None for f in files] for i in range(len(keys))}})
    con.register(f"{view}__files", mapping)
    file_list = "[" + ", ".join(_sql_str(f[0]) for f in files) + "]"
    if "parquet" in serde.lower() or params.get("classification") == "parquet":
        import pyarrow.parquet as pq

        present = {f.name.lower(): f.name for f in pq.read_schema(files[0][0])}
        data = [(f'CAST(__d."{present[n.lower()]}" AS {_duck_type(t)})' if _simple(t) else f'__d."{present[n.lower()]}"')
                if n.lower() in present else f"CAST(NULL AS {_duck_type(t)})" for n, t in columns]
        source = f"read_parquet({file_list}, union_by_name=true, hive_partitioning=false, filename='__file')"
    elif "orc" in serde.lower() or params.get("classification") == "orc":
        source, data = _orc_source(con, view, files, columns)
    elif "json" in serde.lower() or params.get("classification") == "json":
        spec = "{" + ", ".join(f"{_sql_str(n)}: {_sql_str(_duck_type(t) if _simple(t) else 'JSON')}"
                               for n, t in columns) + "}"
        source = (f"read_json({file_list}, columns={spec}, format='newline_delimited', hive_partitioning=false, "
                  "filename='__file')")
        data = [f"__d.{ident(n)}" for n, _ in columns]
    else:
        source, data = _text_source(file_list, columns, serde, params)
    select = ", ".join([f"{d} AS {ident(n)}" for d, (n, _) in zip(data, columns, strict=True)] + extra)
    con.execute(f"CREATE VIEW {ident(view)} AS SELECT {select} FROM {source} AS __d "
                f"JOIN {ident(view + '__files')} AS __pk ON __d.__file = __pk.__file")
    return size


def _orc_source(con: Any, view: str, files: list[tuple[str, str, int, list[str]]],
                columns: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """DuckDB reads no ORC: the files are read with pyarrow and registered as one Arrow table."""
    import pyarrow as pa
    import pyarrow.orc as orc

    parts = []
    for local, _, _, _ in files:
        part = orc.read_table(local)
        parts.append(part.append_column("__file", pa.array([local] * part.num_rows, pa.string())))
    arrow = pa.concat_tables(parts, promote_options="permissive")
    con.register(f"{view}__orc", arrow)
    present = {n.lower(): n for n in arrow.column_names}
    data = [(f'CAST(__d."{present[n.lower()]}" AS {_duck_type(t)})' if _simple(t) else f'__d."{present[n.lower()]}"')
            if n.lower() in present else f"CAST(NULL AS {_duck_type(t)})" for n, t in columns]
    return ident(f"{view}__orc"), data


def _partition_location(sd: dict[str, Any], keys: list[tuple[str, str]], part: dict[str, Any]) -> str:
    return join(sd.get("Location", ""), "/".join(f"{k}={v}" for (k, _), v in zip(keys, part["Values"],
                                                                               strict=False)))


def _simple(glue_type: str) -> bool:
    return not glue_type.strip().lower().startswith(("array", "map", "struct"))


_NEVER = "\x00pipekit-no-null\x00"


def _text_source(file_list: str, columns: list[tuple[str, str]], serde: str,
                 params: dict[str, str]) -> tuple[str, list[str]]:
    """Read a text table as Athena's SerDe does. LazySimpleSerDe: no quoting, ``\\N`` (or
    ``serialization.null.format``) is NULL, an empty field is '' for strings and NULL for other types.
    OpenCSVSerde: quoted fields, nothing is NULL in a string column, an empty non-string field is NULL."""
    skip = int(params.get("skip.header.line.count", "0") or 0)
    open_csv = "opencsv" in serde.lower()
    if open_csv:
        delim = params.get("separatorChar") or ","
        quote = params.get("quoteChar") or '"'
        escape = params.get("escapeChar") or quote
        null = _NEVER
    else:
        # Hive's default is Ctrl-A; a number is the delimiter's byte value ('1' in serialization.format).
        delim = params.get("field.delim") or params.get("serialization.format") or params.get("delimiter") or "\x01"
        if delim.isdigit() and int(delim) < 128:
            delim = chr(int(delim))
        quote, escape = "", params.get("escape.delim") or ""
        null = params.get("serialization.null.format", "\\N")
    col_spec = "{" + ", ".join(f"{_sql_str(n)}: 'VARCHAR'" for n, _ in columns) + "}"
    nullstr = _sql_str(null) if null != "" else "''"
    source = (f"read_csv({file_list}, header=false, skip={skip}, delim={_sql_str(delim)}, quote={_sql_str(quote)}, "
              f"escape={_sql_str(escape)}, nullstr={nullstr}, columns={col_spec}, auto_detect=false, "
              "null_padding=true, strict_mode=false, hive_partitioning=false, filename='__file')")
    data = []
    for n, t in columns:
        ref = f"__d.{ident(n)}"
        duck = _duck_type(t)
        data.append(ref if duck == "VARCHAR" else f"TRY_CAST(NULLIF({ref}, '') AS {duck})")
    return source, data


def _duck_type(glue_type: str) -> str:
    t = glue_type.strip().lower()
    if t.startswith("decimal"):
        return t.upper()
    if t.startswith(("varchar", "char")):
        return "VARCHAR"
    return _GLUE_TO_DUCK.get(t, "VARCHAR")


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def stage(location: str, s3: Any, ctx: TwinContext) -> list[tuple[str, str, int]]:
    """Download the objects under ``location`` into the cache (only those whose ETag changed); returns
    (local path, s3 uri, size) of each, in key order."""
    if not location:
        return []
    bucket, prefix = split_s3(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    cache = ctx.state_dir / "athena-cache" / bucket
    etags = ctx.shared.setdefault("athena_read.etags", {})
    files: list[tuple[str, str, int]] = []
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
            files.append((str(dest), f"s3://{bucket}/{key}", int(obj["Size"])))
    return sorted(files)
