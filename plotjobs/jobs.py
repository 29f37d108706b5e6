"""Enqueue renders, fetch jobs and describe them: the only module the web app uses to speak RQ."""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from plotjobs import results, tasks
from plotjobs.charts import ChartSpec
from plotjobs.config import Settings
from plotjobs.errors import JobNotFound, ResultExpired, ResultNotReady
from plotjobs.serialization import PlainDataSerializer

# RQ's own ids are UUID4 strings; anything else is not a job of ours and never reaches Redis.
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

JOB_DESCRIPTION = "plotjobs.render_chart"


class ForbiddenTaskError(RuntimeError):
    """A job in our queue names a function that is not one of our registered tasks."""


class PlotJob(Job):
    """An RQ job that will only run plotjobs' registered task functions."""

    @property
    def func(self) -> Any:
        if self.func_name not in tasks.REGISTERED_TASKS:
            raise ForbiddenTaskError(f"{self.func_name!r} is not a plotjobs task; refusing to run it")
        return super().func


class TutorialState(str, Enum):
    """The states the original Flask + Celery tutorial's page understands."""

    PENDING = "PENDING"
    PROGRESS = "PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


_TUTORIAL_STATES = {
    JobStatus.STARTED: TutorialState.PROGRESS,
    JobStatus.FINISHED: TutorialState.SUCCESS,
    JobStatus.FAILED: TutorialState.FAILURE,
    JobStatus.STOPPED: TutorialState.FAILURE,
    JobStatus.CANCELED: TutorialState.FAILURE,
}


TERMINAL_STATES = frozenset(
    {JobStatus.FINISHED.value, JobStatus.FAILED.value, JobStatus.CANCELED.value, JobStatus.STOPPED.value}
)


def queue(connection: Redis, name: str) -> Queue:
    """The RQ queue ``name`` with our job class and serializer."""
    return Queue(name, connection=connection, job_class=PlotJob, serializer=PlainDataSerializer)


def enqueue_render(connection: Redis, settings: Settings, spec: ChartSpec, job_id: str | None = None) -> Job:
    """Put a render of ``spec`` on the default queue and return its job."""
    return queue(connection, settings.default_queue).enqueue(
        tasks.render_chart,
        spec.model_dump(mode="json"),
        job_timeout=settings.job_timeout,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.failure_ttl,
        # A constant description: user text must never reach RQ's description field.
        description=JOB_DESCRIPTION,
        meta=tasks.progress_meta(0.0, "queued"),
        job_id=job_id,
        unique=job_id is not None,
    )


def enqueue_unique_render(connection: Redis, settings: Settings, spec: ChartSpec, job_id: str) -> bool:
    """Atomically queue a render of ``spec`` as job ``job_id``; False if that job already exists."""
    try:
        enqueue_render(connection, settings, spec, job_id=job_id)
    except DuplicateJobError:
        return False
    return True


def is_job_id(job_id: str) -> bool:
    """Whether ``job_id`` has the shape of one of our job ids."""
    return bool(_JOB_ID.match(job_id))


def states(connection: Redis, job_ids: list[str]) -> dict[str, str | None]:
    """The RQ status of each job in one round trip; None for a job that no longer exists."""
    with connection.pipeline(transaction=False) as pipeline:
        for job_id in job_ids:
            pipeline.hget(Job.key_for(job_id), "status")
        replies = pipeline.execute()
    return {job_id: reply.decode() if reply else None for job_id, reply in zip(job_ids, replies)}


def is_terminal(state: str | None) -> bool:
    """Whether a job in ``state`` will never change again (or is gone)."""
    return state is None or state in TERMINAL_STATES


def stored_result(connection: Redis, job: Job) -> results.ResultDescription | None:
    """The description of a finished job's file, or None once the file is gone."""
    result = job.latest_result()
    description = result.return_value if result else None
    if not isinstance(description, dict) or not connection.exists(str(description.get("key", ""))):
        return None
    return description  # type: ignore[return-value]


def fetch(connection: Redis, job_id: str) -> Job:
    """The job with ``job_id``; JobNotFound if the id is malformed, unknown or expired."""
    if not is_job_id(job_id):
        raise JobNotFound(job_id)
    try:
        return PlotJob.fetch(job_id, connection=connection, serializer=PlainDataSerializer)
    except NoSuchJobError:
        raise JobNotFound(job_id) from None


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


def exception_text(traceback_text: str) -> str:
    """The exception part of a formatted traceback (type and message), without module paths."""
    lines = traceback_text.rstrip().splitlines()
    frames = [index for index, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    while start < len(lines) - 1 and lines[start].startswith("    "):
        start += 1
    text = "\n".join(lines[start:]).strip()
    head, separator, rest = text.partition(":")
    return head.rsplit(".", 1)[-1] + separator + rest if " " not in head else text


def error_message(job: Job) -> str | None:
    """Why a job failed: its exception's type and message."""
    result = job.latest_result()
    if result is None or not result.exc_string:
        return None
    return exception_text(result.exc_string)


def describe(job: Job) -> dict[str, Any]:
    """The public view of a job: RQ's state plus our progress and stage."""
    status = job.get_status(refresh=False)
    meta = job.meta or {}
    progress = float(meta.get("progress", 0.0))
    if status == JobStatus.FINISHED:
        progress = 1.0
    return {
        "id": job.id,
        "state": status.value if status else None,
        "progress": progress,
        "stage": meta.get("stage"),
        "error": error_message(job) if status in (JobStatus.FAILED, JobStatus.STOPPED) else None,
        "position": job.get_position() if status == JobStatus.QUEUED else None,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "ended_at": _iso(job.ended_at),
    }


def tutorial_state(job: Job) -> TutorialState:
    """Map RQ's status to the tutorial's four states."""
    return _TUTORIAL_STATES.get(job.get_status(refresh=False), TutorialState.PENDING)


def result_file(connection: Redis, job: Job) -> tuple[bytes, results.ResultDescription]:
    """The rendered bytes of a finished job and their description."""
    status = job.get_status(refresh=False)
    if status != JobStatus.FINISHED:
        raise ResultNotReady(job.id, status.value if status else "unknown")
    result = job.latest_result()
    description = result.return_value if result else None
    if not isinstance(description, dict):
        raise ResultExpired(job.id)
    data = results.load(connection, description)  # type: ignore[arg-type]
    if data is None:
        raise ResultExpired(job.id)
    return data, description  # type: ignore[return-value]
