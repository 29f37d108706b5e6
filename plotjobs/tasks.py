"""The functions RQ workers run: thin wrappers around the pure render that report progress."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

from pydantic import ValidationError
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job

from plotjobs import charts, logging_setup, metrics, results
from plotjobs.config import log_level_from_env

EVENTS_CHANNEL_PREFIX = "plotjobs:events:"
CANCEL_KEY_PREFIX = "plotjobs:cancel:"
# A cancel request outlives any render it could still stop (JOB_TIMEOUT is far below this).
CANCEL_KEY_TTL = 24 * 3600


class JobCanceled(Exception):
    """The job was canceled on request while it ran; the worker records it as stopped."""


def cancel_key(job_id: str) -> str:
    """The key whose presence asks the worker running ``job_id`` to stop at its next stage."""
    return CANCEL_KEY_PREFIX + job_id


def events_channel(job_id: str) -> str:
    """The pub/sub channel on which a job's progress updates are published."""
    return EVENTS_CHANNEL_PREFIX + job_id


def progress_meta(progress: float, stage: str) -> dict[str, object]:
    """The whole of ``job.meta``: this is its only shape."""
    return {
        "progress": round(progress, 3),
        "stage": stage,
        "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }


def _event(job: Job) -> str:
    state = job.get_status(refresh=False)
    return json.dumps({"id": job.id, **(job.meta or {}), "state": state.value if state else None})


def announce(job: Job) -> None:
    """Publish the job's state and ``meta`` on its events channel, so listeners re-read its status.

    RQ publishes nothing when a job ends, is canceled or is recovered; we do.
    """
    job.connection.publish(events_channel(job.id), _event(job))


def report_progress(job: Job, progress: float, stage: str) -> None:
    """Record progress in ``job.meta`` and publish it; raise JobCanceled if a cancel was requested."""
    if job.connection.exists(cancel_key(job.id)):
        raise JobCanceled("canceled on request")
    job.meta = progress_meta(progress, stage)
    # What job.save_meta() writes, sent with the publish in one round trip.
    with job.connection.pipeline(transaction=False) as pipeline:
        pipeline.hset(job.key, "meta", job.serializer.dumps(job.meta))
        pipeline.publish(events_channel(job.id), _event(job))
        pipeline.execute()


class InvalidSpecError(ValueError):
    """The worker's own validation refused a spec (it bypassed or outlived the API's check)."""


def validated_spec(spec: dict[str, object]) -> charts.ChartSpec:
    """The spec as a model, or InvalidSpecError naming each bad field."""
    try:
        return charts.ChartSpec.model_validate(spec)
    except ValidationError as error:
        problems = "; ".join(f"{field}: {message}" for field, message in charts.violations(error))
        raise InvalidSpecError(f"invalid chart spec: {problems}") from None


# A spec that fails validation has no trustworthy kind; user text never becomes a label.
INVALID_KIND = "invalid"


def record_outcome(job: Job, kind: str, outcome: str, seconds: float, error: BaseException | None = None) -> None:
    """Count the job's outcome and render time in Redis and log one line for it."""
    if not logging_setup.is_configured():
        # A stock `rq worker` runs our task without our start-up code.
        logging_setup.configure(log_level_from_env())
    fields: dict[str, object] = {
        "job_id": job.id, "kind": kind, "queue": job.origin, "outcome": outcome,
        "duration_ms": round(seconds * 1000, 2),
    }  # fmt: skip
    if error is not None:
        fields["error"] = error.__class__.__name__
    try:
        metrics.count_job(job.connection, outcome, kind)
        if outcome == "finished":
            metrics.observe_render(job.connection, kind, seconds)
    except RedisError as redis_error:
        fields["metrics"] = f"not recorded: {redis_error.__class__.__name__}"
    logging_setup.log_event(
        logging_setup.JOB_LOGGER, "job", logging.INFO if error is None else logging.WARNING, **fields
    )


def render_chart(spec: dict[str, object]) -> results.ResultDescription:
    """Validate the spec again, render it, store the file and describe it."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("render_chart runs inside an RQ worker; call charts.render directly instead")
    started = time.perf_counter()
    kind = INVALID_KIND
    try:
        report_progress(job, 0.05, "started")
        chart = validated_spec(spec)
        kind = chart.kind
        data = charts.render(chart, lambda fraction, stage: report_progress(job, fraction, stage))
        report_progress(job, 0.9, "storing")
        ttl = job.result_ttl if job.result_ttl and job.result_ttl > 0 else 3600
        description = results.store(
            job.connection, data, content_type=chart.content_type, file_format=chart.format, ttl=ttl
        )
        report_progress(job, 1.0, "done")
    except BaseException as error:
        # Counted and logged, then re-raised untouched: RQ records the failure on the job.
        record_outcome(job, kind, "failed", time.perf_counter() - started, error)
        raise
    record_outcome(job, kind, "finished", time.perf_counter() - started)
    return description


REGISTERED_TASKS = frozenset({f"{render_chart.__module__}.{render_chart.__name__}"})
