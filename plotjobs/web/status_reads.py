"""``GET /api/jobs/<id>`` served below Flask when one ``HMGET`` answers it: the request clients poll.

A page or a client polls its job's status while the job runs, so this is the request the web
tier serves most. For a job that has not failed the answer is one read of the job's fields
(``status.quick``; a queued job adds its position), and Flask's request context, routing and
hooks would cost more than that read (docs/benchmarks.md). So those answers are made here, with
the headers, request log line and request metrics the Flask view gives them; everything else
(another method, a failed job, an unknown id, Redis failing) goes on to Flask, which answers it
as always.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from redis import Redis
from redis.exceptions import RedisError

from plotjobs.logs import REQUEST_LOGGER, log_event
from plotjobs.queue import status
from plotjobs.web.security import security_headers

if TYPE_CHECKING:
    from plotjobs.web.request_metrics import RequestMetrics

# The Flask view this serves (plotjobs.web.api.job_status), as its route and its endpoint name.
_STATUS_PATH = re.compile(r"/api/jobs/(?P<job_id>[^/]+)")
STATUS_ENDPOINT = "api.job_status"

log = logging.getLogger(__name__)


class StatusReads:
    """WSGI middleware: answers the status reads ``status.quick`` can, passes every other request on."""

    def __init__(
        self,
        app: WSGIApplication,
        connection: Redis,
        request_metrics: RequestMetrics,
        dumps: Callable[[Any], str],
    ) -> None:
        self.app = app
        self.connection = connection
        self.request_metrics = request_metrics
        self.dumps = dumps
        self.headers = [("Content-Type", "application/json"), *security_headers("/api/jobs/").items()]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer a status read from one ``HMGET``, or let the app answer the request."""
        if environ["REQUEST_METHOD"] != "GET":
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        matched = _STATUS_PATH.fullmatch(path)
        if matched is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            found = status.quick(self.connection, matched["job_id"])
        except RedisError:
            found = None  # the view meets the same error and answers it as it answers every Redis failure
        if found is None:
            return self.app(environ, start_response)
        # As Flask serialises a view's dict: its JSON provider, then a newline.
        body = (self.dumps(found) + "\n").encode()
        start_response("200 OK", [*self.headers, ("Content-Length", str(len(body)))])
        seconds = time.perf_counter() - started
        try:
            self.request_metrics.observe("GET", STATUS_ENDPOINT, seconds)
        except OSError as error:
            log.warning("request latency not recorded: %s", error.__class__.__name__)
        log_event(
            REQUEST_LOGGER,
            "request",
            method="GET",
            path=path,
            endpoint=STATUS_ENDPOINT,
            status=200,
            duration_ms=round(seconds * 1000, 2),
            remote_addr=environ.get("REMOTE_ADDR"),
        )
        return [body]
