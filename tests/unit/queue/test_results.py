"""Rendered files under content-addressed keys that always expire."""

from __future__ import annotations

import hashlib

import fakeredis
import pytest
from redis import Redis

from plotjobs import keys
from plotjobs.queue import results


def test_store_and_load_round_trip_with_an_expiry(fake_redis: Redis) -> None:
    data = b"\x89PNG fake bytes"
    description = results.store(fake_redis, data, content_type="image/png", file_format="png", ttl=60)
    digest = hashlib.sha256(data).hexdigest()
    assert description == {
        "key": keys.result(digest),
        "content_type": "image/png",
        "format": "png",
        "size": len(data),
        "sha256": digest,
    }
    assert 0 < fake_redis.ttl(description["key"]) <= 60
    assert results.load(fake_redis, description) == data
    assert results.load_digest(fake_redis, digest) == data
    fake_redis.delete(description["key"])
    assert results.load(fake_redis, description) is None


def test_load_refuses_a_key_outside_the_result_prefix(fake_redis: Redis) -> None:
    fake_redis.set("rq:job:secret", b"not a result")
    description = results.store(fake_redis, b"x", content_type="image/png", file_format="png", ttl=60)
    description["key"] = "rq:job:secret"
    assert results.load(fake_redis, description) is None


def test_a_decoding_client_is_refused() -> None:
    decoding = fakeredis.FakeRedis(decode_responses=True)
    description = results.store(decoding, b"text", content_type="image/svg+xml", file_format="svg", ttl=60)
    with pytest.raises(TypeError):
        results.load(decoding, description)
