"""The few S3 calls a deployment makes (scripts, manifests, artifacts), with sha256 to skip re-uploads."""

from __future__ import annotations

import hashlib
from typing import Any

from pipekit.aws._calls import call, code_of
from pipekit.aws._client import client
from pipekit.errors import AwsError


def get_bytes(bucket: str, key: str, *, session: Any | None = None, s3: Any | None = None) -> bytes | None:
    """Object content, or None if it does not exist."""
    s3 = s3 or client("s3", session)
    try:
        resp = call(s3.get_object, f"s3://{bucket}/{key} (GetObject)", Bucket=bucket, Key=key)
    except AwsError as err:
        if code_of(err) in ("NoSuchKey", "404"):
            return None
        raise
    body: bytes = resp["Body"].read()
    return body


def put_bytes(bucket: str, key: str, data: bytes, *, session: Any | None = None) -> None:
    """Upload ``data``, recording its sha256 in the object metadata."""
    call(client("s3", session).put_object, f"s3://{bucket}/{key} (PutObject)", Bucket=bucket, Key=key,
         Body=data, Metadata={"sha256": hashlib.sha256(data).hexdigest()})


def sync_bytes(bucket: str, key: str, data: bytes, *, session: Any | None = None) -> bool:
    """Upload ``data`` unless the object already has the same sha256; return True if it uploaded."""
    s3 = client("s3", session)
    digest = hashlib.sha256(data).hexdigest()
    try:
        head = call(s3.head_object, f"s3://{bucket}/{key} (HeadObject)", Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == digest:
            return False
    except AwsError as err:
        if code_of(err) not in ("404", "NoSuchKey", "NotFound"):
            raise
    put_bytes(bucket, key, data, session=session)
    return True
