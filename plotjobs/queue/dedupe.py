"""No work twice: identical reproducible specs share one job, its render and its stored file.

See docs/design.md, "No work twice".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from redis import Redis
from redis.exceptions import WatchError
from rq.job import Job

from plotjobs import keys, states
from plotjobs.config import Settings
from plotjobs.errors import JobNotFound
from plotjobs.queue import jobs, results
from plotjobs.spec.base import GeneratorSpec, detached_document

# Enough for a handful of concurrent failed generations; beyond that we render without sharing.
_ATTEMPTS = 5


@dataclass(frozen=True)
class Submission:
    """The job answering a request, and whether it already existed."""

    job_id: str
    reused: bool
    result: results.ResultDescription | None = None

    @property
    def finished(self) -> bool:
        """Whether the answer's file exists already."""
        return self.result is not None


def utc_today() -> dt.date:
    """Today's date in UTC: the day a spec's implicit date is pinned to."""
    return dt.datetime.now(dt.UTC).date()


def spec_digest(spec: GeneratorSpec) -> str:
    """The SHA-256 of the generator's name and the whole validated spec (its arrays by their bytes)."""
    document, arrays = detached_document(spec)
    if not arrays:
        return hashlib.sha256(f"{spec.generator_name}:{spec.model_dump_json()}".encode()).hexdigest()
    digest = hashlib.sha256(f"{spec.generator_name}:{json.dumps(document, sort_keys=True)}".encode())
    for array in arrays:
        digest.update(f"\n{array.dtype.str}:{array.shape}\n".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def job_id_for(digest: str, generation: int) -> str:
    """The job id of one generation of renders of a spec."""
    return str(uuid.UUID(hex=hashlib.sha256(f"{digest}:{generation}".encode()).hexdigest()[:32], version=4))


def _generation(connection: Redis, key: str) -> int:
    raw = connection.get(key)
    # A counter that is not a whole number was not written by us: start over from generation 0.
    return int(raw) if raw and raw.isdigit() else 0


def _job_and_state(connection: Redis, job_id: str) -> tuple[Job, str | None] | None:
    """The job and the name of its state; None when there is no such job."""
    try:
        job = jobs.fetch(connection, job_id)
    except JobNotFound:
        return None
    state = job.get_status(refresh=False)
    return job, state.value if state else None


def _reusable(connection: Redis, job_id: str) -> tuple[bool, results.ResultDescription | None] | None:
    """(reusable, its file if finished) for an existing job; None when there is no such job."""
    found = _job_and_state(connection, job_id)
    if found is None:
        return None
    job, state_name = found
    if state_name not in states.REUSABLE:
        return False, None
    if state_name != "finished":
        return True, None
    stored = jobs.stored_result(connection, job)
    return stored is not None, stored


def _advance(connection: Redis, key: str, generation: int, ttl: int) -> None:
    """Move the spec to the next generation unless another request already did."""
    with connection.pipeline() as pipeline:
        try:
            pipeline.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.watch untyped
            current = pipeline.get(key)
            if (int(current) if current else 0) != generation:
                return
            pipeline.multi()
            pipeline.set(key, generation + 1, ex=ttl)
            pipeline.execute()
        except WatchError:
            return


@dataclass(frozen=True)
class Found:
    """What an identical reproducible request would share now: a job, its state, and its file once finished."""

    job_id: str
    state: str | None
    result: results.ResultDescription | None = None
    ended_at: dt.datetime | None = None


def lookup(connection: Redis, spec: GeneratorSpec, *, today: Callable[[], dt.date] = utc_today) -> Found | None:
    """The job ``submit`` would answer ``spec`` with now, read only; None when it would enqueue one.

    Chart URLs read this first, so that a chart rendered already or being rendered is served
    without admission (no client is charged for it). A failed job is returned too (``submit``
    would render again): the caller decides when to.
    """
    spec = spec.pinned(today())
    if not spec.is_reproducible():
        return None
    digest = spec_digest(spec)
    derived_id = job_id_for(digest, _generation(connection, keys.spec(digest)))
    found = _job_and_state(connection, derived_id)
    if found is None:
        return None
    job, state_name = found
    if state_name == "finished":
        stored = jobs.stored_result(connection, job)
        return Found(derived_id, state_name, stored) if stored is not None else None
    if state_name in states.REUSABLE or state_name == "failed":
        return Found(derived_id, state_name, ended_at=job.ended_at)
    return None


def submit(
    connection: Redis,
    settings: Settings,
    spec: GeneratorSpec,
    queue_name: str | None = None,
    job_id: str | None = None,
    *,
    today: Callable[[], dt.date] = utc_today,
) -> Submission:
    """Queue a render of ``spec`` on ``queue_name`` (None: the default queue), or answer with the job that has it.

    A spec that is not reproducible gets ``job_id`` (a random one when None); a reproducible
    one gets the id derived from the spec, pinned to ``today()`` first.
    """
    spec = spec.pinned(today())
    if not spec.is_reproducible():
        return Submission(_enqueue(connection, settings, spec, queue_name, job_id), reused=False)
    digest = spec_digest(spec)
    key = keys.spec(digest)
    # The generation must outlive every job it names, finished or failed.
    ttl = max(settings.result_ttl, settings.failure_ttl)
    for _ in range(_ATTEMPTS):
        generation = _generation(connection, key)
        derived_id = job_id_for(digest, generation)
        existing = _reusable(connection, derived_id)
        if existing is None:
            if jobs.enqueue_render_once(connection, settings, spec, derived_id, queue_name):
                connection.set(key, generation, ex=ttl)
                return Submission(derived_id, reused=False)
            continue  # another request enqueued this id a moment ago: look at it again
        reusable, stored = existing
        if reusable:
            return Submission(derived_id, reused=True, result=stored)
        _advance(connection, key, generation, ttl)
    return Submission(_enqueue(connection, settings, spec, queue_name, job_id), reused=False)


def _enqueue(
    connection: Redis, settings: Settings, spec: GeneratorSpec, queue_name: str | None, job_id: str | None
) -> str:
    return str(jobs.enqueue_render(connection, settings, spec, queue_name, job_id=job_id).id)
