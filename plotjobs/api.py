"""The JSON API: submit a chart, read a job's state, fetch its file."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request, url_for
from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError

from plotjobs import jobs, limits
from plotjobs.charts import ChartSpec
from plotjobs.config import Settings
from plotjobs.connections import current_redis, current_settings
from plotjobs.errors import APIError, InvalidJSON, InvalidSpec, TooManyRequests

blueprint = Blueprint("api", __name__, url_prefix="/api")

RESULT_CACHE_CONTROL = "public, max-age=31536000, immutable"
# Seconds a client is told to wait when the service or its own share is full: about a few renders.
RETRY_AFTER_SECONDS = 5


class UnsupportedMediaType(APIError):
    """A non-empty body that is not declared as JSON."""

    status = 415
    code = "unsupported_media_type"


def _field_name(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def spec_from_validation_error(error: ValidationError) -> InvalidSpec:
    """One 422 naming every bad field, the first one as ``field``."""
    details = [{"field": _field_name(item["loc"]), "message": item["msg"]} for item in error.errors()]
    first = details[0]
    return InvalidSpec(f"{first['field']}: {first['message']}", field=first["field"], details=details)


def parse_spec(body: bytes, content_type: str | None) -> ChartSpec:
    """The chart spec in a request body; an empty body is the default chart."""
    if not body.strip():
        return ChartSpec()
    if content_type is None or content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the chart spec as application/json", field="Content-Type")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidJSON(f"the body is not valid JSON: {error}", field="body") from None
    if not isinstance(document, dict):
        raise InvalidSpec("the chart spec must be a JSON object", field="body")
    try:
        return ChartSpec.model_validate(document)
    except ValidationError as error:
        raise spec_from_validation_error(error) from None


def client_address() -> str:
    """Who is asking: the peer address (the proxies' X-Forwarded-For only when PROXY_HOPS trusts them)."""
    return request.remote_addr or "unknown"


def admit(connection: Redis, settings: Settings, job_id: str) -> str:
    """Refuse with 429 when the queues are full or the client has too many jobs; return the client."""
    depth = jobs.queue_depth(connection, settings)
    if depth >= settings.max_queue_depth:
        raise TooManyRequests(
            f"the service is busy: {depth} jobs are waiting (MAX_QUEUE_DEPTH is {settings.max_queue_depth})",
            code="queue_full", retry_after=RETRY_AFTER_SECONDS, limit=settings.max_queue_depth,
        )  # fmt: skip
    client = client_address()
    held = limits.reserve(
        connection, client, job_id, settings.max_jobs_per_client, lambda ids: jobs.active_flags(connection, ids)
    )
    if held is not None:
        raise TooManyRequests(
            f"you have {held} jobs waiting or running; MAX_JOBS_PER_CLIENT is {settings.max_jobs_per_client}",
            code="too_many_jobs", retry_after=RETRY_AFTER_SECONDS, limit=settings.max_jobs_per_client,
        )  # fmt: skip
    return client


@blueprint.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    """Validate a chart spec and queue its render."""
    spec = parse_spec(request.get_data(cache=False), request.content_type)
    connection, settings = current_redis(), current_settings()
    job_id = jobs.new_job_id()
    client = admit(connection, settings, job_id)
    try:
        job = jobs.enqueue_render(connection, settings, spec, job_id=job_id)
    except RedisError:
        limits.release(connection, client, job_id)
        raise
    status_url = url_for("api.job_status", job_id=job.id)
    body = {
        "id": job.id,
        "status_url": status_url,
        "result_url": url_for("api.job_result", job_id=job.id),
    }
    return Response(json.dumps(body), mimetype="application/json"), 202, {"Location": status_url}


@blueprint.get("/jobs/<job_id>")
def job_status(job_id: str) -> dict[str, Any]:
    """A job's state, progress, stage, queue position and times."""
    return jobs.describe(jobs.fetch(current_redis(), job_id))


@blueprint.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
    """Cancel a waiting job or stop a running one: 200 once it has ended, 202 while it is still stopping."""
    connection = current_redis()
    job = jobs.cancel(connection, jobs.fetch(connection, job_id))
    return jobs.describe(job), 200 if jobs.is_terminal(job) else 202


def file_response(data: bytes, description: dict[str, Any], filename: str) -> Response:
    """The rendered file, cacheable forever: its ETag is the hash of its bytes."""
    response = Response(data, mimetype=description["content_type"])
    response.set_etag(description["sha256"])
    response.headers["Cache-Control"] = RESULT_CACHE_CONTROL
    response.headers["Content-Disposition"] = f'inline; filename="{filename}.{description["format"]}"'
    return response.make_conditional(request)


@blueprint.get("/jobs/<job_id>/result")
def job_result(job_id: str) -> Response:
    """The rendered file of a finished job."""
    connection = current_redis()
    data, description = jobs.result_file(connection, jobs.fetch(connection, job_id))
    return file_response(data, dict(description), f"chart-{job_id}")
