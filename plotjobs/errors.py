"""Every error plotjobs raises on purpose, in one hierarchy free of any framework.

Each class carries the HTTP status and the short code a web answer uses; the web layer
(``plotjobs.web.http_errors``) turns them into JSON. Worker-side errors end up, by name, in a
failed job's ``error``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PlotjobsError(Exception):
    """Base of every error we raise on purpose; subclasses set ``status`` and ``code``."""

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


class JobNotFound(PlotjobsError):
    """No job has this id: it never existed, is malformed, or has expired."""

    status = 404
    code = "not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r} (unknown or expired)")


class ResultNotReady(PlotjobsError):
    """The job exists but has no result to serve yet (or will never have one)."""

    status = 409
    code = "not_ready"

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"job {job_id} has no result: it is {state}", state=state)


class JobAlreadyEnded(PlotjobsError):
    """A cancel for a job that has already reached its end state."""

    status = 409
    code = "already_ended"

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"job {job_id} has already ended: it is {state}", state=state)


class TooManyRequests(PlotjobsError):
    """Backpressure: the queue is full or the client has too many jobs; retry after ``retry_after`` seconds."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, code: str, retry_after: int, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.code = code
        self.retry_after = retry_after


class UnreadableJob(PlotjobsError):
    """A job whose record in Redis cannot be read as plotjobs writes it (it was written by hand)."""

    status = 409
    code = "unreadable_job"

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} cannot be read: {reason}")


class JobActionRefused(PlotjobsError):
    """RQ refused an action on a job (requeueing one that has not failed, say)."""

    status = 409
    code = "job_action_refused"

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"RQ refused this action on job {job_id}: {reason or 'not possible in its state'}")


class ResultExpired(PlotjobsError):
    """The job finished but its file is gone (its result TTL passed)."""

    status = 404
    code = "result_expired"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"the result of job {job_id} has expired")


class DataExpired(PlotjobsError):
    """A job's or stored chart's data, kept apart from it, has expired (or was never stored)."""

    status = 410
    code = "data_expired"


class RequestTooLarge(PlotjobsError):
    """A request body larger than MAX_REQUEST_BYTES."""

    status = 413
    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request is larger than MAX_REQUEST_BYTES ({limit} bytes)", limit=limit)


class FileNotFound(PlotjobsError):
    """No stored file has this content address (it never existed or has expired)."""

    status = 404
    code = "not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no stored file {name!r} (unknown or expired)")


class InvalidJSON(PlotjobsError):
    """The request body is not JSON we can parse."""

    status = 400
    code = "invalid_json"


class InvalidSpec(PlotjobsError):
    """The chart spec parsed but breaks the spec's rules; ``details`` lists each violation."""

    status = 422
    code = "invalid_spec"


class InvalidPriority(PlotjobsError):
    """The requested priority is not one this service has a queue for."""

    status = 422
    code = "invalid_priority"


class AuthenticationRequired(PlotjobsError):
    """The request carries no valid credentials for a protected page."""

    status = 401
    code = "unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Basic realm="plotjobs operations", charset="UTF-8"'}


class ActionForbidden(PlotjobsError):
    """The credentials are fine but this action is turned off or was not asked for the safe way."""

    status = 403
    code = "forbidden"


class CancelTokenRequired(PlotjobsError):
    """A cancel without the cancel token its submission was given."""

    status = 403
    code = "cancel_token_required"

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"canceling job {job_id} needs the cancel_token its submission answered, in X-Cancel-Token or ?token=",
            field="X-Cancel-Token",
        )


class CancelTokenInvalid(PlotjobsError):
    """A cancel token that is not (or no longer) one of the job's submitters'."""

    status = 403
    code = "cancel_token_invalid"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"this cancel token is not one of job {job_id}'s submitters'", field="X-Cancel-Token")


class UnknownPage(PlotjobsError):
    """A page that does not exist on this service."""

    status = 404
    code = "not_found"


class MethodNotAllowed(PlotjobsError):
    """The action changes state, so it is taken only by POST."""

    status = 405
    code = "method_not_allowed"
    headers: ClassVar[dict[str, str]] = {"Allow": "POST"}


class CSRFFailed(PlotjobsError):
    """A browser's state-changing request without the CSRF token of its own page."""

    status = 403
    code = "csrf_failed"


class ServiceUnavailable(PlotjobsError):
    """A backing service (Redis) does not answer; the client may retry later."""

    status = 503
    code = "service_unavailable"


class NotReplicated(ServiceUnavailable):
    """The job was written to the Redis master but fewer than REDIS_MIN_REPLICAS replicas confirmed it in time.

    It is not acknowledged: a failover could lose it. It may still run; a client that submits
    again may get a second render of it (a seeded spec finds the same job).
    """

    code = "not_replicated"


class BrokerUnavailable(ServiceUnavailable):
    """RabbitMQ (BROKER_URL) did not take a submission: unreachable, or it refused the message."""

    code = "broker_unavailable"


class UnsupportedMediaType(PlotjobsError):
    """A non-empty body that is neither JSON nor a multipart form."""

    status = 415
    code = "unsupported_media_type"


class InvalidForm(PlotjobsError):
    """A multipart body that cannot be parsed into parts, or holds neither a spec nor a CSV part."""

    status = 400
    code = "invalid_form"


class InvalidSpecError(PlotjobsError):
    """The worker's own validation refused a spec (it bypassed or outlived the API's check)."""

    status = 422
    code = "invalid_spec"


class UnknownGeneratorError(PlotjobsError):
    """A job or request names a generator this service does not serve."""

    status = 422
    code = "unknown_generator"


class GeneratorDeclarationError(PlotjobsError):
    """An installed generator's entry point cannot be loaded, or does not declare a sound generator."""

    code = "bad_generator"


class GeneratorNotServed(PlotjobsError):
    """A worker took a job of a generator it does not serve (GENERATORS, WORKER_GENERATORS); nothing ran."""

    code = "generator_not_served"


class RenderTimedOut(PlotjobsError):
    """An isolated render ran past its generator's time limit; its process was killed."""

    code = "render_timed_out"


class RenderCrashed(PlotjobsError):
    """An isolated render's process died without an answer (a signal, or an exit of its own)."""

    code = "render_crashed"


class RenderRaised(PlotjobsError):
    """An isolated render raised; the message names the exception it raised in its process."""

    code = "render_raised"


class ForbiddenTaskError(PlotjobsError):
    """A job in our queue names a function that is not one of our registered tasks."""

    code = "forbidden_task"


class JobCanceled(PlotjobsError):
    """The job was canceled on request while it ran; the worker records it as stopped."""

    code = "canceled"


class URLTooLong(PlotjobsError):
    """A chart URL longer than CHART_URL_MAX_BYTES."""

    status = 414
    code = "uri_too_long"


class SignatureRequired(PlotjobsError):
    """CHART_URL_SECRET is set and the chart URL (or chart upload) carries no ``sig``."""

    status = 403
    code = "signature_required"


class InvalidSignature(PlotjobsError):
    """The ``sig`` of a chart URL (or chart upload) is not the HMAC of what it signs."""

    status = 403
    code = "invalid_signature"


class SizeNotApplicable(PlotjobsError):
    """A URL's ``w`` or ``h`` for a generator whose spec has no width or height to override."""

    status = 400
    code = "size_not_applicable"


class NotReproducible(PlotjobsError):
    """A chart URL or stored chart whose spec would draw something else each time (random data, a clock)."""

    status = 422
    code = "not_reproducible"


class RenderFailed(PlotjobsError):
    """The render of a chart URL's spec failed a moment ago; it is not tried again at once."""

    status = 422
    code = "render_failed"


class ChartNotFound(PlotjobsError):
    """No stored chart has this id: it never existed, or expired (CHART_URL_TTL) without being viewed."""

    status = 404
    code = "chart_not_found"

    def __init__(self, chart_id: str) -> None:
        super().__init__(f"no stored chart {chart_id!r} (unknown, or expired unviewed after CHART_URL_TTL)")


class RenderRefused(PlotjobsError):
    """A render stopped on what no check of its spec could foresee: a converter's refusal, too large an output."""

    status = 422
    code = "render_refused"
