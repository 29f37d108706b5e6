"""The web layer's answer to every error: JSON under /api/ and the chart URLs, our error classes with their status."""

from __future__ import annotations

from http import HTTPStatus

from flask import Flask, Response, current_app, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from plotjobs.errors import PlotjobsError, RequestTooLarge, ServiceUnavailable, TooManyRequests

# Paths whose errors are JSON: the API, and the chart URLs (plotjobs.web.embed).
JSON_PATHS = ("/api/", "/chart.", "/c/")

# Seconds a client is told to wait before retrying while Redis is unavailable.
UNAVAILABLE_RETRY_AFTER = 5


def _json_error(error: PlotjobsError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    response.headers.update(error.headers)
    if error.status == HTTPStatus.SERVICE_UNAVAILABLE:
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _http_error(error: HTTPException) -> Response | HTTPException:
    if not request.path.startswith(JSON_PATHS):
        return error
    if error.code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        return _json_error(RequestTooLarge(current_app.config["MAX_CONTENT_LENGTH"]))
    body = {"error": (error.name or "error").lower().replace(" ", "_"), "message": error.description or ""}
    response = jsonify(body)
    response.status_code = error.code or 500
    # Keep what the error itself says in headers, e.g. the Allow list of a 405 (RFC 9110).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _redis_error(error: RedisError) -> Response:
    return _json_error(ServiceUnavailable(f"the job store is unavailable: {error.__class__.__name__}"))


def _unexpected_error(error: Exception) -> Response | tuple[str, int]:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    if request.path.startswith(JSON_PATHS):
        return _json_error(PlotjobsError("an unexpected error happened; it has been logged"))
    return "Internal server error", 500


def register_error_handlers(app: Flask) -> None:
    """Answer our errors, HTTP errors under /api/ and Redis outages as JSON."""
    app.register_error_handler(Exception, _unexpected_error)
    app.register_error_handler(PlotjobsError, _json_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RedisError, _redis_error)
