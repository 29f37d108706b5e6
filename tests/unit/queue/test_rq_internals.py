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


def test_the_same_bytes_compressed_again_are_not_compressed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    data, other = b"a spec of many points " * 1000, b"another spec " * 1000
    packed = BoundedZlib.compress(data)
    assert zlib.decompress(packed) == data
    calls: list[bytes] = []
    real_compress = zlib.compress
    monkeypatch.setattr(zlib, "compress", lambda plain, level=-1: calls.append(plain) or real_compress(plain, level))
    assert BoundedZlib.compress(data) is packed
    assert BoundedZlib.compress(bytes(bytearray(data))) is packed  # equal bytes, another object
    assert calls == []
    assert zlib.decompress(BoundedZlib.compress(other)) == other and calls == [other]
    assert zlib.decompress(BoundedZlib.compress(data)) == data and calls == [other, data]


def test_bytes_read_from_redis_are_given_back_in_the_form_they_were_read(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"job data " * 1000
    stored = zlib.compress(data, 9)
    assert BoundedZlib.decompress(stored) == data
    monkeypatch.setattr(zlib, "compress", lambda *_: pytest.fail("compressed again"))
    assert BoundedZlib.compress(BoundedZlib.decompress(stored)) == stored
