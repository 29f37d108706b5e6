"""Counters and histograms in shared Redis hashes, each write pushing the expiry back."""

from __future__ import annotations

from redis import Redis

from plotjobs import keys
from plotjobs.queue import metrics


def test_count_job_increments_and_sets_the_expiry(fake_redis: Redis) -> None:
    metrics.count_job(fake_redis, "submitted", "line")
    metrics.count_job(fake_redis, "submitted", "line")
    metrics.count_job(fake_redis, "failed", "bar")
    assert fake_redis.hgetall(keys.METRICS_JOBS) == {b"submitted|line": b"2", b"failed|bar": b"1"}
    assert 0 < fake_redis.ttl(keys.METRICS_JOBS) <= keys.METRICS_TTL


def _fields(connection: Redis, key: str) -> dict[str, str]:
    return {field.decode(): value.decode() for field, value in connection.hgetall(key).items()}


def test_a_finished_render_adds_to_the_one_bucket_of_its_duration(fake_redis: Redis) -> None:
    metrics.record_render(fake_redis, "pie", 0.3, finished=True)
    metrics.record_render(fake_redis, "pie", 500.0, finished=True)
    fields = _fields(fake_redis, keys.METRICS_JOBS)
    assert fields.keys() == {
        "render_seconds|pie|bucket=0.5",
        "render_seconds|pie|bucket=+Inf",
        "render_seconds|pie|sum",
    }
    assert float(fields["render_seconds|pie|sum"]) == 500.3
    assert 0 < fake_redis.ttl(keys.METRICS_JOBS) <= keys.METRICS_TTL


def test_record_render_times_a_finished_render_and_counts_a_failed_one(fake_redis: Redis) -> None:
    metrics.record_render(fake_redis, "bar", 0.01, finished=True)
    metrics.record_render(fake_redis, "bar", 0.02, finished=False)
    assert _fields(fake_redis, keys.METRICS_JOBS) == {
        "failed|bar": "1", "render_seconds|bar|bucket=0.05": "1", "render_seconds|bar|sum": "0.01"
    }  # fmt: skip
    assert 0 < fake_redis.ttl(keys.METRICS_JOBS) <= keys.METRICS_TTL
