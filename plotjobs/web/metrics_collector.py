"""The Prometheus collector of the job counters and render times that workers and web processes keep in Redis."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis

from plotjobs import keys
from plotjobs.queue import metrics


def _decoded(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    """The hash as text, keeping only fields whose value is a number (anything else was not written by us)."""
    decoded = {key.decode(errors="replace"): value.decode(errors="replace") for key, value in raw.items()}
    return {key: value for key, value in decoded.items() if _is_number(value)}


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _histogram(
    family: HistogramMetricFamily,
    fields: Mapping[str, str],
    buckets: tuple[float, ...],
    labels_of: dict[str, list[str]],
) -> HistogramMetricFamily:
    for label, label_values in sorted(labels_of.items()):
        # Each observation is stored in its own bucket only; Prometheus wants them cumulative.
        cumulative, running = [], 0.0
        for bound, count in _bucket_counts(fields, label, buckets):
            running += count
            cumulative.append((bound, running))
        family.add_metric(
            label_values,
            buckets=cumulative,
            sum_value=float(fields.get(f"{label}{metrics.SEPARATOR}sum", 0)),
        )
    return family


def _bucket_counts(fields: Mapping[str, str], label: str, buckets: tuple[float, ...]) -> list[tuple[str, float]]:
    """Each bucket bound of ``label``'s histogram (``+Inf`` last) with the observations it holds alone."""
    prefix = f"{label}{metrics.SEPARATOR}{metrics.BUCKET_MARK}"
    bounds = (*(str(bound) for bound in buckets), metrics.INFINITE_BUCKET)
    return [(bound, float(fields.get(f"{prefix}{bound}", 0))) for bound in bounds]


def _labels(fields: Iterable[str]) -> set[str]:
    marker = f"{metrics.SEPARATOR}{metrics.BUCKET_MARK}"
    return {field.rsplit(marker, 1)[0] for field in fields if marker in field}


class RedisCollector(Collector):
    """Reads the totals from Redis at scrape time, plus the live queue depths and worker count."""

    def __init__(self, connection: Redis, queue_depths: Mapping[str, int], workers_alive: int) -> None:
        self.connection = connection
        self.queue_depths = queue_depths
        self.workers_alive = workers_alive

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape."""
        fields = _decoded(cast(Mapping[bytes, bytes], self.connection.hgetall(keys.METRICS_JOBS)))
        render_prefix = f"{metrics.RENDER_FIELD}{metrics.SEPARATOR}"
        render_raw = {
            name.removeprefix(render_prefix): value for name, value in fields.items() if name.startswith(render_prefix)
        }
        jobs_raw = {name: value for name, value in fields.items() if not name.startswith(render_prefix)}

        families = {
            outcome: CounterMetricFamily(f"plotjobs_jobs_{outcome}", f"Chart jobs {outcome}, by kind.", labels=["kind"])
            for outcome in metrics.JOB_OUTCOMES
        }
        for field, value in sorted(jobs_raw.items()):
            outcome, _, kind = field.partition(metrics.SEPARATOR)
            if outcome in families and outcome != "finished":
                families[outcome].add_metric([kind], float(value))
        # A finished job is counted once, in its render time's bucket: the buckets of a kind are its finished jobs.
        for kind in sorted(_labels(render_raw)):
            finished = sum(count for _, count in _bucket_counts(render_raw, kind, metrics.RENDER_BUCKETS))
            families["finished"].add_metric([kind], finished)
        yield from families.values()

        yield _histogram(
            HistogramMetricFamily(
                "plotjobs_render_duration_seconds", "Time a worker spent on one render.", labels=["kind"]
            ),
            render_raw,
            metrics.RENDER_BUCKETS,
            {kind: [kind] for kind in _labels(render_raw)},
        )

        depth = GaugeMetricFamily("plotjobs_queue_depth", "Jobs waiting in each queue.", labels=["queue"])
        for name, count in sorted(self.queue_depths.items()):
            depth.add_metric([name], count)
        yield depth
        yield GaugeMetricFamily(
            "plotjobs_workers_alive", "RQ workers whose heartbeat keeps them registered.", value=self.workers_alive
        )
