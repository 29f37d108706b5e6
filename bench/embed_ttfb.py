"""Time to first byte of a chart URL already rendered, against a QuickChart-style render in the request.

Run it with ``python -m bench.embed_ttfb`` (see bench/README.md). It starts a private Redis,
one render worker and two gunicorns with the same production settings
(``plotjobs.web.gunicorn_config``, the same number of processes): plotjobs itself, and a
synchronous chart server that validates the same spec with the same code and renders it with
the same matplotlib render inside the request, as QuickChart does. Each spec is rendered once
by plotjobs first (the cached case is what a reader's second and later loads cost); then
samples alternate between the two servers over keep-alive connections, so both see the same
machine load. The figure is the ratio of the medians, measured in this one run.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import Processes, service_env, start_gunicorn  # noqa: E402
from plotjobs import chart_urls  # noqa: E402
from plotjobs.cli.embedded_redis import EmbeddedRedis  # noqa: E402

DEFAULT_SAMPLES = 200
WEB_PROCESSES = 2
# The queues of the web app and the worker: plotjobs' default ones.
QUEUES = "high,default,low"
SPECS: dict[str, dict[str, Any]] = {
    "demo chart (10 points)": {"title": "TTFB", "seed": 42, "start": "2026-01-01"},
    # A URL of 3.1 kB, of the 8,000 bytes CHART_URL_MAX_BYTES allows.
    "line of 800 points": {"title": "TTFB 800", "series": [{"name": "s", "y": [(i * 37) % 101 for i in range(800)]}]},
}


def create_sync_app() -> Flask:
    """The QuickChart-style server: ``GET /chart.png?c=`` validated as plotjobs does, rendered in the request."""
    from plotjobs.render import chart as charts
    from plotjobs.spec.chart import ChartSpec
    from plotjobs.web import embed, http_errors, spec_input

    app = Flask(__name__)
    http_errors.register_error_handlers(app)
    charts.warm_up()

    @app.get("/chart.<file_format>")
    def chart(file_format: str) -> Response:
        sizes = {name: request.args.get(name) for name in embed.SIZE_PARAMETERS}
        document = embed.url_document(request.args.get("c"))
        served = ("chart",)
        generator = spec_input.chosen_generator(document, served)
        document = embed.sized(generator, embed.in_format(generator, document, file_format), sizes)
        spec = embed.reproducible_spec(generator, document, file_format, served)
        assert isinstance(spec, ChartSpec)
        return Response(charts.render(spec), mimetype=spec.content_type)

    @app.get("/")
    def index() -> str:
        return "ok"

    return app


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def running_services(redis_url: str, processes: int = WEB_PROCESSES) -> Iterator[tuple[int, int]]:
    """A render worker, plotjobs' gunicorn and the synchronous one; yields their two ports."""
    children = Processes()
    try:
        children.start([sys.executable, str(ROOT / "worker.py")], service_env(redis_url, LOG_LEVEL="WARNING"))
        servers = [
            start_gunicorn(children, redis_url, processes, QUEUES, app=app)[0]
            for app in ("wsgi:app", "bench.embed_ttfb:create_sync_app()")
        ]
        ours, synchronous = (int(address.rsplit(":", 1)[1]) for address in servers)
        yield ours, synchronous
    finally:
        children.stop_all()


class Client:
    """One keep-alive connection; ``first_byte`` times a request to its status line and headers."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def first_byte(self, path: str) -> tuple[float, int, int]:
        """Seconds to the answer's first bytes (headers parsed), its status and its body's size."""
        started = time.perf_counter()
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        elapsed = time.perf_counter() - started
        return elapsed, response.status, len(response.read())


@dataclass
class Measurement:
    """One spec's samples, in seconds, for each server."""

    name: str
    cached: list[float]
    synchronous: list[float]
    size: int

    @property
    def ratio(self) -> float:
        """How many times longer the synchronous render takes to its first byte."""
        return statistics.median(self.synchronous) / statistics.median(self.cached)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * len(ordered)))]


def measure(ports: tuple[int, int], samples: int) -> list[Measurement]:
    """Render each spec once through plotjobs, then alternate cached and synchronous samples."""
    plotjobs_client, sync_client = Client(ports[0]), Client(ports[1])
    try:
        return _measure(plotjobs_client, sync_client, samples)
    finally:
        plotjobs_client.connection.close()
        sync_client.connection.close()


def _measure(plotjobs_client: Client, sync_client: Client, samples: int) -> list[Measurement]:
    found = []
    for name, spec in SPECS.items():
        path = chart_urls.chart_path(spec, "png")
        deadline = time.monotonic() + 60
        # The first load renders (waiting up to EMBED_WAIT_SECONDS); a 503 means ask again.
        while (status := plotjobs_client.first_byte(path)[1]) != 200:
            if time.monotonic() > deadline or status != 503:
                raise RuntimeError(f"plotjobs answered {status} for {name}")
        cached, synchronous, size = [], [], 0
        for _ in range(samples):
            elapsed, status, size = plotjobs_client.first_byte(path)
            assert status == 200, status
            cached.append(elapsed)
            elapsed, status, _ = sync_client.first_byte(path)
            assert status == 200, status
            synchronous.append(elapsed)
        found.append(Measurement(name, cached, synchronous, size))
    return found


def run(samples: int = DEFAULT_SAMPLES, web_processes: int = WEB_PROCESSES) -> list[Measurement]:
    """Start everything, measure, stop everything."""
    with EmbeddedRedis() as redis_server, running_services(redis_server.url, web_processes) as ports:
        log(f"measuring {samples} samples per spec and server")
        return measure(ports, samples)


def table(measurements: list[Measurement]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| spec | cached chart URL: TTFB median (p90) | synchronous render: TTFB median (p90) | ratio | PNG bytes |",
        "|---|---|---|---|---|",
    ]
    for item in measurements:
        lines.append(
            f"| {item.name} | {1000 * statistics.median(item.cached):.2f} ms ({1000 * _p90(item.cached):.2f} ms) "
            f"| {1000 * statistics.median(item.synchronous):.1f} ms ({1000 * _p90(item.synchronous):.1f} ms) "
            f"| {item.ratio:.0f}x | {item.size:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="requests per spec and server")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    result = table(run(args.samples))
    print(result)
    if args.output:
        args.output.write_text(result + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
