"""Counters and histograms kept in Redis, and a Prometheus collector that reads them.

Every web process and every worker increments the same Redis hashes, so whichever
gunicorn process answers a scrape reports the totals of all of them: there is no
per-process state to merge and no multiprocess directory to share between hosts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis

JOBS_KEY = "plotjobs:metrics:jobs"
RENDER_KEY = "plotjobs:metrics:render_seconds"
REQUESTS_KEY = "plotjobs:metrics:request_seconds"
# Counters must outlive scrapes and restarts, yet every key of ours expires: each write
# pushes the expiry back, so only a service idle for this long loses its totals.
TTL_SECONDS = 90 * 24 * 3600

JOB_OUTCOMES = ("submitted", "finished", "failed")
RENDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SEPARATOR = "|"


def count_job(connection: Redis, outcome: str, kind: str) -> None:
    """Add one to the count of jobs of ``kind`` that reached ``outcome`` (submitted, finished, failed)."""
    pipeline = connection.pipeline(transaction=False)
    pipeline.hincrby(JOBS_KEY, f"{outcome}{_SEPARATOR}{kind}", 1)
    pipeline.expire(JOBS_KEY, TTL_SECONDS)
    pipeline.execute()


def _observe(connection: Redis, key: str, label: str, seconds: float, buckets: tuple[float, ...]) -> None:
    pipeline = connection.pipeline(transaction=False)
    for bound in buckets:
        if seconds <= bound:
            pipeline.hincrby(key, f"{label}{_SEPARATOR}le={bound}", 1)
    pipeline.hincrby(key, f"{label}{_SEPARATOR}count", 1)
    pipeline.hincrbyfloat(key, f"{label}{_SEPARATOR}sum", seconds)
    pipeline.expire(key, TTL_SECONDS)
    pipeline.execute()


def observe_render(connection: Redis, kind: str, seconds: float) -> None:
    """Record how long one render of ``kind`` took."""
    _observe(connection, RENDER_KEY, kind, seconds, RENDER_BUCKETS)


def observe_request(connection: Redis, method: str, endpoint: str, seconds: float) -> None:
    """Record how long one request to ``endpoint`` took."""
    _observe(connection, REQUESTS_KEY, f"{method} {endpoint}", seconds, REQUEST_BUCKETS)


def _decoded(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


def _histogram(
    family: HistogramMetricFamily,
    fields: Mapping[str, str],
    buckets: tuple[float, ...],
    labels_of: dict[str, list[str]],
) -> HistogramMetricFamily:
    for label, label_values in sorted(labels_of.items()):
        cumulative = [(str(bound), float(fields.get(f"{label}{_SEPARATOR}le={bound}", 0))) for bound in buckets]
        count = float(fields.get(f"{label}{_SEPARATOR}count", 0))
        family.add_metric(
            label_values,
            buckets=[*cumulative, ("+Inf", count)],
            sum_value=float(fields.get(f"{label}{_SEPARATOR}sum", 0)),
        )
    return family


def _labels(fields: Iterable[str]) -> set[str]:
    return {field.rsplit(_SEPARATOR, 1)[0] for field in fields if field.endswith(f"{_SEPARATOR}count")}


class RedisCollector(Collector):
    """Reads the totals from Redis at scrape time, plus the live queue depths and worker count."""

    def __init__(self, connection: Redis, queue_depths: Mapping[str, int], workers_alive: int) -> None:
        self.connection = connection
        self.queue_depths = queue_depths
        self.workers_alive = workers_alive

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape."""
        pipeline = self.connection.pipeline(transaction=False)
        for key in (JOBS_KEY, RENDER_KEY, REQUESTS_KEY):
            pipeline.hgetall(key)
        jobs_raw, render_raw, requests_raw = (_decoded(raw) for raw in pipeline.execute())

        families = {
            outcome: CounterMetricFamily(f"plotjobs_jobs_{outcome}", f"Chart jobs {outcome}, by kind.", labels=["kind"])
            for outcome in JOB_OUTCOMES
        }
        for field, value in sorted(jobs_raw.items()):
            outcome, _, kind = field.partition(_SEPARATOR)
            if outcome in families:
                families[outcome].add_metric([kind], float(value))
        yield from families.values()

        yield _histogram(
            HistogramMetricFamily(
                "plotjobs_render_duration_seconds", "Time a worker spent on one render.", labels=["kind"]
            ),
            render_raw,
            RENDER_BUCKETS,
            {kind: [kind] for kind in _labels(render_raw)},
        )
        yield _histogram(
            HistogramMetricFamily(
                "plotjobs_http_request_duration_seconds", "Time the web app spent on one request.",
                labels=["method", "endpoint"],
            ),
            requests_raw,
            REQUEST_BUCKETS,
            {label: label.split(" ", 1) for label in _labels(requests_raw)},
        )  # fmt: skip

        depth = GaugeMetricFamily("plotjobs_queue_depth", "Jobs waiting in each queue.", labels=["queue"])
        for name, count in sorted(self.queue_depths.items()):
            depth.add_metric([name], count)
        yield depth
        yield GaugeMetricFamily(
            "plotjobs_workers_alive", "RQ workers whose heartbeat keeps them registered.", value=self.workers_alive
        )
