"""The sweeper: finds jobs whose worker died, or that no queue holds any more, and recovers them.

See docs/design.md, "Guarantees under faults".
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.results import Result

from plotjobs import keys, states
from plotjobs.config import Settings
from plotjobs.queue import jobs, tasks
from plotjobs.queue.serialization import JsonSerializer
from plotjobs.worker import policy
from plotjobs.worker.policy import InflightJob, LostJob, StartedEntry

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did, by job id."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def server_time(connection: Redis) -> float:
    """Redis's clock, shared by every host, in seconds since the epoch."""
    seconds, microseconds = connection.time()
    return float(seconds) + microseconds / 1_000_000


def beat(connection: Redis, worker_name: str) -> None:
    """Record that ``worker_name`` is alive now."""
    now = server_time(connection)
    with connection.pipeline(transaction=False) as pipe:
        pipe.zadd(keys.HEARTBEATS, {worker_name: now})
        pipe.expire(keys.HEARTBEATS, keys.HEARTBEATS_TTL)
        pipe.execute()


def declare_dead(connection: Redis, worker_name: str, settings: Settings) -> None:
    """Mark ``worker_name`` as dead at once (its process is known to be gone)."""
    stale = server_time(connection) - settings.worker_liveness_timeout - 1
    with connection.pipeline(transaction=False) as pipe:
        pipe.zadd(keys.HEARTBEATS, {worker_name: stale})
        pipe.expire(keys.HEARTBEATS, keys.HEARTBEATS_TTL)
        pipe.execute()


def is_beating(connection: Redis, worker_name: str) -> bool:
    """Whether ``worker_name`` has beaten (it has started up) and has not been forgotten."""
    return connection.zscore(keys.HEARTBEATS, worker_name) is not None


def forget(connection: Redis, worker_name: str) -> None:
    """Remove a worker that stopped cleanly (it holds no job)."""
    connection.zrem(keys.HEARTBEATS, worker_name)


def dead_workers(connection: Redis, settings: Settings, now: float) -> set[str]:
    """Workers that beat once and then fell silent for longer than the liveness timeout."""
    connection.zremrangebyscore(keys.HEARTBEATS, 0, now - keys.HEARTBEATS_TTL)
    silent = connection.zrangebyscore(keys.HEARTBEATS, 0, policy.silent_since(now, settings.worker_liveness_timeout))
    return {_text(name) for name in silent}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _members(connection: Redis, key: str) -> list[str]:
    """The members of a sorted set, as text."""
    return [_text(member) for member in connection.zrange(key, 0, -1)]


def _fetch(connection: Redis, job_id: str) -> Job | None:
    try:
        return jobs.PlotJob.fetch(job_id, connection=connection, serializer=JsonSerializer)
    except NoSuchJobError:
        return None


def _state(job: Job | None) -> str | None:
    state = job.get_status(refresh=False) if job is not None else None
    return state.value if state else None


def _is_registered(queue: Queue, job_id: str) -> bool:
    return any(
        started_id == job_id for started_id, _ in queue.started_job_registry.get_job_and_execution_ids(cleanup=False)
    )


def _queues(connection: Redis, settings: Settings) -> list[Queue]:
    names = set(settings.queues) | {queue.name for queue in Queue.all(connection=connection)}
    return [jobs.queue(connection, name) for name in sorted(names)]


def _requeue(connection: Redis, queue: Queue, job: Job, stage: str, execution: Execution | None) -> None:
    with connection.pipeline() as pipe:
        pipe.multi()  # RQ's enqueue_job expects an explicit transaction when handed a pipeline
        if execution is not None:
            queue.started_job_registry.remove_execution(execution, pipeline=pipe)
        pipe.lrem(queue.intermediate_queue_key, 0, job.id)
        pipe.lrem(queue.key, 0, job.id)
        job.meta = tasks.progress_meta(0.0, stage)
        queue.enqueue_job(job, pipeline=pipe, at_front=True)
        pipe.execute()
    tasks.announce(job)


def _claim(connection: Redis, job_id: str) -> bool:
    """Whether this sweep may recover the job (a forced sweep can overlap a periodic one)."""
    return bool(connection.set(keys.recovering(job_id), "1", nx=True, ex=keys.RECOVERING_TTL))


def _recover_lost(
    connection: Redis, settings: Settings, queue: Queue, job: Job, *, execution: Execution | None, report: SweepReport
) -> None:
    if not _claim(connection, job.id):
        return
    worker_name = job.worker_name or "unknown"
    count_key = keys.lost_count(job.id)
    cancel_requested = bool(connection.exists(keys.cancel(job.id)))
    attempts = 0 if cancel_requested else int(connection.incr(count_key))
    action = policy.lost_job(cancel_requested=cancel_requested, attempts=attempts, retries=settings.lost_job_retries)
    if action is LostJob.CANCEL:
        log.info("job %s: worker %s lost after a cancel request; canceled", job.id, worker_name)
        if execution is not None:
            queue.started_job_registry.remove_execution(execution)
        job.cancel()
        tasks.announce(job)
        return
    connection.expire(count_key, policy.lost_count_ttl(job.failure_ttl, settings.failure_ttl))
    if action is LostJob.REQUEUE:
        log.warning("job %s: worker %s lost; requeued (retry %d of %d)", job.id, worker_name, attempts,
                    settings.lost_job_retries)  # fmt: skip
        _requeue(connection, queue, job, policy.requeued_stage(attempts, settings.lost_job_retries), execution)
        report.requeued.append(job.id)
        return
    message = policy.worker_lost_message(worker_name, attempts)
    log.warning("job %s: %s", job.id, message)
    failure_ttl = job.failure_ttl or settings.failure_ttl
    with connection.pipeline() as pipe:
        if execution is not None:
            queue.started_job_registry.remove_execution(execution, pipeline=pipe)
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        # The failed registry saves the whole job hash, this included.
        job.ended_at = dt.datetime.now(dt.UTC)
        # What RQ's worker does for a failed job: the failed registry, and a failure result with the reason.
        FailedJobRegistry(queue.name, connection=connection, job_class=jobs.PlotJob, serializer=JsonSerializer).add(
            job, ttl=failure_ttl, exc_string=message, pipeline=pipe
        )
        Result.create_failure(job, failure_ttl, exc_string=message, worker_name=worker_name, pipeline=pipe)
        pipe.execute()
    tasks.announce(job)
    report.failed.append(job.id)


def _holder(connection: Redis, job: Job, execution_id: str) -> str | None:
    """The worker that registered this execution (the job's own record lags until it starts)."""
    try:
        return Execution.fetch(execution_id, job.id, connection).worker_name or job.worker_name
    except ValueError:
        return job.worker_name


def _sweep_started(connection: Redis, settings: Settings, queue: Queue, dead: set[str], report: SweepReport) -> None:
    registry = queue.started_job_registry
    for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
        job = _fetch(connection, job_id)
        if job is None:
            continue
        action = policy.started_entry(holder_dead=_holder(connection, job, execution_id) in dead, state=_state(job))
        if action is StartedEntry.KEEP:
            continue
        execution = Execution(execution_id, job_id, connection=connection)
        if action is StartedEntry.RECOVER_LOST:
            _recover_lost(connection, settings, queue, job, execution=execution, report=report)
        elif action is StartedEntry.REQUEUE_STRANDED:
            if not _claim(connection, job_id):
                continue
            log.warning("job %s: its worker died before starting it; back on queue %s", job_id, queue.name)
            _requeue(connection, queue, job, "requeued: stranded after dequeue", execution)
            report.requeued.append(job_id)
        else:
            registry.remove_execution(execution)
    # Workers that never beat (stock ``rq worker``) are left to RQ's own expiry, run here often.
    registry.cleanup()


def _seen_long_enough(connection: Redis, job_id: str, now: float, grace: int) -> bool:
    """True once a job has been seen stranded in two sweeps at least ``grace`` seconds apart."""
    key = keys.limbo(job_id)
    if connection.set(key, now, nx=True, ex=policy.limbo_mark_ttl(grace)):
        return False
    raw = connection.get(key) or b""
    try:
        first_seen = float(raw)
    except ValueError:
        first_seen = now  # not a time of ours: count from this sighting
        connection.set(key, now, ex=policy.limbo_mark_ttl(grace))
    return policy.seen_long_enough(first_seen, now, grace)


def _sweep_intermediate(connection: Redis, settings: Settings, queue: Queue, now: float, report: SweepReport) -> None:
    started = {job_id for job_id, _ in queue.started_job_registry.get_job_and_execution_ids(cleanup=False)}
    intermediate = IntermediateQueue(queue.key, connection)
    for job_id in intermediate.get_job_ids():
        if job_id in started:
            continue
        job = _fetch(connection, job_id)
        if job is None or _state(job) not in states.RECOVERABLE:
            intermediate.remove(job_id)
            continue
        if _seen_long_enough(connection, job_id, now, settings.worker_liveness_timeout) and _claim(connection, job_id):
            log.warning("job %s: stranded after dequeue; back on queue %s", job_id, queue.name)
            _requeue(connection, queue, job, "requeued: stranded after dequeue", None)
            connection.delete(keys.limbo(job_id))
            report.requeued.append(job_id)


def _sweep_orphans(connection: Redis, settings: Settings, now: float, dead: set[str], report: SweepReport) -> None:
    for job_id in _members(connection, keys.INFLIGHT):
        job = _fetch(connection, job_id)
        state = _state(job)
        if job is None or state not in states.RECOVERABLE:
            connection.zrem(keys.INFLIGHT, job_id)
            continue
        queue = jobs.queue(connection, job.origin)
        started = state == states.JobState.STARTED
        on_queue = not started and connection.lpos(queue.key, job_id) is not None
        action = policy.inflight_job(
            state=state,
            registered=started and _is_registered(queue, job_id),
            worker_dead=job.worker_name in dead,
            on_queue=on_queue,
            on_intermediate_queue=not (started or on_queue)
            and connection.lpos(queue.intermediate_queue_key, job_id) is not None,
        )
        if action is InflightJob.RECOVER_LOST:
            _recover_lost(connection, settings, queue, job, execution=None, report=report)
        elif action is InflightJob.CLEAR_MARK:
            connection.delete(keys.limbo(job_id))
        elif action is InflightJob.REQUEUE_IF_SEEN_LONG_ENOUGH and (
            _seen_long_enough(connection, job_id, now, settings.worker_liveness_timeout) and _claim(connection, job_id)
        ):
            log.warning("job %s: queued but on no queue; back on queue %s", job_id, queue.name)
            _requeue(connection, queue, job, "requeued: lost between dequeue and start", None)
            connection.delete(keys.limbo(job_id))
            report.requeued.append(job_id)


def sweep(connection: Redis, settings: Settings, *, force: bool = False) -> SweepReport | None:
    """Recover lost, stranded and orphaned jobs; None if another process swept within SWEEP_INTERVAL."""
    if not force and not connection.set(keys.SWEEP_LOCK, "1", nx=True, ex=settings.sweep_interval):
        return None
    now = server_time(connection)
    dead = dead_workers(connection, settings, now)
    report = SweepReport()
    for queue in _queues(connection, settings):
        _sweep_started(connection, settings, queue, dead, report)
        _sweep_intermediate(connection, settings, queue, now, report)
    _sweep_orphans(connection, settings, now, dead, report)
    return report
