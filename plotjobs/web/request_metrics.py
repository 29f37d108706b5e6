"""How long each request took, counted in the web process that served it: nothing goes to Redis.

Under gunicorn every process writes its counts to its own files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode), and a scrape, whichever process answers it, adds up
the files of every process of that gunicorn, the exited ones included. Without that directory
(tests, ``flask run``, any single process) the histogram lives in this process's memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from plotjobs.config import ConfigError

REQUEST_DURATION = "plotjobs_http_request_duration_seconds"
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class _WithoutCreated(Collector):
    """The histogram without its ``_created`` series, which the multiprocess mode does not report either."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram

    def collect(self) -> Iterator[Metric]:
        """The histogram's family, its ``_created`` samples left out."""
        for family in self.histogram.collect():
            family.samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
            yield family


class RequestMetrics:
    """The request histogram of one web app, and the collector that reports it at scrape time."""

    def __init__(self, multiprocess_dir: str | None) -> None:
        if multiprocess_dir is not None:
            _check_multiprocess_dir(multiprocess_dir)
        self.multiprocess_dir = multiprocess_dir
        # In no registry: a scrape builds its own (see collector), so each app can have one.
        self.histogram = Histogram(
            REQUEST_DURATION,
            "Time the web app spent on one request.",
            labelnames=("method", "endpoint"),
            buckets=REQUEST_BUCKETS,
            registry=None,
        )

    def observe(self, method: str, endpoint: str, seconds: float) -> None:
        """Record how long one request to ``endpoint`` took."""
        self.histogram.labels(method, endpoint).observe(seconds)

    def collector(self) -> Collector:
        """What a scrape reads: the files of every process sharing the directory, or this process's histogram."""
        if self.multiprocess_dir is None:
            return _WithoutCreated(self.histogram)
        return MultiProcessCollector(None, self.multiprocess_dir)


def _check_multiprocess_dir(path: str) -> None:
    # prometheus_client chose between memory and files from the environment when it was imported;
    # a directory given only to Settings would leave every count in memory and report none.
    if os.environ.get(MULTIPROCESS_VARIABLE) != path:
        raise ConfigError(
            f"{MULTIPROCESS_VARIABLE} must be set in the environment before the process starts, "
            f"got {path!r} in the settings only"
        )
    if not Path(path).is_dir():
        raise ConfigError(f"{MULTIPROCESS_VARIABLE} must name an existing directory, got {path!r}")
