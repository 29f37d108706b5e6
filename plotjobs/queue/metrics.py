"""Job counters and render histograms kept in Redis, written once per job by every process.

Every web process and every worker, on every host, increments the same Redis hashes, so
whichever gunicorn process answers a scrape reports the totals of all of them. Request
timings are not here: they stay on the web host that served them (plotjobs.web.request_metrics).
"""

from __future__ import annotations

from redis import Redis
from redis.client import Pipeline

from plotjobs import keys

JOB_OUTCOMES = ("submitted", "finished", "failed")
RENDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SEPARATOR = "|"
# Render times share the jobs hash, so a finished job renews one expiry: ``render_seconds|<kind>|sum`` and
# per bucket, not cumulative, ``render_seconds|<kind>|bucket=<bound>`` (``bucket=+Inf`` past the last bound).
RENDER_FIELD = "render_seconds"
BUCKET_MARK = "bucket="
INFINITE_BUCKET = "+Inf"


def count_job(connection: Redis, outcome: str, kind: str) -> None:
    """Add one to the count of jobs of ``kind`` that reached ``outcome`` (submitted, finished, failed)."""
    pipeline = connection.pipeline(transaction=False)
    _count(pipeline, outcome, kind)
    pipeline.expire(keys.METRICS_JOBS, keys.METRICS_TTL)
    pipeline.execute()


def bucket_field(label: str, seconds: float) -> str:
    """The one field an observation of ``seconds`` adds to: its smallest bucket bound, or ``+Inf``."""
    bound = next((str(bound) for bound in RENDER_BUCKETS if seconds <= bound), INFINITE_BUCKET)
    return f"{RENDER_FIELD}{SEPARATOR}{label}{SEPARATOR}{BUCKET_MARK}{bound}"


def record_render(connection: Redis, kind: str, seconds: float, *, finished: bool) -> None:
    """Count one ended render of ``kind``: a finished one by how long it took, a failed one as failed.

    A finished render adds to one bucket of the render-time histogram only (the scrape sums the
    buckets into Prometheus' cumulative ones), and the buckets of a kind add up to its finished
    jobs, so no separate count is kept: three commands for a finished job.
    """
    pipeline = connection.pipeline(transaction=False)
    if finished:
        _observe(pipeline, kind, seconds)
    else:
        _count(pipeline, "failed", kind)
    pipeline.expire(keys.METRICS_JOBS, keys.METRICS_TTL)
    pipeline.execute()


def _observe(pipeline: Pipeline, kind: str, seconds: float) -> None:
    pipeline.hincrby(keys.METRICS_JOBS, bucket_field(kind, seconds), 1)
    pipeline.hincrbyfloat(keys.METRICS_JOBS, f"{RENDER_FIELD}{SEPARATOR}{kind}{SEPARATOR}sum", seconds)


def _count(pipeline: Pipeline, outcome: str, kind: str) -> None:
    pipeline.hincrby(keys.METRICS_JOBS, f"{outcome}{SEPARATOR}{kind}", 1)
