"""S3: checksummed, idempotent uploads, listings and downloads."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipekit.aws._calls import call, code_of
from pipekit.aws._client import client
from pipekit.errors import AwsError, ConfigError
from pipekit.io.atomic import atomic_path, sha256_file

#: User metadata key holding the hex sha256 of the object's content.
SHA256_META = "sha256"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; ConfigError for anything else."""
    m = re.match(r"^s3://([^/]+)/?(.*)$", uri or "")
    if not m:
        raise ConfigError(f"not an S3 URI: {uri!r}", hint="use the form s3://bucket/prefix/")
    return m.group(1), m.group(2)


def s3_uri(bucket: str, key: str) -> str:
    """``(bucket, key)`` -> ``s3://bucket/key``."""
    return f"s3://{bucket}/{key}"


@dataclass(frozen=True)
class UploadResult:
    """One upload: where it went, its checksum, and whether bytes were actually sent."""

    uri: str
    sha256: str
    size: int
    uploaded: bool

    def describe(self) -> str:
        """One line for the CLI."""
        verb = "uploaded" if self.uploaded else "unchanged (same sha256 already there), skipped"
        return f"{self.uri}: {verb} [{self.size} bytes, sha256 {self.sha256[:12]}...]"


def head(bucket: str, key: str, *, session: Any | None = None) -> dict[str, Any] | None:
    """HeadObject, or None when the object does not exist."""
    try:
        return call(client("s3", session).head_object, f"s3://{bucket}/{key} (HeadObject)", Bucket=bucket, Key=key)
    except AwsError as err:
        if code_of(err) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def upload_file(path: str | os.PathLike[str], uri: str, *, force: bool = False,
                session: Any | None = None) -> UploadResult:
    """Upload ``path`` to ``uri`` with its sha256; skip when an object with the same sha256 is already there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    bucket, key = parse_s3_uri(uri)
    if not key or key.endswith("/"):
        key = key + path.name
    digest = sha256_file(path)
    size = path.stat().st_size
    existing = None if force else head(bucket, key, session=session)
    if existing is not None and existing.get("Metadata", {}).get(SHA256_META) == digest:
        return UploadResult(s3_uri(bucket, key), digest, size, uploaded=False)
    with open(path, "rb") as fh:
        # ChecksumSHA256 makes S3 verify the bytes it received against the file we hashed.
        call(client("s3", session).put_object, f"s3://{bucket}/{key} (PutObject)", Bucket=bucket, Key=key,
             Body=fh, Metadata={SHA256_META: digest}, ChecksumAlgorithm="SHA256")
    return UploadResult(s3_uri(bucket, key), digest, size, uploaded=True)


def list_objects(uri: str, *, session: Any | None = None) -> list[dict[str, Any]]:
    """Every object under the ``s3://bucket/prefix`` (all pages)."""
    bucket, prefix = parse_s3_uri(uri)
    paginator = client("s3", session).get_paginator("list_objects_v2")
    out: list[dict[str, Any]] = []
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            out.extend(page.get("Contents", []))
    except Exception as exc:
        raise AwsError(f"listing {uri} failed: {exc}", hint="check the bucket name and your permissions") from exc
    return out


def data_objects(uri: str, *, session: Any | None = None) -> list[dict[str, Any]]:
    """Objects under ``uri`` that hold data: no folder markers, hidden files or ``_SUCCESS``-style markers."""
    _, prefix = parse_s3_uri(uri)
    return [o for o in list_objects(uri, session=session)
            if not o["Key"].endswith("/") and not Path(o["Key"]).name.startswith(("_", "."))
            and "/_" not in o["Key"][len(prefix):]]


def read_bytes(uri: str, *, session: Any | None = None) -> bytes:
    """The whole content of one object."""
    bucket, key = parse_s3_uri(uri)
    resp = call(client("s3", session).get_object, f"{uri} (GetObject)", Bucket=bucket, Key=key)
    return resp["Body"].read()


def download(uri: str, dest: str | os.PathLike[str], *, session: Any | None = None) -> Path:
    """Download one object to ``dest`` atomically."""
    bucket, key = parse_s3_uri(uri)
    with atomic_path(dest) as tmp:
        try:
            client("s3", session).download_file(bucket, key, str(tmp))
        except Exception as exc:
            raise AwsError(f"downloading {uri} failed: {exc}") from exc
    return Path(dest)


def download_prefix(uri: str, dest_dir: str | os.PathLike[str], *, session: Any | None = None) -> list[Path]:
    """Download every data object under ``uri`` into ``dest_dir`` (keys relative to the prefix)."""
    bucket, prefix = parse_s3_uri(uri)
    out = []
    for obj in data_objects(uri, session=session):
        rel = obj["Key"][len(prefix):].lstrip("/") or Path(obj["Key"]).name
        out.append(download(s3_uri(bucket, obj["Key"]), Path(dest_dir) / rel, session=session))
    return out


def prefix_summary(uri: str, *, session: Any | None = None) -> tuple[int, int]:
    """``(objects, bytes)`` under ``uri``."""
    objs = list_objects(uri, session=session)
    return len(objs), sum(o.get("Size", 0) for o in objs)
