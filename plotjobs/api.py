"""The JSON API: submit a chart, read a job's state, fetch its file."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request, url_for

from plotjobs import accepted, jobs, openapi
from plotjobs.charts import ChartSpec
from plotjobs.connections import current_redis, current_settings
from plotjobs.errors import JobNotFound, ResultNotReady

# The spec parsing lives in specs_http; these names stay importable from here.
from plotjobs.specs_http import UnsupportedMediaType, parse_spec, spec_from_request, spec_from_validation_error

blueprint = Blueprint("api", __name__, url_prefix="/api")

RESULT_CACHE_CONTROL = "public, max-age=31536000, immutable"

__all__ = ["UnsupportedMediaType", "blueprint", "parse_spec", "spec_from_validation_error"]


def queue_render(spec: ChartSpec, priority: str | None = None) -> str:
    """Queue a render of ``spec`` and return its job id: through RabbitMQ when BROKER_URL is set."""
    settings = current_settings()
    if settings.broker_url:
        from plotjobs import broker_amqp

        # Refuse a priority no queue serves now, before RabbitMQ accepts the message.
        queue_name = jobs.queue_for_priority(settings, priority)
        return broker_amqp.submit_render(current_redis(), broker_amqp.current_publisher(), spec, queue_name)
    return jobs.enqueue_render(current_redis(), settings, spec, priority).id


@blueprint.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    """Validate a chart spec (JSON, or a form with a spec and a CSV) and queue it on ``?priority=``."""
    spec = spec_from_request(request)
    job_id = queue_render(spec, request.args.get("priority"))
    status_url = url_for("api.job_status", job_id=job_id)
    body = {
        "id": job_id,
        "status_url": status_url,
        "result_url": url_for("api.job_result", job_id=job_id),
    }
    return Response(json.dumps(body), mimetype="application/json"), 202, {"Location": status_url}


@blueprint.get("/jobs/<job_id>")
def job_status(job_id: str) -> dict[str, Any]:
    """A job's state, progress, stage, queue position and times."""
    connection = current_redis()
    try:
        return jobs.describe(jobs.fetch(connection, job_id))
    except JobNotFound:
        # Accepted through RabbitMQ, not yet moved into RQ by the bridge.
        pending = accepted.status(connection, job_id)
        if pending is not None:
            return pending
    # The bridge drops the marker only once RQ has the job, so this second look cannot miss it.
    return jobs.describe(jobs.fetch(connection, job_id))


@blueprint.get("/jobs/<job_id>/spec")
def job_spec(job_id: str) -> dict[str, Any]:
    """The chart spec a job was submitted with, so a client can show or resubmit it."""
    return jobs.submitted_spec(jobs.fetch(current_redis(), job_id))


def file_response(
    data: bytes, description: dict[str, Any], filename: str, *, download: bool = False
) -> Response:
    """The rendered file, cacheable forever: its ETag is the hash of its bytes."""
    response = Response(data, mimetype=description["content_type"])
    response.set_etag(description["sha256"])
    response.headers["Cache-Control"] = RESULT_CACHE_CONTROL
    disposition = "attachment" if download else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}.{description["format"]}"'
    return response.make_conditional(request)


@blueprint.get("/jobs/<job_id>/result")
def job_result(job_id: str) -> Response:
    """The rendered file of a finished job; ``?download=1`` asks the browser to save it."""
    connection = current_redis()
    try:
        job = jobs.fetch(connection, job_id)
    except JobNotFound:
        if accepted.status(connection, job_id) is not None:
            raise ResultNotReady(job_id, "queued") from None
        job = jobs.fetch(connection, job_id)
    data, description = jobs.result_file(connection, job)
    download = request.args.get("download", "") in {"1", "true", "yes"}
    return file_response(data, dict(description), f"chart-{job_id}", download=download)


@blueprint.get("/workers")
def workers() -> dict[str, int]:
    """How many render workers are alive, so a page can say why a job waits."""
    return {"alive": jobs.workers_alive(current_redis())}


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 description of this API, built from the models that validate."""
    return Response(json.dumps(openapi.document(), indent=1), mimetype="application/json")
