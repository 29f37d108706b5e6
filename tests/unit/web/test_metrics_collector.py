"""The Prometheus collector reads the job totals every process keeps in Redis (requests are not among them)."""

from __future__ import annotations

from prometheus_client.core import Metric
from redis import Redis

from plotjobs import keys
from plotjobs.queue import metrics
from plotjobs.web.metrics_collector import RedisCollector


def _families(fake_redis: Redis) -> dict[str, Metric]:
    collector = RedisCollector(fake_redis, {"default": 3}, workers_alive=2)
    return {family.name: family for family in collector.collect()}


def _samples(family: Metric) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value for sample in family.samples}


def test_collect_reads_the_hashes(fake_redis: Redis) -> None:
    metrics.count_job(fake_redis, "submitted", "line")
    metrics.record_render(fake_redis, "line", 0.5, finished=False)
    metrics.record_render(fake_redis, "line", 0.3, finished=True)
    metrics.record_render(fake_redis, "line", 0.04, finished=True)
    metrics.record_render(fake_redis, "line", 1000.0, finished=True)
    families = _families(fake_redis)
    finished = _samples(families["plotjobs_jobs_finished"])
    # The finished jobs of a kind are its render times' observations, counted once.
    assert finished == {("plotjobs_jobs_finished_total", (("kind", "line"),)): 3.0}
    submitted = _samples(families["plotjobs_jobs_submitted"])
    assert submitted == {("plotjobs_jobs_submitted_total", (("kind", "line"),)): 1.0}
    assert _samples(families["plotjobs_jobs_failed"]) == {("plotjobs_jobs_failed_total", (("kind", "line"),)): 1.0}
    render = _samples(families["plotjobs_render_duration_seconds"])
    assert render[("plotjobs_render_duration_seconds_bucket", (("kind", "line"), ("le", "0.05")))] == 1.0
    assert render[("plotjobs_render_duration_seconds_bucket", (("kind", "line"), ("le", "0.25")))] == 1.0
    assert render[("plotjobs_render_duration_seconds_bucket", (("kind", "line"), ("le", "0.5")))] == 2.0
    assert render[("plotjobs_render_duration_seconds_bucket", (("kind", "line"), ("le", "120.0")))] == 2.0
    assert render[("plotjobs_render_duration_seconds_bucket", (("kind", "line"), ("le", "+Inf")))] == 3.0
    assert render[("plotjobs_render_duration_seconds_count", (("kind", "line"),))] == 3.0
    assert "plotjobs_http_request_duration_seconds" not in families
    assert _samples(families["plotjobs_queue_depth"]) == {("plotjobs_queue_depth", (("queue", "default"),)): 3.0}
    assert _samples(families["plotjobs_workers_alive"]) == {("plotjobs_workers_alive", ()): 2.0}


def test_fields_we_did_not_write_are_skipped(fake_redis: Redis) -> None:
    fake_redis.hset(
        keys.METRICS_JOBS,
        mapping={"render_seconds|bar|bucket=0.1": "1", "render_seconds|bar|bucket=0.3": "5", "failed|pie": "many",
                 "bogus|x": "3", "finished|bar": "7"},
    )  # fmt: skip
    families = _families(fake_redis)
    assert _samples(families["plotjobs_jobs_finished"]) == {("plotjobs_jobs_finished_total", (("kind", "bar"),)): 1.0}
    assert _samples(families["plotjobs_jobs_failed"]) == {}
