"""Large data stored apart from its job: content addressing, lifetimes that only grow, missing data."""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import pytest
from redis import Redis

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.errors import DataExpired
from plotjobs.queue import data


def _arrays() -> list[np.ndarray]:
    dates = np.datetime64("2024-01-01T00:00", "ms") + np.arange(50_000).astype("timedelta64[m]")
    return [dates, np.random.default_rng(3).normal(size=50_000)]


def test_arrays_round_trip_through_a_blob_and_keep_their_types() -> None:
    arrays = _arrays()
    loaded = data.unpack(data.pack(arrays))
    assert [array.dtype for array in loaded] == [np.dtype("datetime64[ms]"), np.dtype(np.float64)]
    for given, back in zip(arrays, loaded, strict=True):
        assert np.array_equal(given, back)


def test_each_array_is_compressed_only_when_that_pays() -> None:
    regular = np.arange(100_000, dtype=np.float64)
    noise = np.random.default_rng(1).normal(size=100_000)
    assert len(data.pack([regular])) < 100_000 * 8 / 4
    assert 100_000 * 8 < len(data.pack([noise])) < 100_000 * 8 + 200  # stored raw: zlib saves little on noise
    both = data.pack([regular, noise])
    assert 100_000 * 8 < len(both) < 100_000 * 8 * 5 / 4
    assert all(np.array_equal(given, back) for given, back in zip([regular, noise], data.unpack(both), strict=True))


def _blob(header: bytes, body: bytes = b"") -> bytes:
    return data.MAGIC + len(header).to_bytes(4, "little") + header + body


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x80\x04pickle",
        data.MAGIC + b"\xff\xff\x00\x00{",
        _blob(b'{"a":1}'),
        _blob(b'{"arrays":[{"dtype":"|O","shape":[2],"zlib":false,"bytes":16}]}', b"x" * 16),
        _blob(b'{"arrays":[{"dtype":"<f8","shape":[99],"zlib":false,"bytes":792}]}', b"x" * 8),
        _blob(b'{"arrays":[{"dtype":"<f8","shape":[2],"zlib":false,"bytes":8}]}', b"x" * 8),
        _blob(b'{"arrays":[{"dtype":"<f8","shape":[2],"zlib":true,"bytes":8}]}', b"x" * 8),
        _blob(b'{"arrays":[{"dtype":"<f8","shape":[-2],"zlib":false,"bytes":0}]}'),
        # Its product is 2**64, which numpy's int64 product wraps to 0.
        _blob(b'{"arrays":[{"dtype":"<f8","shape":[4294967296,4294967296],"zlib":false,"bytes":0}]}'),
    ],
)
def test_anything_but_our_blob_is_refused_without_building_objects(blob: bytes) -> None:
    with pytest.raises(data.UnreadableData):
        data.unpack(blob)


def test_a_zip_bomb_is_refused() -> None:
    bomb = zlib.compress(b"\0" * (data.MAX_BLOB_BYTES + 8))
    header = b'{"arrays":[{"dtype":"<f8","shape":[1],"zlib":true,"bytes":%d}]}' % len(bomb)
    with pytest.raises(data.UnreadableData, match="expands beyond"):
        data.unpack(_blob(header, bomb))


def test_only_number_and_date_arrays_are_stored() -> None:
    with pytest.raises(TypeError):
        data.pack([np.array(["a", "b"])])


def test_identical_data_is_stored_once_under_its_hash(redis_connection: Redis) -> None:
    first = data.store(redis_connection, _arrays(), ttl=100)
    second = data.store(redis_connection, _arrays(), ttl=100)
    assert first == second
    blob = redis_connection.get(first["key"])
    assert blob is not None and first["key"] == keys.data(hashlib.sha256(blob).hexdigest())
    assert len(list(redis_connection.scan_iter(keys.DATA_PREFIX + "*"))) == 1
    other = data.store(redis_connection, [np.zeros(3)], ttl=100)
    assert other["key"] != first["key"]


def test_storing_again_pushes_the_expiry_back_and_never_forward(redis_connection: Redis) -> None:
    reference = data.store(redis_connection, _arrays(), ttl=100)
    assert 90 < redis_connection.ttl(reference["key"]) <= 100
    data.store(redis_connection, _arrays(), ttl=1000)
    assert 990 < redis_connection.ttl(reference["key"]) <= 1000
    data.store(redis_connection, _arrays(), ttl=50)
    assert redis_connection.ttl(reference["key"]) > 990
    assert data.extend(redis_connection, reference["key"], 5000)
    assert redis_connection.ttl(reference["key"]) > 4990
    assert data.extend(redis_connection, reference["key"], 10)
    assert redis_connection.ttl(reference["key"]) > 4990


def test_missing_data_is_data_expired_and_extending_it_says_so(redis_connection: Redis) -> None:
    reference = data.store(redis_connection, _arrays(), ttl=100)
    redis_connection.delete(reference["key"])
    assert not data.extend(redis_connection, reference["key"], 100)
    assert not redis_connection.exists(reference["key"])  # extending never creates a key
    with pytest.raises(DataExpired):
        data.load(redis_connection, reference)


def test_a_reference_outside_our_prefix_loads_nothing(redis_connection: Redis) -> None:
    redis_connection.set("rq:job:secret", b"x")
    with pytest.raises(DataExpired):
        data.load(redis_connection, {"key": "rq:job:secret", "sha256": "0" * 64, "size": 1})


def test_data_outlives_the_longest_lived_record_of_its_job() -> None:
    settings = Settings(result_ttl=100, failure_ttl=1000, job_timeout=60)
    assert data.lifetime(settings) == 1060
