"""Where a job's files live: a local folder or an S3 prefix, behind the few operations the ingest needs.

A *location* is a ``pathlib.Path`` (local) or an :class:`S3Location` (``s3://bucket/key``); both join with
``/`` and have ``name``, ``stem`` and ``suffix``, so the job composes its layout the same way for either.
:func:`location` turns a string from config into one.

The operations keep the guarantees the local code has always had:

* a write is whole or absent: locally a temp file renamed into place, on S3 one PutObject (atomic per
  object: readers see the old object, or none, or the new one whole);
* a copy is verified by sha256 before anything relies on it (:func:`sha256` re-reads the bytes);
* :func:`put_if_absent` is the one compare-and-set primitive: ``If-None-Match: *`` on S3 (HTTP 412 when
  the key exists), ``O_CREAT|O_EXCL`` locally. The S3 manifest is built on it.

S3 goes through boto3 and pipekit's one client factory (:func:`pipekit.aws._client.client`), so the
endpoint and credentials come from boto3's own configuration (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``,
``AWS_ACCESS_KEY_ID``..., instance/pod roles), the same for real AWS and the offline twin. There is no
S3 "folder" and no append: listings are by prefix, and the manifest is one object per record.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pipekit.errors import ConfigError, StorageError
from pipekit.io.atomic import atomic_path, atomic_write_bytes, sha256_file

_CHUNK = 1 << 20
#: User metadata key holding the hex sha256 of what pipekit uploaded (same key as pipekit.aws.s3).
SHA256_META = "sha256"


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/key``: a key, or a prefix when used as a folder (no trailing slash kept)."""

    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def __truediv__(self, part: str) -> S3Location:
        part = str(part).strip("/")
        return S3Location(self.bucket, f"{self.key}/{part}" if self.key else part)

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.key).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.key).suffix

    @property
    def parent(self) -> S3Location:
        parent = str(PurePosixPath(self.key).parent)
        return S3Location(self.bucket, "" if parent == "." else parent)

    def with_name(self, name: str) -> S3Location:
        return self.parent / name

    @property
    def prefix(self) -> str:
        """The key as a folder prefix (``key/``), for listings."""
        return f"{self.key}/" if self.key else ""


Location = Path | S3Location


def location(value: str | os.PathLike[str] | S3Location) -> Location:
    """``s3://bucket/prefix`` -> S3Location; anything else -> an expanded local Path."""
    if isinstance(value, S3Location):
        return value
    text = os.fspath(value)
    if text.startswith("s3://"):
        bucket, _, key = text[len("s3://"):].partition("/")
        if not bucket:
            raise ConfigError(f"{text!r} names no bucket", hint="use the form s3://bucket/prefix")
        return S3Location(bucket, key.strip("/"))
    if "://" in text:
        raise ConfigError(f"{text!r}: only local paths and s3://bucket/prefix are supported",
                          hint="use a local (or mounted shared) folder, or an s3:// URL")
    return Path(text).expanduser()


# --- S3 plumbing ---------------------------------------------------------------------------------------


def _s3() -> Any:
    from pipekit.aws._client import client

    return client("s3")


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _missing(exc: BaseException) -> bool:
    return _code(exc) in {"404", "NoSuchKey", "NotFound"}


@contextlib.contextmanager
def _s3_errors(what: str, where: S3Location) -> Iterator[None]:
    """Turn botocore errors into StorageError naming the object (at the boundary, with the cause kept)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(
            f"{what} {where} failed: {exc}",
            hint="check the bucket exists, your AWS credentials/role can read and write it, and AWS_ENDPOINT_URL",
        ) from exc


def _head(where: S3Location) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    with _s3_errors("HeadObject", where):
        try:
            head: dict[str, Any] = _s3().head_object(Bucket=where.bucket, Key=where.key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
    return head


# --- operations -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """One file (or object) found by :func:`list_files`."""

    location: Location
    name: str
    size: int
    mtime: datetime


def list_files(folder: Location, pattern: str = "*") -> list[FileInfo]:
    """Files directly in ``folder`` whose name matches ``pattern`` (no recursion; none if it is missing)."""
    if isinstance(folder, Path):
        if not folder.is_dir():
            return []
        out = []
        for path in folder.glob(pattern):
            if path.is_file():
                stat = path.stat()
                out.append(FileInfo(path, path.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
        return out
    found: list[FileInfo] = []
    with _s3_errors("listing", folder):
        pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=folder.bucket, Prefix=folder.prefix, Delimiter="/")
        for page in pages:
            for obj in page.get("Contents", []):
                name = obj["Key"][len(folder.prefix):]
                if name and fnmatch.fnmatchcase(name, pattern):
                    found.append(FileInfo(S3Location(folder.bucket, obj["Key"]), name, int(obj["Size"]),
                                          obj["LastModified"].astimezone(UTC)))
    return found


def list_keys(folder: S3Location, *, start_after: str = "") -> list[str]:
    """Every key under the prefix ``folder/`` (recursive), in S3's lexicographic order."""
    keys: list[str] = []
    with _s3_errors("listing", folder):
        kwargs: dict[str, Any] = {"Bucket": folder.bucket, "Prefix": folder.prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in _s3().get_paginator("list_objects_v2").paginate(**kwargs):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def info(where: Location) -> FileInfo | None:
    """Size and modification time of the file (object), or None when it does not exist."""
    if isinstance(where, Path):
        if not where.is_file():
            return None
        stat = where.stat()
        return FileInfo(where, where.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))
    head = _head(where)
    if head is None:
        return None
    return FileInfo(where, where.name, int(head["ContentLength"]), head["LastModified"].astimezone(UTC))


def is_file(where: Location) -> bool:
    """True when the file (object) exists."""
    if isinstance(where, Path):
        return where.is_file()
    return _head(where) is not None


def sha256(where: Location) -> str:
    """Hex sha256 of the content, read in full (an S3 object is streamed, never trusted from metadata)."""
    if isinstance(where, Path):
        return sha256_file(where)
    digest = hashlib.sha256()
    with _s3_errors("GetObject", where):
        body = _s3().get_object(Bucket=where.bucket, Key=where.key)["Body"]
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def has_sha256(where: Location, expected: str) -> bool:
    """True when ``where`` exists and its content has sha256 ``expected``."""
    if isinstance(where, Path):
        return where.is_file() and sha256_file(where) == expected
    from botocore.exceptions import ClientError

    try:
        return sha256(where) == expected
    except StorageError as exc:
        if isinstance(exc.__cause__, ClientError) and _missing(exc.__cause__):
            return False
        raise


def read_bytes(where: Location) -> bytes:
    """The whole content."""
    if isinstance(where, Path):
        return where.read_bytes()
    with _s3_errors("GetObject", where):
        data: bytes = _s3().get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
    return data


def download(where: Location, dest: Path, *, expected_sha256: str | None = None) -> Path:
    """Copy ``where`` to the local file ``dest`` (atomically); StorageError when its sha256 is not ``expected_sha256``."""
    with atomic_path(dest) as tmp:
        if isinstance(where, Path):
            shutil.copyfile(where, tmp)
        else:
            with _s3_errors("downloading", where):
                _s3().download_file(where.bucket, where.key, str(tmp))
        if expected_sha256 is not None:
            got = sha256_file(tmp)
            if got != expected_sha256:
                raise StorageError(f"{where} has sha256 {got}, expected {expected_sha256}: it changed or was damaged",
                                   hint="re-run the ingest step to take a fresh backup")
    return dest


def upload(source: Path, where: Location, *, sha256_hex: str | None = None) -> Location:
    """Publish the local file ``source`` at ``where`` whole (temp + rename locally; one PutObject on S3).

    On S3 the object carries its sha256 as user metadata, and S3 checks the bytes it received against it
    (``ChecksumSHA256``), so a transfer error never leaves a damaged object.
    """
    if isinstance(where, Path):
        with atomic_path(where) as tmp:
            shutil.copyfile(source, tmp)
        return where
    digest = sha256_hex or sha256_file(source)
    with open(source, "rb") as fh, _s3_errors("PutObject", where):
        _s3().put_object(Bucket=where.bucket, Key=where.key, Body=fh, Metadata={SHA256_META: digest},
                         ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode("ascii"))
    return where


def write_bytes(where: Location, data: bytes) -> Location:
    """Write ``data`` at ``where`` whole or not at all."""
    if isinstance(where, Path):
        return atomic_write_bytes(where, data)
    digest = hashlib.sha256(data)
    with _s3_errors("PutObject", where):
        _s3().put_object(Bucket=where.bucket, Key=where.key, Body=data, Metadata={SHA256_META: digest.hexdigest()},
                         ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"))
    return where


def write_text(where: Location, text: str, encoding: str = "utf-8") -> Location:
    """Write ``text`` at ``where`` whole or not at all."""
    return write_bytes(where, text.encode(encoding))


def put_if_absent(where: Location, data: bytes) -> bool:
    """Create ``where`` with ``data`` only if nothing is there; False (nothing written) when it exists.

    On S3 this is a conditional PutObject (``If-None-Match: *``): of two writers racing for one key,
    exactly one gets True.
    """
    if isinstance(where, Path):
        where.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return True
    from botocore.exceptions import ClientError

    digest = hashlib.sha256(data)
    with _s3_errors("PutObject (If-None-Match)", where):
        try:
            _s3().put_object(Bucket=where.bucket, Key=where.key, Body=data, IfNoneMatch="*",
                             Metadata={SHA256_META: digest.hexdigest()},
                             ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"))
        except ClientError as exc:
            # 409 ConditionalRequestConflict: another conditional write to this key is in progress.
            if _code(exc) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}:
                return False
            raise
    return True


def delete(where: Location) -> None:
    """Remove the file (object); no error when it is already gone."""
    if isinstance(where, Path):
        where.unlink(missing_ok=True)
        return
    with _s3_errors("DeleteObject", where):
        _s3().delete_object(Bucket=where.bucket, Key=where.key)


def move(source: Location, target: Location, *, sha256_hex: str) -> None:
    """Move ``source`` to ``target``; the source goes only once the target is there with sha256 ``sha256_hex``.

    Locally a rename (or copy + delete across devices); on S3 a server-side CopyObject, re-read and
    checked, then DeleteObject of the source.
    """
    if isinstance(source, Path) and isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return
    if isinstance(source, S3Location) and isinstance(target, S3Location):
        with _s3_errors("CopyObject", target):
            _s3().copy_object(Bucket=target.bucket, Key=target.key,
                              CopySource={"Bucket": source.bucket, "Key": source.key})
    else:
        with scratch_dir("move") as tmp:
            local = download(source, tmp / "object", expected_sha256=sha256_hex)
            upload(local, target, sha256_hex=sha256_hex)
    if not has_sha256(target, sha256_hex):
        delete(target)
        raise StorageError(f"copy of {source} to {target} does not have sha256 {sha256_hex}; {source} was left in place",
                           hint="the source changed while it was copied: re-run once it is stable")
    delete(source)


@contextlib.contextmanager
def scratch_dir(label: str) -> Iterator[Path]:
    """A private (0700) temporary folder on this worker, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"pipekit-{label}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def local_copy(where: Location, *, expected_sha256: str, name: str | None = None) -> Iterator[Path]:
    """The content of ``where`` as a local file checked against ``expected_sha256``.

    A local path is used in place (checked); an S3 object is downloaded into a private scratch folder on
    this worker (named ``name``, default the object's name) and removed afterwards.
    """
    if isinstance(where, Path):
        if not has_sha256(where, expected_sha256):
            raise StorageError(f"{where} is missing or does not have sha256 {expected_sha256}",
                               hint="re-run the ingest step to take a fresh backup")
        yield where
        return
    with scratch_dir("stage") as tmp:
        yield download(where, tmp / (name or where.name), expected_sha256=expected_sha256)


def publish_folder(local_dir: Path, target: Location, names: list[str]) -> dict[str, Location]:
    """Upload ``names`` from ``local_dir`` into ``target`` in the given order (each one whole); name -> location.

    Order is the multi-file publish rule: data first, the file that announces the run last.
    A local ``target`` equal to ``local_dir`` is left as it is.
    """
    out: dict[str, Location] = {}
    for name in names:
        source = local_dir / name
        dest = target / name
        if isinstance(dest, Path) and dest.resolve() == source.resolve():
            out[name] = dest
            continue
        out[name] = upload(source, dest)
    return out
