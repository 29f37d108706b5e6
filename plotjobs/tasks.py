"""The functions RQ workers run: thin wrappers around the pure render that report progress."""

from __future__ import annotations

import datetime as dt
import json

from pydantic import ValidationError
from rq import get_current_job
from rq.job import Job

from plotjobs import charts, results

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


def announce(job: Job) -> None:
    """Publish the job's current ``meta`` on its events channel, so listeners re-read its status."""
    job.connection.publish(events_channel(job.id), json.dumps({"id": job.id, **job.meta}))


def report_progress(job: Job, progress: float, stage: str) -> None:
    """Record progress in ``job.meta`` and publish it; raise JobCanceled if a cancel was requested."""
    if job.connection.exists(cancel_key(job.id)):
        raise JobCanceled("canceled on request")
    job.meta = progress_meta(progress, stage)
    job.save_meta()
    announce(job)


class InvalidSpecError(ValueError):
    """The worker's own validation refused a spec (it bypassed or outlived the API's check)."""


def validated_spec(spec: dict[str, object]) -> charts.ChartSpec:
    """The spec as a model, or InvalidSpecError naming each bad field."""
    try:
        return charts.ChartSpec.model_validate(spec)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'spec'}: {item['msg']}" for item in error.errors()
        )
        raise InvalidSpecError(f"invalid chart spec: {problems}") from None


def render_chart(spec: dict[str, object]) -> results.ResultDescription:
    """Validate the spec again, render it, store the file and describe it."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("render_chart runs inside an RQ worker; call charts.render directly instead")
    report_progress(job, 0.05, "started")
    chart = validated_spec(spec)
    data = charts.render(chart, lambda fraction, stage: report_progress(job, fraction, stage))
    report_progress(job, 0.9, "storing")
    ttl = job.result_ttl if job.result_ttl and job.result_ttl > 0 else 3600
    description = results.store(
        job.connection, data, content_type=chart.content_type, file_format=chart.format, ttl=ttl
    )
    report_progress(job, 1.0, "done")
    return description


REGISTERED_TASKS = frozenset({f"{render_chart.__module__}.{render_chart.__name__}"})
