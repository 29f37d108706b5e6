"""Per-client limits on jobs that are waiting or running, so one client cannot starve the others.

See docs/design.md, "Limits count only live jobs".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from redis import Redis
from redis.exceptions import WatchError

from plotjobs import keys

# A reservation whose job hash is not written yet still counts for this long.
RESERVATION_GRACE_SECONDS = 30

# For each id: True while its job waits or runs, False once it has ended, None while no such job exists.
ActiveFlags = Callable[[Sequence[str]], list[bool | None]]
# Seconds since the epoch, as time.time gives them; injectable so the grace can be checked at its boundary.
Clock = Callable[[], float]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def reserve(
    connection: Redis, client: str, job_id: str, limit: int, active: ActiveFlags, *, clock: Clock = time.time
) -> int | None:
    """Count ``job_id`` against ``client`` if it has fewer than ``limit`` active jobs; else its count."""
    key = keys.client(client)
    with connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                scored = cast(list[tuple[Any, Any]], pipe.zrange(key, 0, -1, withscores=True))
                entries = [(_text(member), float(score)) for member, score in scored]
                flags = active([job_id for job_id, _ in entries])
                now = clock()
                ended = [
                    entry_id
                    for (entry_id, accepted_at), alive in zip(entries, flags, strict=True)
                    if alive is False or (alive is None and now - accepted_at > RESERVATION_GRACE_SECONDS)
                ]
                count = len(entries) - len(ended)
                pipe.multi()
                if ended:
                    pipe.zrem(key, *ended)
                if count >= limit:
                    pipe.execute()
                    return count
                pipe.zadd(key, {job_id: now})
                pipe.expire(key, keys.CLIENT_TTL)
                pipe.execute()
                return None
            except WatchError:
                continue


def release(connection: Redis, client: str, job_id: str) -> None:
    """Give back a reservation whose job was never queued."""
    connection.zrem(keys.client(client), job_id)


def transfer(connection: Redis, client: str, reserved_id: str, job_id: str, *, clock: Clock = time.time) -> None:
    """Count ``job_id`` in place of the reservation ``reserved_id`` (the job got another id)."""
    key = keys.client(client)
    with connection.pipeline() as pipe:
        pipe.zrem(key, reserved_id)
        pipe.zadd(key, {job_id: clock()})
        pipe.expire(key, keys.CLIENT_TTL)
        pipe.execute()
