"""Who still wants a job: each cancel token withdraws its own submitter's interest, once."""

from __future__ import annotations

import pytest
from redis import Redis

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.errors import CancelTokenInvalid
from plotjobs.queue import interest


def test_each_submitter_withdraws_once_and_the_count_falls(fake_redis: Redis) -> None:
    settings = Settings(redis_url="redis://fake", result_ttl=600, failure_ttl=900)
    first = interest.record(fake_redis, settings, "job-1")
    second = interest.record(fake_redis, settings, "job-1")
    assert first != second
    assert 0 < fake_redis.ttl(keys.interest("job-1")) <= 900
    stored = {member.decode() for member in fake_redis.smembers(keys.interest("job-1"))}
    assert first not in stored and second not in stored  # only digests are kept
    assert interest.withdraw(fake_redis, "job-1", first) == 1
    with pytest.raises(CancelTokenInvalid):
        interest.withdraw(fake_redis, "job-1", first)
    assert interest.withdraw(fake_redis, "job-1", second) == 0


def test_a_token_of_another_job_is_refused(fake_redis: Redis) -> None:
    token = interest.record(fake_redis, Settings(redis_url="redis://fake"), "job-1")
    with pytest.raises(CancelTokenInvalid):
        interest.withdraw(fake_redis, "job-2", token)


def test_a_record_on_a_real_redis_adds_the_digest_with_its_expiry(redis_connection: Redis) -> None:
    settings = Settings(redis_url="redis://unused", result_ttl=600, failure_ttl=900)
    token = interest.record(redis_connection, settings, "job-1")
    assert redis_connection.scard(keys.interest("job-1")) == 1
    assert 0 < redis_connection.ttl(keys.interest("job-1")) <= 900
    assert interest.withdraw(redis_connection, "job-1", token) == 0
