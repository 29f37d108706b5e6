"""The JSON API: submit a spec to a generator, read a job's state, fetch its file; list the generators."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request, url_for
from redis import Redis
from redis.exceptions import RedisError

from plotjobs import generators, states
from plotjobs.config import DEFAULT_GENERATOR, Settings
from plotjobs.errors import (
    BrokerUnavailable,
    CancelTokenRequired,
    FileNotFound,
    JobAlreadyEnded,
    NotReplicated,
    ResultNotReady,
    TooManyRequests,
)
from plotjobs.queue import accepted, dedupe, interest, jobs, limits, results, status
from plotjobs.spec.base import GeneratorSpec
from plotjobs.web import events, openapi
from plotjobs.web.extension import current_event_hub, current_publisher, current_redis, current_settings
from plotjobs.web.spec_input import submission_from_request

blueprint = Blueprint("api", __name__, url_prefix="/api")

SHA256_HEX_DIGITS = 64
RESULT_CACHE_CONTROL = "public, max-age=31536000, immutable"
# Seconds a client is told to wait when the service or its own share is full: about a few renders.
RETRY_AFTER_SECONDS = 5
CANCEL_TOKEN_HEADER = "X-Cancel-Token"


@dataclass(frozen=True)
class Admission:
    """Whose share a new render is counted against, and how many live renders that share holds."""

    client: str
    limit: int
    setting: str = "MAX_JOBS_PER_CLIENT"


def queue_render(
    spec: GeneratorSpec, priority: str | None = None, *, admission: Admission | None = None, direct: bool = False
) -> dedupe.Submission:
    """Admit, then queue a render of ``spec`` (through RabbitMQ when BROKER_URL is set); say which job has it.

    ``admission`` names the share charged (default: the client address, MAX_JOBS_PER_CLIENT);
    ``direct`` queues in Redis even with BROKER_URL set, for callers that wait on the job.
    """
    connection, settings = current_redis(), current_settings()
    via_broker = bool(settings.broker_url) and not direct
    # Refuse a priority no queue serves now, before anything is counted, queued or published.
    queue_name = jobs.queue_for_priority(settings, priority)
    job_id = jobs.new_job_id()
    try:
        client: str | None = admit(connection, settings, job_id, admission)
    except RedisError:
        if not via_broker:
            raise
        # RabbitMQ holds the job until Redis is back; admission needs Redis, so it waits too.
        client = None
    try:
        if via_broker:
            from plotjobs.broker import amqp as broker_amqp

            publisher = current_publisher()
            # The message carries the priority, as a producer's would: the bridge maps it with its own QUEUES.
            broker_amqp.submit_render(connection, publisher, spec, priority, job_id=job_id)
            return dedupe.Submission(job_id, reused=False)
        submission = dedupe.submit(connection, settings, spec, queue_name, job_id=job_id)
    except (RedisError, BrokerUnavailable, NotReplicated):
        if client is not None:
            limits.release(connection, client, job_id)
        raise
    if client is None:
        return submission
    if submission.reused:
        # Sharing a job that exists adds no work: the client's share is not spent.
        limits.release(connection, client, job_id)
    elif submission.job_id != job_id:
        limits.transfer(connection, client, job_id, submission.job_id)
    return submission


def client_address() -> str:
    """Who is asking: the peer address (the proxies' X-Forwarded-For only when PROXY_HOPS trusts them)."""
    return request.remote_addr or "unknown"


def admit(connection: Redis, settings: Settings, job_id: str, admission: Admission | None = None) -> str:
    """Refuse with 429 when the queues are full or the client has too many jobs; return the client."""
    depth = jobs.queue_depth(connection, settings)
    if depth >= settings.max_queue_depth:
        raise TooManyRequests(
            f"the service is busy: {depth} jobs are waiting (MAX_QUEUE_DEPTH is {settings.max_queue_depth})",
            code="queue_full", retry_after=RETRY_AFTER_SECONDS, limit=settings.max_queue_depth,
        )  # fmt: skip
    admission = admission or Admission(client_address(), settings.max_jobs_per_client)
    client = admission.client
    held = limits.reserve(connection, client, job_id, admission.limit, lambda ids: jobs.active_flags(connection, ids))
    if held is not None:
        raise TooManyRequests(
            f"you have {held} jobs waiting or running; {admission.setting} is {admission.limit}",
            code="too_many_jobs", retry_after=RETRY_AFTER_SECONDS, limit=admission.limit,
        )  # fmt: skip
    return client


@blueprint.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    """Validate a spec for the generator it names (JSON, or a form with a spec and a CSV); queue it on ``?priority=``.

    An identical reproducible spec is answered with the job that has it already. The answer's
    ``cancel_token`` is this submission's own: DELETE needs it.
    """
    spec = submission_from_request(request, current_settings().generators)
    submission = queue_render(spec, request.args.get("priority"))
    status_url = url_for("api.job_status", job_id=submission.job_id)
    body: dict[str, Any] = {
        "id": submission.job_id,
        "status_url": status_url,
        "result_url": url_for("api.job_result", job_id=submission.job_id),
        "events_url": url_for("api.job_events", job_id=submission.job_id),
        "reused": submission.reused,
    }
    try:
        body["cancel_token"] = interest.record(current_redis(), current_settings(), submission.job_id)
    except RedisError:
        if not current_settings().broker_url:
            raise
        # RabbitMQ took the job while Redis is down: it is accepted, only not cancelable by this client.
    if submission.result is not None:
        body["file_url"] = file_url(submission.result)
    # 200: the result exists already; 202: a render is queued or running.
    code = 200 if submission.finished else 202
    return Response(json.dumps(body), mimetype="application/json"), code, {"Location": status_url}


@blueprint.get("/jobs/<job_id>")
def job_status(job_id: str) -> dict[str, Any]:
    """A job's state, progress, stage, queue position and times."""
    # Most reads never get here: plotjobs.web.status_reads answers them from fewer reads.
    found = accepted.fetch_or_pending(current_redis(), job_id)
    return found if isinstance(found, dict) else status.describe(found)


@blueprint.get("/jobs/<job_id>/spec")
def job_spec(job_id: str) -> dict[str, Any]:
    """The spec a job was submitted with, so a client can show or resubmit it (with ``generator`` unless a chart)."""
    return jobs.submitted_spec(jobs.fetch(current_redis(), job_id))


@blueprint.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
    """Withdraw the interest of the submission whose cancel token this is; cancel the job once none remains.

    The render is canceled (waiting) or stopped (running) only when no other submitter still
    wants it: 200 once it has ended, 202 while it is still stopping; else 200 with ``withdrawn``.
    """
    connection = current_redis()
    job = jobs.fetch(connection, job_id)
    token = request.headers.get(CANCEL_TOKEN_HEADER) or request.args.get("token")
    if not token:
        raise CancelTokenRequired(job.id)
    state = job.get_status(refresh=False)
    if state in states.TERMINAL:
        raise JobAlreadyEnded(job.id, state.value)
    if interest.withdraw(connection, job.id, token) > 0:
        return {**status.describe(job), "withdrawn": True}, 200
    job = jobs.cancel(connection, job)
    return {**status.describe(job), "withdrawn": False}, 200 if states.is_terminal(
        job.get_status(refresh=False)
    ) else 202


def file_url(description: results.ResultDescription) -> str:
    """The content-addressed URL of a stored file."""
    return url_for("api.stored_file", name=f"{description['sha256']}.{description['format']}")


@blueprint.get("/results/<name>")
def stored_file(name: str) -> Response:
    """A rendered file by its SHA-256 and format: the same bytes for every job that made them."""
    digest, _, file_format = name.partition(".")
    content_types = served_content_types()
    if file_format not in content_types or len(digest) != SHA256_HEX_DIGITS or digest.strip("0123456789abcdef"):
        raise FileNotFound(name)
    data = results.load_digest(current_redis(), digest)
    if data is None:
        raise FileNotFound(name)
    description = {"content_type": content_types[file_format], "format": file_format, "sha256": digest}
    return file_response(data, description, f"chart-{digest[:12]}")


@blueprint.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    """Server-Sent Events: the job's status now, then at each change, until it ends."""
    stream = events.open_stream(current_redis(), current_event_hub(), job_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream, mimetype="text/event-stream", headers=headers)


def file_response(data: bytes, description: dict[str, Any], filename: str, *, download: bool = False) -> Response:
    """The rendered file, cacheable forever: its ETag is the hash of its bytes."""
    response = Response(data, mimetype=description["content_type"])
    response.set_etag(description["sha256"])
    response.headers["Cache-Control"] = RESULT_CACHE_CONTROL
    disposition = "attachment" if download else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}.{description["format"]}"'
    response.make_conditional(request)
    return response


@blueprint.get("/jobs/<job_id>/result")
def job_result(job_id: str) -> Response:
    """The rendered file of a finished job; ``?download=1`` asks the browser to save it."""
    connection = current_redis()
    job = accepted.fetch_or_pending(connection, job_id)
    if isinstance(job, dict):
        raise ResultNotReady(job_id, "queued")
    data, description = jobs.result_file(connection, job)
    download = request.args.get("download", "") in {"1", "true", "yes"}
    return file_response(data, dict(description), f"{jobs.job_generator(job)}-{job_id}", download=download)


def served_content_types() -> dict[str, str]:
    """Every format a served generator renders, with its media type."""
    served = generators.served(current_settings().generators).values()
    return {file_format: media for generator in served for file_format, media in generator.content_types.items()}


@blueprint.get("/generators")
def generator_list() -> dict[str, Any]:
    """The generators served here: name, title, formats and the JSON Schema of each one's spec."""
    served = generators.served(current_settings().generators)
    return {
        "default": DEFAULT_GENERATOR if DEFAULT_GENERATOR in served else None,
        "generators": [generator.describe() for generator in served.values()],
    }


@blueprint.get("/workers")
def workers() -> dict[str, int]:
    """How many render workers are alive, so a page can say why a job waits."""
    return {"alive": jobs.workers_alive(current_redis())}


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 description of this API, built from the models that validate."""
    served = generators.served(current_settings().generators)
    return Response(json.dumps(openapi.document(list(served.values())), indent=1), mimetype="application/json")
