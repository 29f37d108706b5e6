"""Enqueue renders, fetch jobs and describe them: the only module the web app uses to speak RQ."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from enum import Enum
from typing import Any

from redis import Redis
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from plotjobs import results, tasks
from plotjobs.charts import ChartSpec
from plotjobs.config import Settings
from plotjobs.errors import JobAlreadyEnded, JobNotFound, ResultExpired, ResultNotReady
from plotjobs.serialization import PlainDataSerializer

# RQ's own ids are UUID4 strings; anything else is not a job of ours and never reaches Redis.
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

JOB_DESCRIPTION = "plotjobs.render_chart"

# Ids of jobs accepted through plotjobs and not yet seen ended: the sweeper looks for orphans here.
INFLIGHT_KEY = "plotjobs:inflight"
INFLIGHT_TTL = 24 * 3600
TERMINAL_STATES = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED})
ACTIVE_STATES = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED})
# How long DELETE waits for a running job to notice its cancel and stop (renders check between stages).
STOP_WAIT_SECONDS = 3.0


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


def queue(connection: Redis, name: str) -> Queue:
    """The RQ queue ``name`` with our job class and serializer."""
    return Queue(name, connection=connection, job_class=PlotJob, serializer=PlainDataSerializer)


def new_job_id() -> str:
    """A random, unguessable job id (UUID4, as RQ makes)."""
    return str(uuid.uuid4())


def enqueue_render(connection: Redis, settings: Settings, spec: ChartSpec, job_id: str | None = None) -> Job:
    """Put a render of ``spec`` on the default queue and return its job."""
    job = queue(connection, settings.default_queue).enqueue(
        tasks.render_chart,
        spec.model_dump(mode="json"),
        job_timeout=settings.job_timeout,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.failure_ttl,
        # A constant description: user text must never reach RQ's description field.
        description=JOB_DESCRIPTION,
        meta=tasks.progress_meta(0.0, "queued"),
        job_id=job_id or new_job_id(),
    )
    with connection.pipeline(transaction=False) as pipe:
        pipe.zadd(INFLIGHT_KEY, {job.id: time.time()})
        pipe.expire(INFLIGHT_KEY, INFLIGHT_TTL)
        pipe.execute()
    return job


def queue_depth(connection: Redis, settings: Settings) -> int:
    """How many jobs wait in the configured queues."""
    with connection.pipeline(transaction=False) as pipe:
        for name in settings.queues:
            pipe.llen(queue(connection, name).key)
        return sum(int(length) for length in pipe.execute())


def active_flags(connection: Redis, job_ids: Sequence[str]) -> list[bool]:
    """For each id, whether its job still waits or runs (False once ended or expired)."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(Job.key_for(job_id), "status")
        statuses = pipe.execute()
    return [status is not None and status.decode() in ACTIVE_STATES for status in statuses]


def cancel(connection: Redis, job: Job) -> Job:
    """Cancel a waiting job, or ask the worker running it to stop; JobAlreadyEnded if it has ended."""
    status = job.get_status()
    if status in TERMINAL_STATES:
        raise JobAlreadyEnded(job.id, status.value)
    # Set first: a worker that dequeues the job in the meantime stops at its first stage.
    connection.set(tasks.cancel_key(job.id), "1", ex=tasks.CANCEL_KEY_TTL)
    if status != JobStatus.STARTED:
        try:
            job.cancel()
        except InvalidJobOperation:
            pass  # canceled by a concurrent request
        tasks.announce(job)
        return fetch(connection, job.id)
    try:
        # Forking RQ workers kill their work horse on this; ours stop cooperatively at the next stage.
        send_stop_job_command(connection, job.id, serializer=PlainDataSerializer)
    except InvalidJobOperation:
        pass  # it ended or was requeued meanwhile; the cancel flag still applies
    return _wait_until_ended(connection, job)


def _wait_until_ended(connection: Redis, job: Job) -> Job:
    pubsub = connection.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(tasks.events_channel(job.id))
    try:
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while True:
            current = fetch(connection, job.id)
            if current.get_status(refresh=False) in TERMINAL_STATES or time.monotonic() >= deadline:
                return current
            pubsub.get_message(timeout=0.1)
    finally:
        pubsub.close()


def fetch(connection: Redis, job_id: str) -> Job:
    """The job with ``job_id``; JobNotFound if the id is malformed, unknown or expired."""
    if not _JOB_ID.match(job_id):
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


def is_terminal(job: Job) -> bool:
    """Whether the job has reached its end state."""
    return job.get_status(refresh=False) in TERMINAL_STATES


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
