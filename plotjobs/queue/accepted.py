"""Submissions accepted through RabbitMQ but not yet in RQ: a short-lived marker gives them a status."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from redis import Redis
from rq.job import Job

from plotjobs import keys
from plotjobs.errors import JobNotFound
from plotjobs.queue import jobs

STAGE = "submitted"


def record(connection: Redis, job_id: str) -> None:
    """Remember that ``job_id`` was accepted and is on its way to the queue."""
    moment = dt.datetime.now(dt.UTC).isoformat()
    connection.set(keys.accepted(job_id), json.dumps({"accepted_at": moment}), ex=keys.ACCEPTED_TTL)


def forget(connection: Redis, job_id: str) -> None:
    """Drop the marker of ``job_id``: RQ now holds the job (or it was never sent)."""
    connection.delete(keys.accepted(job_id))


def _is_uuid(job_id: str) -> bool:
    try:
        return str(uuid.UUID(job_id)) == job_id
    except ValueError:
        return False


def status(connection: Redis, job_id: str) -> dict[str, Any] | None:
    """The status of an accepted job that RQ does not have yet (same shape as ``status.describe``)."""
    if not _is_uuid(job_id):
        return None
    raw = connection.get(keys.accepted(job_id))
    if raw is None:
        return None
    try:
        marker = json.loads(raw)
    except ValueError:
        marker = {}  # written by hand: the submission is still accepted, its time unknown
    accepted_at = marker.get("accepted_at") if isinstance(marker, dict) else None
    if not isinstance(accepted_at, str):
        accepted_at = None
    return {
        "id": job_id,
        "state": "queued",
        "progress": 0.0,
        "stage": STAGE,
        "error": None,
        "position": None,
        "created_at": accepted_at,
        "started_at": None,
        "ended_at": None,
    }


def fetch_or_pending(connection: Redis, job_id: str) -> Job | dict[str, Any]:
    """The job, or the status of a submission accepted through RabbitMQ and not yet in RQ; else JobNotFound."""
    try:
        return jobs.fetch(connection, job_id)
    except JobNotFound:
        pending = status(connection, job_id)
        if pending is not None:
            return pending
    # The bridge drops the marker only once RQ has the job, so this second look cannot miss it.
    return jobs.fetch(connection, job_id)
