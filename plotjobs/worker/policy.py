"""The sweep's and the supervisor's decisions, apart from the Redis and process work that carries them out.

Each function takes what was read (states, times, counts) and says what to do, so every
branch is tested in-process (tests/unit/worker/test_policy.py). See docs/design.md,
"Guarantees under faults".
"""

from __future__ import annotations

import signal
from enum import StrEnum

from plotjobs import states

WORKER_LOST = "WorkerLostError"

# A first-seen mark outlives many sweeps, and at least ten minutes, so a slow sweep cycle still sees it.
LIMBO_MARK_MIN_SECONDS = 600
LIMBO_MARK_SWEEPS = 10

# A worker that ran this long before crashing starts its backoff afresh.
HEALTHY_AFTER_SECONDS = 60.0


class LostJob(StrEnum):
    """What to do with a job whose worker died while running it."""

    CANCEL = "cancel"
    REQUEUE = "requeue"
    FAIL = "fail"


class StartedEntry(StrEnum):
    """What to do with an entry of a queue's started registry."""

    KEEP = "keep"
    RECOVER_LOST = "recover_lost"
    REQUEUE_STRANDED = "requeue_stranded"
    DROP_EXECUTION = "drop_execution"


class InflightJob(StrEnum):
    """What to do with a job of the in-flight set (every job we queued and that has not ended)."""

    FORGET = "forget"
    RECOVER_LOST = "recover_lost"
    KEEP = "keep"
    CLEAR_MARK = "clear_mark"
    REQUEUE_IF_SEEN_LONG_ENOUGH = "requeue_if_seen_long_enough"


class WorkerExit(StrEnum):
    """How a supervised worker process ended."""

    CLEAN = "clean"
    STOPPED_BEFORE_READY = "stopped_before_ready"
    CRASHED = "crashed"


def silent_since(now: float, liveness_timeout: float) -> float:
    """The heartbeat time at or before which a worker counts as dead."""
    return now - liveness_timeout


def lost_job(*, cancel_requested: bool, attempts: int, retries: int) -> LostJob:
    """A job whose worker died: canceled if asked to be, requeued ``retries`` times, then failed."""
    if cancel_requested:
        return LostJob.CANCEL
    return LostJob.REQUEUE if attempts <= retries else LostJob.FAIL


def requeued_stage(attempts: int, retries: int) -> str:
    """The stage a lost job shows once it is back on its queue."""
    return f"requeued: worker lost (retry {attempts} of {retries})"


def worker_lost_message(worker_name: str, attempts: int) -> str:
    """The failure reason of a job whose workers kept dying."""
    return (
        f"{WORKER_LOST}: worker lost while rendering this job ({worker_name} stopped responding); "
        f"gave up after {attempts} attempts"
    )


def lost_count_ttl(job_failure_ttl: int | None, failure_ttl: int) -> int:
    """How long a job's count of lost workers is kept: as long as its failure would be."""
    return max(job_failure_ttl or 0, failure_ttl)


def started_entry(*, holder_dead: bool, state: str | None) -> StartedEntry:
    """An execution registered as started: recover it only once its worker is known dead."""
    if not holder_dead:
        return StartedEntry.KEEP
    if state == states.JobState.STARTED:
        return StartedEntry.RECOVER_LOST
    if state == states.JobState.QUEUED:
        # Registered by a worker that died before marking the job started: it never ran.
        return StartedEntry.REQUEUE_STRANDED
    return StartedEntry.DROP_EXECUTION


def inflight_job(
    *, state: str | None, registered: bool, worker_dead: bool, on_queue: bool, on_intermediate_queue: bool
) -> InflightJob:
    """A job we queued: forget it once it ended, recover it when no queue or live worker holds it."""
    if state not in states.RECOVERABLE:
        return InflightJob.FORGET
    if state == states.JobState.STARTED:
        return InflightJob.RECOVER_LOST if worker_dead and not registered else InflightJob.KEEP
    if on_queue:
        return InflightJob.CLEAR_MARK
    if on_intermediate_queue:
        return InflightJob.KEEP  # the intermediate-queue sweep owns it, and its first-seen mark
    return InflightJob.REQUEUE_IF_SEEN_LONG_ENOUGH


def seen_long_enough(first_seen: float, now: float, grace: float) -> bool:
    """Whether a job first seen stranded at ``first_seen`` has been so for ``grace`` seconds."""
    return now - first_seen >= grace


def limbo_mark_ttl(grace: int) -> int:
    """How long a first-seen mark is kept."""
    return max(grace * LIMBO_MARK_SWEEPS, LIMBO_MARK_MIN_SECONDS)


def worker_exit(returncode: int, *, recycling: bool) -> WorkerExit:
    """A clean exit, a recycled worker stopped before its signal handlers were set, or a crash."""
    if returncode == 0:
        return WorkerExit.CLEAN
    if recycling and returncode == -signal.SIGTERM:
        return WorkerExit.STOPPED_BEFORE_READY
    return WorkerExit.CRASHED


def backoff_starts_afresh(ran_for: float) -> bool:
    """Whether a worker that crashed after ``ran_for`` seconds had been healthy."""
    return ran_for > HEALTHY_AFTER_SECONDS


def is_repeated_signal(
    *, stop_requests: int, signum: int, first_signal: int, since_first: float, window: float
) -> bool:
    """A different signal right after the first is the same stop request relayed (Ctrl-C reaches the group)."""
    return stop_requests > 0 and signum != first_signal and since_first < window


def supervisor_exit_status(*, clean: bool, stop_requests: int) -> int:
    """0 after a warm stop or when every worker ended cleanly; 1 after a forced stop that killed workers."""
    return 0 if clean or stop_requests == 1 else 1
