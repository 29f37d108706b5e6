"""JSON on the wire: the serializer of every job plotjobs creates (docs/design.md, threat model)."""

from __future__ import annotations

import json
from typing import Any

# Far above any job's data (a spec's large data is stored apart from it), far below what could exhaust a host.
MAX_FIELD_BYTES = 16 * 1024 * 1024


class FieldTooLargeError(ValueError):
    """A field read from Redis is (or expands to) more than MAX_FIELD_BYTES."""


class JsonSerializer:
    """RQ serializer: JSON, refusing oversized input (``-S plotjobs.queue.serialization.JsonSerializer``)."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        """Encode plain data as UTF-8 JSON."""
        return json.dumps(obj, separators=(",", ":")).encode()

    @staticmethod
    def loads(data: bytes | str) -> Any:
        """Decode JSON; anything else (a pickle, say) raises ValueError and is never executed."""
        if len(data) > MAX_FIELD_BYTES:
            raise FieldTooLargeError(f"a {len(data)}-byte field; at most {MAX_FIELD_BYTES} are read")
        return json.loads(data)
