"""Counters and histograms in shared Redis hashes, each write pushing the expiry back."""

from __future__ import annotations

from redis import Redis

from plotjobs import keys
from plotjobs.queue import metrics


def test_count_job_increments_and_sets_the_expiry(fake_redis: Redis) -> None:
    metrics.count_job(fake_redis, "finished", "line")
    metrics.count_job(fake_redis, "finished", "line")
    metrics.count_job(fake_redis, "failed", "bar")
    assert fake_redis.hgetall(keys.METRICS_JOBS) == {b"finished|line": b"2", b"failed|bar": b"1"}
    assert 0 < fake_redis.ttl(keys.METRICS_JOBS) <= keys.METRICS_TTL


def test_observe_render_fills_the_buckets_at_or_above_the_duration(fake_redis: Redis) -> None:
    metrics.observe_render(fake_redis, "pie", 0.3)
    fields = {key.decode(): value.decode() for key, value in fake_redis.hgetall(keys.METRICS_RENDER).items()}
    assert "pie|le=0.25" not in fields and fields["pie|le=0.5"] == "1" and fields["pie|le=120.0"] == "1"
    assert fields["pie|count"] == "1" and float(fields["pie|sum"]) == 0.3
    assert 0 < fake_redis.ttl(keys.METRICS_RENDER) <= keys.METRICS_TTL
