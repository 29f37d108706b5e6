"""Error classes that carry their HTTP status, and the handlers that turn them into JSON."""

from __future__ import annotations

from typing import Any, ClassVar

from flask import Flask, Response, current_app, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException


class APIError(Exception):
    """Base of every error we answer on purpose; subclasses set ``status`` and ``code``."""

    status = 500
    code = "internal_error"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """The JSON body: always ``error`` and ``message``, ``field`` when one input is at fault."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


class JobNotFound(APIError):
    """No job has this id: it never existed, is malformed, or has expired."""

    status = 404
    code = "not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r} (unknown or expired)")


class ResultNotReady(APIError):
    """The job exists but has no result to serve yet (or will never have one)."""

    status = 409
    code = "not_ready"

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"job {job_id} has no result: it is {state}", state=state)


class JobAlreadyEnded(APIError):
    """A cancel for a job that has already reached its end state."""

    status = 409
    code = "already_ended"

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"job {job_id} has already ended: it is {state}", state=state)


class TooManyRequests(APIError):
    """Backpressure: the queue is full or the client has too many jobs; retry after ``retry_after`` seconds."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, code: str, retry_after: int, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.code = code
        self.retry_after = retry_after


class ResultExpired(APIError):
    """The job finished but its file is gone (its result TTL passed)."""

    status = 404
    code = "result_expired"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"the result of job {job_id} has expired")


class FileNotFound(APIError):
    """No stored file has this content address (it never existed or has expired)."""

    status = 404
    code = "not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no stored file {name!r} (unknown or expired)")


class InvalidJSON(APIError):
    """The request body is not JSON we can parse."""

    status = 400
    code = "invalid_json"


class InvalidSpec(APIError):
    """The chart spec parsed but breaks the spec's rules; ``details`` lists each violation."""

    status = 422
    code = "invalid_spec"


class InvalidPriority(APIError):
    """The requested priority is not one this service has a queue for."""

    status = 422
    code = "invalid_priority"


class AuthenticationRequired(APIError):
    """The request carries no valid credentials for a protected page."""

    status = 401
    code = "unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Basic realm="plotjobs operations", charset="UTF-8"'}


class ActionForbidden(APIError):
    """The credentials are fine but this action is turned off or was not asked for the safe way."""

    status = 403
    code = "forbidden"


class UnknownPage(APIError):
    """A page that does not exist on this service."""

    status = 404
    code = "not_found"


class MethodNotAllowed(APIError):
    """The action changes state, so it is taken only by POST."""

    status = 405
    code = "method_not_allowed"
    headers: ClassVar[dict[str, str]] = {"Allow": "POST"}


class CSRFFailed(APIError):
    """A browser's state-changing request without the CSRF token of its own page."""

    status = 403
    code = "csrf_failed"


class ServiceUnavailable(APIError):
    """A backing service (Redis) does not answer; the client may retry later."""

    status = 503
    code = "service_unavailable"


class BrokerUnavailable(ServiceUnavailable):
    """RabbitMQ (BROKER_URL) did not take a submission: unreachable, or it refused the message."""

    code = "broker_unavailable"


def _json_error(error: APIError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    response.headers.update(error.headers)
    if error.status == 503:
        response.headers["Retry-After"] = "5"
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _http_error(error: HTTPException) -> Response | HTTPException:
    if not request.path.startswith("/api/"):
        return error
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
    if request.path.startswith("/api/"):
        return _json_error(APIError("an unexpected error happened; it has been logged"))
    return "Internal server error", 500


def register_error_handlers(app: Flask) -> None:
    """Answer our errors, HTTP errors under /api/ and Redis outages as JSON."""
    app.register_error_handler(Exception, _unexpected_error)
    app.register_error_handler(APIError, _json_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RedisError, _redis_error)
