"""Endpoints for operators: liveness, readiness and Prometheus metrics, and request timing."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.exceptions import RedisError

from plotjobs.queue import jobs
from plotjobs.web.extension import current_redis, current_request_metrics, current_settings
from plotjobs.web.metrics_collector import RedisCollector

blueprint = Blueprint("monitoring", __name__)
log = logging.getLogger(__name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and answering (it checks nothing else)."""
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Redis answers; with the workers alive and the depth of each queue. 503 when Redis does not answer."""
    connection, settings = current_redis(), current_settings()
    try:
        connection.ping()
        depths = jobs.queue_depths(connection, jobs.generator_queue_names(settings))
        workers = jobs.worker_heartbeats(connection)
    except RedisError as error:
        return {"status": "unavailable", "redis": f"unreachable: {error.__class__.__name__}"}, 503
    return {
        "status": "ok",
        "redis": "ok",
        "workers": len(workers),
        "queues": depths,
        "worker_heartbeats": {worker["name"]: worker["seconds_since_heartbeat"] for worker in workers},
    }, 200


@blueprint.get("/metrics")
def prometheus_metrics() -> Response:
    """Every metric in Prometheus' text format: jobs from Redis (all hosts agree), requests from this host."""
    connection, settings = current_redis(), current_settings()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        RedisCollector(
            connection,
            jobs.queue_depths(connection, jobs.generator_queue_names(settings)),
            len(jobs.worker_heartbeats(connection)),
        )
    )
    registry.register(current_request_metrics().collector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})  # fmt: skip


def _start_timer() -> None:
    # Liveness probes are not traffic: leaving them out keeps the histogram to what clients asked.
    if request.endpoint != "monitoring.healthz":
        g.plotjobs_metrics_started = time.perf_counter()


def _record_latency(response: Response) -> Response:
    started = g.get("plotjobs_metrics_started")
    if started is not None:
        # Requests that matched no route share one label, so scanners cannot add series.
        endpoint, method = (request.endpoint, request.method) if request.endpoint else ("unmatched", "ANY")
        try:
            current_request_metrics().observe(method, endpoint, time.perf_counter() - started)
        except OSError as error:
            # Under gunicorn the counts go to files; a full or unwritable directory must not fail the request.
            log.warning("request latency not recorded: %s", error.__class__.__name__)
    return response


def init_app(app: Flask) -> None:
    """Serve the probes and metrics, and time every request."""
    app.register_blueprint(blueprint)
    app.before_request(_start_timer)
    app.after_request(_record_latency)
