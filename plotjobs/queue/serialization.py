"""The serializer for job data in Redis: pickle on the wire, but loads refuse any object.

Stock RQ workers read job data with pickle, so the wire format stays pickle. Our own
processes load it with an unpickler that refuses every global, so plain data (dicts,
lists, strings, numbers, bytes) decodes and nothing written to Redis can run code here.
"""

from __future__ import annotations

import io
import pickle
from typing import Any


class ForbiddenObjectError(pickle.UnpicklingError):
    """The data in Redis names a Python object; only plain data may cross Redis."""


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise ForbiddenObjectError(f"refusing to load {module}.{name}: only plain data crosses Redis")


class PlainDataSerializer:
    """RQ serializer: writes pickle readable by any RQ process, reads only plain data."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        """Encode ``obj`` with pickle protocol 4 (readable by every supported Python)."""
        return pickle.dumps(obj, protocol=4)

    @staticmethod
    def loads(data: bytes) -> Any:
        """Decode plain data; raise ForbiddenObjectError if it names any class or function."""
        return _PlainDataUnpickler(io.BytesIO(data)).load()
