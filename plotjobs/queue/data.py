"""A job's large data, stored once under a content-addressed key of ours and referenced by the job.

A spec's arrays (``plotjobs.spec.base.detached_document``) are packed into one blob: a short
JSON header naming each array's dtype, shape and stored size, then each array's little-endian
bytes, zlib-compressed when that saves a tenth or more (judged on a sample first). The blob
lives under ``plotjobs:data:<sha256>``, so identical data is stored once; each job or stored
chart that needs it pushes its expiry back, never forward (a Lua script: Redis 6.2 has no
``EXPIRE ... GT``). See docs/design.md, "Large data".
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zlib
from typing import TypedDict

import numpy as np
from redis import Redis

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.errors import DataExpired

MAGIC = b"PJA1"
_HEADER_LENGTH = struct.Struct("<I")
# The only dtypes a blob may hold: numbers and dates. Nothing else is ever built from stored bytes.
DTYPES = {"<f8": np.dtype("<f8"), "<M8[ms]": np.dtype("<M8[ms]")}
# Compressing float data costs ~15 ms per MB and often saves little (noise): keep it only when it pays,
# judged first on a sample of each array.
MIN_SAVING = 0.1
COMPRESSION_SAMPLE_BYTES = 64 * 1024
# Far above the largest accepted spec's data (2,000,000 points of x and y: 32 MB).
MAX_BLOB_BYTES = 256 * 1024 * 1024

# Push the key's expiry back to ARGV[1] seconds from now unless it is later already; 0 when the key is gone.
_EXTEND = """
local ttl = redis.call('TTL', KEYS[1])
if ttl == -2 then return 0 end
if ttl >= 0 and ttl < tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
"""


class DataReference(TypedDict):
    """What a job (or stored chart) keeps instead of its data: where it is, its hash and size."""

    key: str
    sha256: str
    size: int


class UnreadableData(ValueError):
    """Bytes under a data key that are not a blob we wrote."""


def _compressed(raw: bytes) -> bytes | None:
    """``raw`` compressed when that saves MIN_SAVING or more (judged on a sample first, as noise never pays)."""
    sample = raw[:COMPRESSION_SAMPLE_BYTES]
    if len(zlib.compress(sample, 1)) > len(sample) * (1 - MIN_SAVING):
        return None
    compressed = zlib.compress(raw, 1)
    return compressed if len(compressed) <= len(raw) * (1 - MIN_SAVING) else None


def pack(arrays: list[np.ndarray]) -> bytes:
    """The arrays as one blob (deterministic: the same arrays give the same bytes)."""
    parts = []
    described = []
    for array in arrays:
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        name = dtype.str
        if name not in DTYPES:
            raise TypeError(f"only float64 and datetime64[ms] arrays are stored, not {array.dtype}")
        raw = np.ascontiguousarray(array, dtype=DTYPES[name]).tobytes()
        compressed = _compressed(raw)
        parts.append(compressed if compressed is not None else raw)
        described.append(
            {"dtype": name, "shape": list(array.shape), "zlib": compressed is not None, "bytes": len(parts[-1])}
        )
    header = json.dumps({"arrays": described}, separators=(",", ":")).encode()
    return MAGIC + _HEADER_LENGTH.pack(len(header)) + header + b"".join(parts)


def unpack(blob: bytes) -> list[np.ndarray]:
    """The arrays of a blob; UnreadableData when it is not one."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _HEADER_LENGTH.size:
        raise UnreadableData("not a plotjobs data blob")
    start = len(MAGIC) + _HEADER_LENGTH.size
    (length,) = _HEADER_LENGTH.unpack_from(blob, len(MAGIC))
    try:
        header = json.loads(blob[start : start + length])
        described = [
            (DTYPES[item["dtype"]], tuple(int(size) for size in item["shape"]), bool(item["zlib"]), int(item["bytes"]))
            for item in header["arrays"]
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise UnreadableData(f"its header cannot be read ({type(error).__name__})") from None
    arrays = []
    offset = start + length
    for dtype, shape, packed, size in described:
        # Python's product, not numpy's: a shape whose product passes int64 must not wrap to a small count.
        count = math.prod(shape)
        expected = count * dtype.itemsize
        if any(side < 0 for side in shape) or expected > MAX_BLOB_BYTES:
            raise UnreadableData(f"its header describes an array of shape {list(shape)[:8]} beyond any blob")
        if size < 0 or offset + size > len(blob):
            raise UnreadableData("it is shorter than its header says")
        body = blob[offset : offset + size]
        offset += size
        if packed:
            inflater = zlib.decompressobj()
            try:
                body = inflater.decompress(body, expected)
            except zlib.error:
                raise UnreadableData("an array's compressed bytes cannot be read") from None
            if inflater.unconsumed_tail:
                raise UnreadableData(f"an array expands beyond the {expected} bytes its header says")
        if len(body) != expected:
            raise UnreadableData("an array's bytes do not match its header")
        arrays.append(np.frombuffer(body, dtype=dtype, count=count).reshape(shape))
    return arrays


def lifetime(settings: Settings) -> int:
    """Seconds a job's data lives from its submission, and again from its start: past the job's own record."""
    return max(settings.result_ttl, settings.failure_ttl) + settings.job_timeout


def packed(arrays: list[np.ndarray]) -> tuple[bytes, DataReference]:
    """The arrays' blob and the reference it will be stored under."""
    blob = pack(arrays)
    digest = hashlib.sha256(blob).hexdigest()
    return blob, {"key": keys.data(digest), "sha256": digest, "size": len(blob)}


def put(connection: Redis, blob: bytes, reference: DataReference, ttl: int) -> None:
    """Keep ``blob`` under its reference for at least ``ttl`` seconds (once, whoever else stored it)."""
    key = reference["key"]
    # When identical data is stored already, only its life is extended: no second copy is sent.
    if not extend(connection, key, ttl) and not connection.set(key, blob, ex=ttl, nx=True):
        extend(connection, key, ttl)


def store(connection: Redis, arrays: list[np.ndarray], ttl: int) -> DataReference:
    """Keep the arrays for at least ``ttl`` seconds and say where."""
    blob, reference = packed(arrays)
    put(connection, blob, reference, ttl)
    return reference


def extend(connection: Redis, key: str, ttl: int) -> bool:
    """Make the data under ``key`` live at least ``ttl`` more seconds; False when it is gone."""
    return bool(connection.eval(_EXTEND, 1, key, ttl))


def load(connection: Redis, reference: DataReference) -> list[np.ndarray]:
    """The arrays a reference names; DataExpired once they are gone."""
    key = reference.get("key", "") if isinstance(reference, dict) else ""
    if not isinstance(key, str) or not key.startswith(keys.DATA_PREFIX):
        raise DataExpired("the job's data reference names no data of ours")
    blob = connection.get(key)
    if blob is None:
        raise DataExpired("the job's data has expired (it is kept for its job's life, or a stored chart's)")
    if isinstance(blob, str):
        raise TypeError("the Redis client decodes responses; data needs one that returns bytes")
    return unpack(blob)


def is_reference(value: object) -> bool:
    """Whether ``value`` has the shape of a DataReference."""
    return isinstance(value, dict) and isinstance(value.get("key"), str) and isinstance(value.get("sha256"), str)
