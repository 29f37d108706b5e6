"""A job's states: RQ's own, named once for the web app, workers, CLI, client and the page (docs/api.md)."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """The states RQ gives a job; plotjobs never invents one."""

    CREATED = "created"
    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"
    STOPPED = "stopped"
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"
    RATE_LIMITED = "rate_limited"
    READY_TO_ENQUEUE = "ready_to_enqueue"


TERMINAL: frozenset[str] = frozenset({JobState.FINISHED, JobState.FAILED, JobState.CANCELED, JobState.STOPPED})
"""States a job never leaves."""

ACTIVE: frozenset[str] = frozenset(
    {
        JobState.CREATED,
        JobState.QUEUED,
        JobState.STARTED,
        JobState.DEFERRED,
        JobState.SCHEDULED,
        JobState.RATE_LIMITED,
        JobState.READY_TO_ENQUEUE,
    }
)
"""States of a job that still waits or runs (it counts against its client's limit)."""

REUSABLE: frozenset[str] = frozenset({*ACTIVE, JobState.FINISHED})
"""States in which an identical reproducible request may share the job instead of rendering again."""

RECOVERABLE: frozenset[str] = frozenset({JobState.QUEUED, JobState.STARTED})
"""States in which the sweeper may put a job back on its queue."""


def is_terminal(state: str | None) -> bool:
    """Whether a job in ``state`` will never change again (None: it is gone)."""
    return state is None or state in TERMINAL
