"""Every Redis key and channel plotjobs creates, with how long each lives. RQ's own keys are RQ's.

Every key here expires (docs/design.md, "What lives in Redis").
"""

from __future__ import annotations

PREFIX = "plotjobs:"

DAY = 24 * 3600

RESULT_PREFIX = PREFIX + "result:"
"""Rendered bytes by SHA-256; they live as long as the job's result TTL."""

ACCEPTED_PREFIX = PREFIX + "accepted:"
ACCEPTED_TTL = DAY
"""A submission published to RabbitMQ and not yet in RQ; a day covers a bridge or Redis outage."""

INFLIGHT = PREFIX + "inflight"
INFLIGHT_TTL = DAY
"""Ids of jobs accepted and not yet seen ended: the sweeper looks for orphans here."""

EVENTS_PREFIX = PREFIX + "events:"
"""Pub/sub channel per job: progress and final states (channels hold nothing)."""

CANCEL_PREFIX = PREFIX + "cancel:"
CANCEL_TTL = DAY
"""A cancel request outlives any render it could still stop (JOB_TIMEOUT is far below this)."""

CLIENT_PREFIX = PREFIX + "client:"
CLIENT_TTL = DAY
"""A client's active job ids; the set lives a day past its last job."""

INTEREST_PREFIX = PREFIX + "interest:"
"""SHA-256s of the cancel tokens of a job's submitters; lives as long as the job's result or failure."""

SPEC_PREFIX = PREFIX + "spec:"
"""The generation of a reproducible spec's renders; lives as long as the jobs it names."""

DATA_PREFIX = PREFIX + "data:"
"""A spec's large data by SHA-256 (plotjobs.queue.data): lives as long as the longest-lived job or stored chart
that needs it (each pushes the expiry back: a job from its submission and its start, a stored chart at each view)."""

CHART_PREFIX = PREFIX + "chart:"
"""A stored chart of a short URL (its spec, as JSON); lives CHART_URL_TTL after it was stored or last viewed."""

CHART_STORES_PREFIX = PREFIX + "chart-stores:"
CHART_STORES_TTL = 3600
"""How many charts one client (or signing key) stored in the current hour: a counter that expires with it."""

HEARTBEATS = PREFIX + "heartbeats"
HEARTBEATS_TTL = DAY
"""Worker name -> Redis time of its last beat; a worker silent for a day is forgotten."""

SWEEP_LOCK = PREFIX + "sweeper:lock"
"""Held for SWEEP_INTERVAL by the process that sweeps, so one sweep runs per interval."""

LIMBO_PREFIX = PREFIX + "limbo:"
"""When a stranded job was first seen (two sightings apart trigger its requeue)."""

LOST_COUNT_PREFIX = PREFIX + "lost:"
"""How often a job's worker was lost; lives as long as a failed job."""

RECOVERING_PREFIX = PREFIX + "recovering:"
RECOVERING_TTL = 5
"""One sweep's claim on a job it recovers: covers overlapping sweeps, short against the bound."""

METRICS_JOBS = PREFIX + "metrics:jobs"
METRICS_TTL = 90 * DAY
"""Job counters and render times (one hash) outlive scrapes and restarts; each write pushes the expiry back."""


def result(digest: str) -> str:
    """The key of the rendered bytes whose SHA-256 is ``digest``."""
    return RESULT_PREFIX + digest


def data(digest: str) -> str:
    """The key of the data blob whose SHA-256 is ``digest``."""
    return DATA_PREFIX + digest


def accepted(job_id: str) -> str:
    """The marker of a submission on its way through RabbitMQ."""
    return ACCEPTED_PREFIX + job_id


def events(job_id: str) -> str:
    """The pub/sub channel of a job's updates."""
    return EVENTS_PREFIX + job_id


def cancel(job_id: str) -> str:
    """The key whose presence asks the worker running ``job_id`` to stop at its next stage."""
    return CANCEL_PREFIX + job_id


def client(address: str) -> str:
    """The sorted set of a client's job ids."""
    return CLIENT_PREFIX + address


def interest(job_id: str) -> str:
    """The set of SHA-256s of the cancel tokens of the submitters still wanting ``job_id``."""
    return INTEREST_PREFIX + job_id


def spec(digest: str) -> str:
    """The generation counter of a reproducible spec."""
    return SPEC_PREFIX + digest


def chart(chart_id: str) -> str:
    """The stored spec of the short chart URL ``chart_id``."""
    return CHART_PREFIX + chart_id


def chart_stores(client: str) -> str:
    """The counter of charts ``client`` stored this hour."""
    return CHART_STORES_PREFIX + client


def limbo(job_id: str) -> str:
    """When a stranded job was first seen."""
    return LIMBO_PREFIX + job_id


def lost_count(job_id: str) -> str:
    """How often a job's worker was lost."""
    return LOST_COUNT_PREFIX + job_id


def recovering(job_id: str) -> str:
    """A sweep's short claim on a job."""
    return RECOVERING_PREFIX + job_id
