"""The JSON API: submit a chart, read a job's state, fetch its file."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request, url_for
from pydantic import ValidationError

from plotjobs import dedupe, events, jobs, results
from plotjobs.charts import CONTENT_TYPES, ChartSpec
from plotjobs.connections import current_event_hub, current_redis, current_settings
from plotjobs.errors import APIError, FileNotFound, InvalidJSON, InvalidSpec

blueprint = Blueprint("api", __name__, url_prefix="/api")

RESULT_CACHE_CONTROL = "public, max-age=31536000, immutable"


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


@blueprint.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    """Validate a chart spec and queue its render, or answer with the job that has it already."""
    spec = parse_spec(request.get_data(cache=False), request.content_type)
    submission = dedupe.submit(current_redis(), current_settings(), spec)
    status_url = url_for("api.job_status", job_id=submission.job_id)
    body: dict[str, Any] = {
        "id": submission.job_id,
        "status_url": status_url,
        "result_url": url_for("api.job_result", job_id=submission.job_id),
        "events_url": url_for("api.job_events", job_id=submission.job_id),
        "reused": submission.reused,
    }
    if submission.result is not None:
        body["file_url"] = file_url(submission.result)
    # 200: the result exists already; 202: a render is queued or running.
    status = 200 if submission.finished else 202
    return Response(json.dumps(body), mimetype="application/json"), status, {"Location": status_url}


@blueprint.get("/jobs/<job_id>")
def job_status(job_id: str) -> dict[str, Any]:
    """A job's state, progress, stage, queue position and times."""
    return jobs.describe(jobs.fetch(current_redis(), job_id))


def file_url(description: results.ResultDescription) -> str:
    """The content-addressed URL of a stored file."""
    return url_for("api.stored_file", name=f"{description['sha256']}.{description['format']}")


@blueprint.get("/results/<name>")
def stored_file(name: str) -> Response:
    """A rendered file by its SHA-256 and format: the same bytes for every job that made them."""
    digest, _, file_format = name.partition(".")
    if file_format not in CONTENT_TYPES or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise FileNotFound(name)
    data = results.load_digest(current_redis(), digest)
    if data is None:
        raise FileNotFound(name)
    description = {"content_type": CONTENT_TYPES[file_format], "format": file_format, "sha256": digest}
    return file_response(data, description, f"chart-{digest[:12]}")


@blueprint.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    """Server-Sent Events: the job's status now, then at each change, until it ends."""
    stream = events.open_stream(current_redis(), current_event_hub(), job_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream, mimetype="text/event-stream", headers=headers)


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
