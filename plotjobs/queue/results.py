"""Rendered files in Redis, under content-addressed keys of our own that always expire."""

from __future__ import annotations

import hashlib
from typing import TypedDict

from redis import Redis

from plotjobs import keys


class ResultDescription(TypedDict):
    """What a finished job returns to RQ: small, JSON-able, pointing at the bytes."""

    key: str
    content_type: str
    format: str
    size: int
    sha256: str


def store(connection: Redis, data: bytes, *, content_type: str, file_format: str, ttl: int) -> ResultDescription:
    """Keep ``data`` for ``ttl`` seconds and describe where it is."""
    digest = hashlib.sha256(data).hexdigest()
    key = keys.result(digest)
    connection.set(key, data, ex=ttl)
    return {"key": key, "content_type": content_type, "format": file_format, "size": len(data), "sha256": digest}


def load_digest(connection: Redis, digest: str) -> bytes | None:
    """The stored bytes whose SHA-256 is ``digest``, or None if none are stored."""
    return _binary(connection.get(keys.result(digest)))


def load(connection: Redis, description: ResultDescription) -> bytes | None:
    """The stored bytes, or None once they have expired."""
    key = description["key"]
    if not key.startswith(keys.RESULT_PREFIX):
        return None
    return _binary(connection.get(key))


def _binary(value: bytes | str | None) -> bytes | None:
    """A stored file as bytes; a str means the client decodes responses, which would corrupt it."""
    if isinstance(value, str):
        raise TypeError("the Redis client decodes responses; results need one that returns bytes")
    return value
