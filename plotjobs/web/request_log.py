"""One JSON log line per request."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from plotjobs.logs import REQUEST_LOGGER, configure, log_event


def _start_timer() -> None:
    g.plotjobs_request_started = time.perf_counter()


def _log_request(response: Response) -> Response:
    started = g.get("plotjobs_request_started")
    log_event(
        REQUEST_LOGGER,
        "request",
        method=request.method,
        path=request.path,
        endpoint=request.endpoint,
        status=response.status_code,
        duration_ms=round((time.perf_counter() - started) * 1000, 2) if started is not None else None,
        remote_addr=request.remote_addr,
    )
    return response


def init_app(app: Flask, level: str) -> None:
    """Configure JSON logging and log one line per request."""
    configure(level)
    app.before_request(_start_timer)
    app.after_request(_log_request)
