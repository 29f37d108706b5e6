"""Per-client limits on fakeredis: what counts as one of a client's active jobs."""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis import Redis

from plotjobs import keys
from plotjobs.queue import limits

CLIENT = "192.0.2.1"


def flags_of(standing: dict[str, bool | None]) -> limits.ActiveFlags:
    """Job states as the limits see them: True active, False ended, None not written (yet)."""

    def flags(job_ids: Sequence[str]) -> list[bool | None]:
        return [standing.get(job_id) for job_id in job_ids]

    return flags


def test_an_ended_job_frees_its_place_at_once(fake_redis: Redis) -> None:
    standing: dict[str, bool | None] = {}
    for number in range(5):
        assert limits.reserve(fake_redis, CLIENT, f"job-{number}", 1, flags_of(standing)) is None
        standing[f"job-{number}"] = False  # it ran and ended right away
    assert fake_redis.zrange(keys.client(CLIENT), 0, -1) == [b"job-4"]


def test_a_reservation_without_its_job_counts_only_during_the_grace(fake_redis: Redis) -> None:
    standing: dict[str, bool | None] = {"running": True}
    assert limits.reserve(fake_redis, CLIENT, "running", 2, flags_of(standing)) is None
    assert limits.reserve(fake_redis, CLIENT, "on-its-way", 2, flags_of(standing)) is None
    assert limits.reserve(fake_redis, CLIENT, "third", 2, flags_of(standing)) == 2
    fake_redis.zadd(keys.client(CLIENT), {"on-its-way": time.time() - limits.RESERVATION_GRACE_SECONDS - 1})
    assert limits.reserve(fake_redis, CLIENT, "third", 2, flags_of(standing)) is None
    assert limits.reserve(fake_redis, CLIENT, "fourth", 2, flags_of(standing)) == 2
