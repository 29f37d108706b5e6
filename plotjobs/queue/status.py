"""The status view of a job: RQ's state with our progress, stage, error and position (docs/api.md)."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.utils import str_to_date

from plotjobs.queue import jobs
from plotjobs.queue.jobs import latest_result
from plotjobs.queue.serialization import JsonSerializer
from plotjobs.queue.tasks import DONE_STAGE

# Longer stages are cut: meta is written by our task, but a hand-written one must not bloat every status read.
MAX_STAGE_CHARS = 200


class TutorialState(StrEnum):
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

# The states whose status carries the reason the job ended.
_ENDED_WITH_ERROR = frozenset({JobStatus.FAILED, JobStatus.STOPPED})


def iso(moment: dt.datetime | None) -> str | None:
    """A time as ISO 8601, or None."""
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
    result = latest_result(job)
    if result is None or not result.exc_string:
        return None
    return exception_text(result.exc_string)


def progress_of(meta: Any) -> tuple[float, str | None]:
    """The progress (0..1) and stage in a job's ``meta``; anything else found there reads as no progress."""
    if not isinstance(meta, dict):
        return 0.0, None
    progress, stage = meta.get("progress"), meta.get("stage")
    fraction = float(progress) if isinstance(progress, int | float) and not isinstance(progress, bool) else 0.0
    in_range = fraction if 0.0 <= fraction <= 1.0 else 0.0
    return in_range, (stage[:MAX_STAGE_CHARS] if isinstance(stage, str) else None)


def describe(job: Job) -> dict[str, Any]:
    """The public view of a job: RQ's state plus our progress and stage."""
    state = job.get_status(refresh=False)
    progress, stage = progress_of(job.meta)
    if state == JobStatus.FINISHED:
        # The task does not write its last stage: finished says it.
        progress, stage = 1.0, DONE_STAGE
    return {
        "id": job.id,
        "state": state.value,  # fetch refuses a job without a status
        "progress": progress,
        "stage": stage,
        "error": error_message(job) if state in _ENDED_WITH_ERROR else None,
        "position": job.get_position() if state == JobStatus.QUEUED else None,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "ended_at": iso(job.ended_at),
    }


# The form RQ writes its times in (rq.utils.utcformat); anything else is parsed as RQ parses it.
_RQ_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")


def _rq_time(raw: bytes | str) -> dt.datetime:
    """A time field as RQ reads it (``str_to_date``), without strptime for the form RQ writes."""
    if isinstance(raw, bytes) and _RQ_TIME.fullmatch(raw):
        return dt.datetime.fromisoformat(raw.decode())
    return str_to_date(raw)


# What a status needs from the job hash.
_STATUS_FIELDS = ("status", "meta", "created_at", "started_at", "ended_at", "origin")


def quick(connection: Redis, job_id: str) -> dict[str, Any] | None:
    """``describe``'s answer from one ``HMGET`` of the job's fields (and ``LPOS`` when queued), without loading the job.

    None when that is not enough: the job is missing, ended with an error (the error is in its
    result), or a field is not as RQ writes it. The caller then loads the whole job, which gives
    such a job its usual answer or error.
    """
    if not jobs.is_job_id(job_id):
        return None
    raw_state, raw_meta, created, started, ended, origin = connection.hmget(
        jobs.PlotJob.key_for(job_id), _STATUS_FIELDS
    )
    if raw_state is None or created is None:
        return None
    try:
        state = JobStatus(raw_state if isinstance(raw_state, str) else raw_state.decode())
        meta = JsonSerializer.loads(raw_meta) if raw_meta else {}
        created_at = _rq_time(created)
        started_at = _rq_time(started) if started else None
        ended_at = _rq_time(ended) if ended else None
    except (AttributeError, ValueError, TypeError):
        return None
    if state in _ENDED_WITH_ERROR:
        return None
    position = None
    if state == JobStatus.QUEUED and origin:
        queue_name = origin if isinstance(origin, str) else origin.decode()
        position = connection.lpos(Queue.redis_queue_namespace_prefix + queue_name, job_id)
    progress, stage = (1.0, DONE_STAGE) if state == JobStatus.FINISHED else progress_of(meta)
    return {
        "id": job_id,
        "state": state.value,
        "progress": progress,
        "stage": stage,
        "error": None,
        "position": position,
        "created_at": iso(created_at),
        "started_at": iso(started_at),
        "ended_at": iso(ended_at),
    }


def current(connection: Redis, job_id: str) -> dict[str, Any]:
    """The status of ``job_id``: ``quick`` when it can, else the whole job described; JobNotFound if unknown."""
    return quick(connection, job_id) or describe(jobs.fetch(connection, job_id))


def tutorial_state(job: Job) -> TutorialState:
    """Map RQ's status to the tutorial's four states."""
    return _TUTORIAL_STATES.get(job.get_status(refresh=False), TutorialState.PENDING)
