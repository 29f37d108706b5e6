"""Per-client limits on fakeredis: what counts as one of a client's active jobs."""

from __future__ import annotations

import time
from collections.abc import Sequence

import fakeredis
import pytest
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


# --- exact rules, on a fixed clock ------------------------------------------------------------

T0 = 1_700_000_000.0


def at(moment: float) -> limits.Clock:
    """A clock that always says ``moment``."""
    return lambda: moment


def counted(connection: Redis) -> dict[str, float]:
    """The client's counted job ids with the time each was counted."""
    scored = connection.zrange(keys.client(CLIENT), 0, -1, withscores=True)
    return {(member.decode() if isinstance(member, bytes) else member): score for member, score in scored}


def test_a_reservation_is_counted_at_its_time_in_a_key_that_lives_a_day(fake_redis: Redis) -> None:
    assert limits.reserve(fake_redis, CLIENT, "first", 1, flags_of({}), clock=at(T0)) is None
    assert counted(fake_redis) == {"first": T0}
    assert fake_redis.ttl(keys.client(CLIENT)) == keys.CLIENT_TTL == 86400


def test_the_default_clock_is_the_wall_clock(fake_redis: Redis) -> None:
    before = time.time()
    assert limits.reserve(fake_redis, CLIENT, "now", 1, flags_of({})) is None
    assert before <= counted(fake_redis)["now"] <= time.time()


def test_a_client_is_refused_at_exactly_its_limit_with_its_count(fake_redis: Redis) -> None:
    standing: dict[str, bool | None] = {"a": True, "b": True, "c": True}
    for job_id in ("a", "b", "c"):
        assert limits.reserve(fake_redis, CLIENT, job_id, 3, flags_of(standing), clock=at(T0)) is None
    fake_redis.expire(keys.client(CLIENT), 100)
    assert limits.reserve(fake_redis, CLIENT, "d", 3, flags_of(standing), clock=at(T0 + 1)) == 3
    # A refusal counts nothing and leaves the key's life alone.
    assert counted(fake_redis) == {"a": T0, "b": T0, "c": T0}
    assert fake_redis.ttl(keys.client(CLIENT)) == 100
    assert limits.reserve(fake_redis, CLIENT, "d", 4, flags_of(standing), clock=at(T0 + 1)) is None
    assert counted(fake_redis) == {"a": T0, "b": T0, "c": T0, "d": T0 + 1}


def test_other_clients_are_counted_apart(fake_redis: Redis) -> None:
    standing: dict[str, bool | None] = {"a": True}
    assert limits.reserve(fake_redis, CLIENT, "a", 1, flags_of(standing), clock=at(T0)) is None
    assert limits.reserve(fake_redis, "198.51.100.7", "b", 1, flags_of(standing), clock=at(T0)) is None
    assert fake_redis.zrange(keys.client("198.51.100.7"), 0, -1) == [b"b"]


def test_a_running_job_counts_however_long_ago_it_was_accepted(fake_redis: Redis) -> None:
    standing: dict[str, bool | None] = {"long-running": True}
    assert limits.reserve(fake_redis, CLIENT, "long-running", 1, flags_of(standing), clock=at(T0)) is None
    for later in (T0 + 30, T0 + 31, T0 + 3600):
        assert limits.reserve(fake_redis, CLIENT, "next", 1, flags_of(standing), clock=at(later)) == 1
    assert counted(fake_redis) == {"long-running": T0}


def test_a_reservation_without_its_job_counts_for_exactly_30_seconds(fake_redis: Redis) -> None:
    assert limits.RESERVATION_GRACE_SECONDS == 30
    assert limits.reserve(fake_redis, CLIENT, "pending", 1, flags_of({}), clock=at(T0)) is None
    assert limits.reserve(fake_redis, CLIENT, "next", 1, flags_of({}), clock=at(T0 + 30)) == 1
    assert counted(fake_redis) == {"pending": T0}
    assert limits.reserve(fake_redis, CLIENT, "next", 1, flags_of({}), clock=at(T0 + 30.5)) is None
    assert counted(fake_redis) == {"next": T0 + 30.5}


def test_an_ended_job_stops_counting_at_once(fake_redis: Redis) -> None:
    standing: dict[str, bool | None] = {"done": False}
    assert limits.reserve(fake_redis, CLIENT, "done", 1, flags_of(standing), clock=at(T0)) is None
    assert limits.reserve(fake_redis, CLIENT, "next", 1, flags_of(standing), clock=at(T0)) is None
    assert counted(fake_redis) == {"next": T0}


def test_a_refusal_still_forgets_the_jobs_that_ended(fake_redis: Redis) -> None:
    fake_redis.zadd(keys.client(CLIENT), {"live": T0, "done": T0, "vanished": T0 - 60, "pending": T0 - 10})
    standing: dict[str, bool | None] = {"live": True, "done": False}
    assert limits.reserve(fake_redis, CLIENT, "new", 2, flags_of(standing), clock=at(T0)) == 2
    assert counted(fake_redis) == {"live": T0, "pending": T0 - 10}


@pytest.mark.parametrize("decode_responses", [False, True])
def test_the_limits_ask_about_each_counted_id_by_name(decode_responses: bool) -> None:
    connection = fakeredis.FakeRedis(decode_responses=decode_responses)
    connection.zadd(keys.client(CLIENT), {"older": T0 - 2, "newer": T0 - 1})
    asked: list[list[str]] = []

    def flags(job_ids: Sequence[str]) -> list[bool | None]:
        asked.append(list(job_ids))
        return [True for _ in job_ids]

    assert limits.reserve(connection, CLIENT, "third", 3, flags, clock=at(T0)) is None
    assert asked == [["older", "newer"]]
    assert counted(connection) == {"older": T0 - 2, "newer": T0 - 1, "third": T0}


def test_flags_that_skip_an_id_are_an_error_not_a_free_place(fake_redis: Redis) -> None:
    fake_redis.zadd(keys.client(CLIENT), {"a": T0, "b": T0})
    with pytest.raises(ValueError, match="zip"):
        limits.reserve(fake_redis, CLIENT, "c", 2, lambda job_ids: [True], clock=at(T0))


def test_a_reservation_made_meanwhile_is_seen_before_counting_a_new_one(fake_redis: Redis) -> None:
    standing: dict[str, bool | None] = {"mine": True, "concurrent": True}
    fake_redis.zadd(keys.client(CLIENT), {"mine": T0})
    calls = 0

    def flags_while_another_request_reserves(job_ids: Sequence[str]) -> list[bool | None]:
        nonlocal calls
        calls += 1
        if calls == 1:
            # Another request of the same client counts its job between this one's read and write.
            fake_redis.zadd(keys.client(CLIENT), {"concurrent": T0})
        return flags_of(standing)(job_ids)

    assert limits.reserve(fake_redis, CLIENT, "late", 2, flags_while_another_request_reserves, clock=at(T0)) == 2
    assert calls == 2
    assert counted(fake_redis) == {"concurrent": T0, "mine": T0}


def test_release_gives_back_only_its_own_reservation(fake_redis: Redis) -> None:
    fake_redis.zadd(keys.client(CLIENT), {"kept": T0, "given-back": T0})
    limits.release(fake_redis, CLIENT, "given-back")
    assert counted(fake_redis) == {"kept": T0}


def test_transfer_counts_the_job_in_place_of_its_reservation(fake_redis: Redis) -> None:
    fake_redis.zadd(keys.client(CLIENT), {"other": T0 - 5, "reserved": T0 - 1})
    limits.transfer(fake_redis, CLIENT, "reserved", "shared", clock=at(T0))
    assert counted(fake_redis) == {"other": T0 - 5, "shared": T0}
    assert fake_redis.ttl(keys.client(CLIENT)) == keys.CLIENT_TTL


def test_transfer_uses_the_wall_clock_by_default(fake_redis: Redis) -> None:
    before = time.time()
    limits.transfer(fake_redis, CLIENT, "reserved", "shared")
    assert before <= counted(fake_redis)["shared"] <= time.time()
