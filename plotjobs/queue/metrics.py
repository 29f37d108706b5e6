"""Job counters and render histograms kept in Redis, written once per job by every process.

Every web process and every worker, on every host, increments the same Redis hashes, so
whichever gunicorn process answers a scrape reports the totals of all of them. Request
timings are not here: they stay on the web host that served them (plotjobs.web.request_metrics).
"""

from __future__ import annotations

from redis import Redis

from plotjobs import keys

JOB_OUTCOMES = ("submitted", "finished", "failed")
RENDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SEPARATOR = "|"


def count_job(connection: Redis, outcome: str, kind: str) -> None:
    """Add one to the count of jobs of ``kind`` that reached ``outcome`` (submitted, finished, failed)."""
    pipeline = connection.pipeline(transaction=False)
    pipeline.hincrby(keys.METRICS_JOBS, f"{outcome}{SEPARATOR}{kind}", 1)
    pipeline.expire(keys.METRICS_JOBS, keys.METRICS_TTL)
    pipeline.execute()


def _observe(connection: Redis, key: str, label: str, seconds: float, buckets: tuple[float, ...]) -> None:
    pipeline = connection.pipeline(transaction=False)
    for bound in buckets:
        if seconds <= bound:
            pipeline.hincrby(key, f"{label}{SEPARATOR}le={bound}", 1)
    pipeline.hincrby(key, f"{label}{SEPARATOR}count", 1)
    pipeline.hincrbyfloat(key, f"{label}{SEPARATOR}sum", seconds)
    pipeline.expire(key, keys.METRICS_TTL)
    pipeline.execute()


def observe_render(connection: Redis, kind: str, seconds: float) -> None:
    """Record how long one render of ``kind`` took."""
    _observe(connection, keys.METRICS_RENDER, kind, seconds, RENDER_BUCKETS)
