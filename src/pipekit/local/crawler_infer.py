"""The twin crawler's pure half: classify one object, infer its schema, group objects into tables.

No I/O: bytes in, schemas and table groups out (``glue_twin`` lists, reads and writes the catalog).
Each rule follows a Glue documentation page:

* built-in CSV classifier (https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html): delimiters
  comma, pipe, tab, semicolon and Ctrl-A; a header only when every field of the first row is a string and
  some later row has a non-string field; compressed objects (gzip, bzip2, Snappy, single-file ZIP);
* custom CSV classifiers (https://docs.aws.amazon.com/glue/latest/dg/custom-classifier.html):
  ``Delimiter``, ``QuoteSymbol``, ``ContainsHeader`` PRESENT/ABSENT/UNKNOWN, ``Header``;
* grouping (https://docs.aws.amazon.com/glue/latest/dg/crawler-grouping-policy.html and
  https://repost.aws/knowledge-center/glue-crawler-detect-schema): sibling folders whose schemas are
  similar (over 70%) and whose data is compatible become partitions of one table, otherwise one table
  per folder; ``CombineCompatibleSchemas`` drops the similarity test; ``TableLevelConfiguration``
  (https://docs.aws.amazon.com/glue/latest/dg/crawler-table-level.html) fixes the table's level.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import re
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

# Built-in classifier delimiters, in the order the classifier tries them.
DELIMITERS = (",", "|", "\t", ";", "\x01")
SIMILARITY = 0.7
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_INT64 = 2**63


class CrawlError(ValueError):
    """An object or a set of objects the twin crawler cannot turn into a table."""


@dataclass
class FileSchema:
    """What the classifier found in one object."""

    key: str
    kind: str  # csv | parquet
    compression: str  # none | gzip | bzip2 | snappy | zip
    columns: list[tuple[str, str | None]]  # None: no value seen, the type is still open
    rows: int
    size: int
    delimiter: str = ","
    quote: str = '"'
    quoted: bool = False
    header: bool = False


@dataclass
class TableGroup:
    """One table the crawler defines: its folder, partition keys and the objects in each partition."""

    root: str  # key prefix of the table's folder, "" or ending in "/"
    files: list[FileSchema]
    partition_keys: list[str] = field(default_factory=list)
    partitions: dict[tuple[str, ...], str] = field(default_factory=dict)  # values -> folder prefix

    @property
    def columns(self) -> list[tuple[str, str | None]]:
        return merge_columns([f.columns for f in self.files])


# ---------------------------------------------------------------- one object


def decompress(key: str, data: bytes) -> tuple[bytes, str]:
    """The object's bytes uncompressed, and the compression Glue would record."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data), "gzip"
    if data[:3] == b"BZh":
        return bz2.decompress(data), "bzip2"
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise CrawlError(f"{key}: a ZIP archive is classified only when it holds exactly one file")
            return zf.read(names[0]), "zip"
    if key.lower().endswith(".snappy") or data[:10] == b"\xff\x06\x00\x00sNaPpY":
        return _snappy(key, data), "snappy"
    return data, "none"


def _snappy(key: str, data: bytes) -> bytes:
    import pyarrow as pa

    def raw(block: bytes) -> bytes:
        # A raw Snappy block starts with its uncompressed length as a little-endian varint.
        size = shift = pos = 0
        while True:
            b = block[pos]
            size |= (b & 0x7F) << shift
            pos += 1
            if not b & 0x80:
                break
            shift += 7
        return bytes(pa.decompress(block, decompressed_size=size, codec="snappy"))

    try:
        if data[:10] == b"\xff\x06\x00\x00sNaPpY":  # framing format: chunks of type 0 (compressed) / 1
            out, pos = bytearray(), 0
            while pos < len(data):
                kind, length = data[pos], int.from_bytes(data[pos + 1:pos + 4], "little")
                chunk = data[pos + 4:pos + 4 + length]
                if kind == 0:
                    out += raw(chunk[4:])
                elif kind == 1:
                    out += chunk[4:]
                pos += 4 + length
            return bytes(out)
        try:  # Hadoop's codec: blocks of (uncompressed length, compressed length, raw block)
            out, pos = bytearray(), 0
            while pos < len(data):
                total, = struct.unpack(">I", data[pos:pos + 4])
                pos += 4
                got = 0
                while got < total:
                    n, = struct.unpack(">I", data[pos:pos + 4])
                    piece = raw(data[pos + 4:pos + 4 + n])
                    out += piece
                    got += len(piece)
                    pos += 4 + n
            return bytes(out)
        except Exception:
            return raw(data)
    except Exception as exc:
        raise CrawlError(f"{key}: not a Snappy stream Glue can read ({type(exc).__name__})") from exc


def is_text(data: bytes) -> bool:
    """Text the CSV classifier may parse (no NUL bytes, valid UTF-8 in the sampled start)."""
    head = data[:65536]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # only a multi-byte character cut off by the sample
    return True


def value_type(value: str) -> str | None:
    """The Glue type one CSV field parses as; None for an empty field."""
    if value == "":
        return None
    if value.lower() in ("true", "false"):
        return "boolean"
    if _INT.match(value):
        return "bigint" if -_INT64 <= int(value) < _INT64 else "string"
    if _FLOAT.match(value):
        return "double"
    return "string"


def merge_type(a: str | None, b: str | None) -> str | None:
    """The type that holds both: open types take the other, bigint+double is double, the rest string."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if {a, b} <= {"smallint", "int", "bigint", "float", "double"}:
        order = ["smallint", "int", "bigint", "float", "double"]
        return order[max(order.index(a), order.index(b))]
    return "string"


def sniff_delimiter(sample: str, quote: str = '"') -> str:
    """The built-in classifier's delimiter: the candidate splitting the sample's lines into the most,
    consistent (>= 2) fields; a comma when none does."""
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    best, best_fields = ",", 1
    for delim in DELIMITERS:
        counts = [len(r) for r in csv.reader(lines, delimiter=delim, quotechar=quote)]
        if not counts or min(counts) < 2:
            continue
        common = max(set(counts), key=counts.count)
        if counts.count(common) / len(counts) >= 0.9 and common > best_fields:
            best, best_fields = delim, common
    return best


def builtin_has_header(rows: list[list[str]]) -> bool:
    """Glue's built-in CSV header rule: every first-row field is a string (the ones before the last
    under 150 characters), and one or more later rows parse as something other than strings."""
    if len(rows) < 2 or not rows[0]:
        return False
    first = rows[0]
    if any(value_type(v) != "string" for v in first):
        return False
    if any(len(v) >= 150 for v in first[:-1]):
        return False
    return any(value_type(v) not in (None, "string") for row in rows[1:1001] for v in row)


def infer_csv(key: str, text: str, spec: dict[str, Any], compression: str, size: int) -> FileSchema:
    """Classify a delimited text object with the custom classifier ``spec`` (or the built-in one)."""
    quote = spec.get("QuoteSymbol") or '"'
    delimiter = spec.get("Delimiter") or sniff_delimiter(text[:1 << 20], quote)
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote) if r]
    mode = spec.get("ContainsHeader") or "UNKNOWN"
    header = mode == "PRESENT" or (mode == "UNKNOWN" and builtin_has_header(rows))
    width = max((len(r) for r in rows), default=0)
    if spec.get("Header"):
        names = [str(n) for n in spec["Header"]]
    elif header and rows:
        names = list(rows[0])
    else:
        names = []
    names += [f"col{i}" for i in range(len(names), width)]
    data = rows[1:] if header else rows
    types: list[str | None] = [None] * len(names)
    for row in data:
        for i, v in enumerate(row[:len(names)]):
            types[i] = merge_type(types[i], value_type(v))
    return FileSchema(key=key, kind="csv", compression=compression, columns=list(zip(names, types, strict=True)),
                      rows=len(data), size=size, delimiter=delimiter, quote=quote, quoted=quote in text,
                      header=header)


def clean_name(name: str) -> str:
    """Glue stores lower-case names; characters Athena cannot use become underscores."""
    return re.sub(r"[^a-z0-9_]", "_", name.strip().lower()) or "col"


def merge_columns(schemas: list[list[tuple[str, str | None]]]) -> list[tuple[str, str | None]]:
    """Union of column lists by cleaned name, in order of first appearance, types merged."""
    out: dict[str, str | None] = {}
    for cols in schemas:
        for name, gtype in cols:
            key = clean_name(name)
            out[key] = merge_type(out[key], gtype) if key in out else gtype
    return list(out.items())


# ---------------------------------------------------------------- objects -> tables


def _dirs(root: str, key: str) -> list[str]:
    return key[len(root):].split("/")[:-1]


def _compatible(files: list[FileSchema]) -> bool:
    """Data compatibility: same format, compression and (CSV) delimiter and header handling."""
    sigs = {(f.kind, f.compression, f.delimiter if f.kind == "csv" else "", f.header) for f in files}
    return len(sigs) == 1


def _similar(groups: list[list[FileSchema]]) -> bool:
    """Schema similarity: each folder shares over 70% of the combined column names."""
    union = {n for g in groups for f in g for n, _ in merge_columns([f.columns])}
    if not union:
        return True
    for g in groups:
        names = {n for f in g for n, _ in merge_columns([f.columns])}
        if len(names) / len(union) < SIMILARITY:
            return False
    return True


def _partitioned(root: str, files: list[FileSchema]) -> TableGroup | None:
    """One table at ``root`` with a partition per folder level below it; None if depths differ."""
    depths = {len(_dirs(root, f.key)) for f in files}
    if len(depths) != 1:
        return None
    depth = depths.pop()
    levels = [[_dirs(root, f.key)[i] for f in files] for i in range(depth)]
    keys = []
    for i, names in enumerate(levels):
        hive = {n.split("=", 1)[0] for n in names if "=" in n}
        keys.append(clean_name(hive.pop()) if len(hive) == 1 and all("=" in n for n in names) else f"partition_{i}")
    partitions = {}
    for f in files:
        parts = _dirs(root, f.key)
        values = tuple(p.split("=", 1)[1] if "=" in p else p for p in parts)
        partitions[values] = root + "".join(p + "/" for p in parts)
    return TableGroup(root=root, files=files, partition_keys=keys, partitions=partitions if depth else {})


def group_tables(root: str, files: list[FileSchema], *, combine: bool = False,
                 table_level: int | None = None) -> list[TableGroup]:
    """Group the objects under include path ``root`` into tables the way the crawler does."""
    if not files:
        return []
    if table_level:
        by_root: dict[str, list[FileSchema]] = {}
        for f in files:
            parts = f.key.split("/")[:-1]
            if len(parts) < table_level:
                raise CrawlError(f"{f.key}: shallower than TableLevelConfiguration {table_level}")
            by_root.setdefault("".join(p + "/" for p in parts[:table_level]), []).append(f)
        out = []
        for table_root, members in sorted(by_root.items()):
            group = _partitioned(table_root, members)
            if group is None:
                raise CrawlError(f"{table_root}: objects at different folder depths below the table level")
            out.append(group)
        return out
    return _group(root, files, combine)


def _group(root: str, files: list[FileSchema], combine: bool) -> list[TableGroup]:
    direct = [f for f in files if not _dirs(root, f.key)]
    children: dict[str, list[FileSchema]] = {}
    for f in files:
        parts = _dirs(root, f.key)
        if parts:
            children.setdefault(parts[0], []).append(f)
    kinds = {f.kind for f in direct}
    if len(kinds) > 1:
        raise CrawlError(f"{root or '/'}: mixes {' and '.join(sorted(kinds))} objects in one folder; "
                         "Glue would classify them into separate tables")
    if _compatible(files) and (combine or not children or (not direct and _similar(list(children.values())))):
        group = _partitioned(root, files)
        if group is not None:
            return [group]
    out = [TableGroup(root=root, files=direct)] if direct else []
    for name, members in sorted(children.items()):
        out += _group(root + name + "/", members, combine)
    return out


def table_name(group: TableGroup, bucket: str, prefix: str = "") -> str:
    """The table's name: its folder's name (or the bucket's), cleaned, after the crawler's TablePrefix."""
    leaf = group.root.rstrip("/").rsplit("/", 1)[-1] if group.root else bucket
    return prefix + clean_name(leaf)
