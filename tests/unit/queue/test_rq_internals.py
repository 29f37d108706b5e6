"""RQ's internals in one place: compressed fields are read with a cap, and a zip bomb is defused."""

from __future__ import annotations

import zlib

import pytest

from plotjobs.queue.rq_internals import BoundedZlib, defuse_compressed_fields
from plotjobs.queue.serialization import MAX_FIELD_BYTES, FieldTooLargeError


def test_a_zip_bomb_stops_at_the_cap() -> None:
    bomb = zlib.compress(b"\0" * (MAX_FIELD_BYTES * 4))
    assert len(bomb) < MAX_FIELD_BYTES // 100
    with pytest.raises(FieldTooLargeError):
        BoundedZlib.decompress(bomb)


def test_bounded_zlib_reads_what_zlib_reads() -> None:
    data = b"plotjobs " * 1000
    assert BoundedZlib.decompress(zlib.compress(data)) == data
    with pytest.raises(zlib.error):
        BoundedZlib.decompress(b"not compressed")
    with pytest.raises(zlib.error):
        BoundedZlib.decompress(zlib.compress(data)[:-5])


def test_a_bomb_in_a_job_hash_is_replaced_and_named() -> None:
    bomb = zlib.compress(b"\0" * (MAX_FIELD_BYTES * 4))
    raw = {b"data": bomb, b"exc_info": b"plain text", b"status": b"queued"}
    cleaned, reason = defuse_compressed_fields(raw)
    assert reason is not None and reason.startswith("data:")
    assert zlib.decompress(cleaned[b"data"]) == b"null"
    assert cleaned[b"exc_info"] == b"plain text" and cleaned[b"status"] == b"queued"
    assert raw[b"data"] == bomb  # the hash read from Redis is left as it was


def test_a_harmless_job_hash_is_kept_as_it_is() -> None:
    raw = {b"data": zlib.compress(b"[1, 2]"), b"status": b"queued"}
    assert defuse_compressed_fields(raw) == (raw, None)
