"""Enqueue renders, fetch jobs and describe them: how the web app, bridge and CLI speak RQ (docs/design.md)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
import uuid
import zlib
from collections.abc import Sequence
from typing import Any, cast

from redis import Redis
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import (
    DeserializationError,
    DuplicateJobError,
    InvalidJobOperation,
    NoSuchJobError,
    TimeoutFormatError,
)
from rq.job import Job, JobStatus
from rq.results import Result
from rq.utils import decode_redis_hash
from rq.worker import Worker

from plotjobs import generators, keys, states
from plotjobs.config import DEFAULT_GENERATOR, DEFAULT_PRIORITY, PRIORITIES, Settings
from plotjobs.errors import (
    ForbiddenTaskError,
    InvalidPriority,
    JobAlreadyEnded,
    JobNotFound,
    NotReplicated,
    ResultExpired,
    ResultNotReady,
    UnreadableJob,
)
from plotjobs.queue import data, metrics, results, rq_internals, tasks
from plotjobs.queue.rq_internals import harden_rq
from plotjobs.queue.serialization import JsonSerializer
from plotjobs.spec.base import GeneratorSpec, array_as_json, attach_arrays, detached_document

# RQ's own ids are UUID4 strings; anything else is not a job of ours and never reaches Redis.
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# Where a job's arguments hold the reference to its stored data: (generator name, spec, data).
DATA_ARGUMENT = 2

# How long DELETE waits for a running job to notice its cancel and stop (renders check between stages).
STOP_WAIT_SECONDS = 3.0


# What RQ's parsers raise on a result stream entry written by hand (bad base64, zlib, JSON, type or timestamp).
RESULT_PARSE_ERRORS = (ValueError, TypeError, KeyError, OverflowError, zlib.error)

# The first byte of every pickle since protocol 2: jobs queued by plotjobs 0.1.
PICKLE_MARK = b"\x80"


# What RQ's parsers raise on a field they cannot read (parse_timeout asserts, for one).
RQ_PARSE_ERRORS = (ValueError, TypeError, KeyError, AssertionError, TimeoutFormatError)


class UnreadableJobData(DeserializationError):
    """A job's data cannot be read as JSON; RQ's worker fails the job with this reason, nothing runs."""


class PlotJob(Job):
    """An RQ job that runs only plotjobs' registered tasks, and survives hostile fields in its hash."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Every process that reads our jobs builds one of these first, a stock `rq worker -j` included.
        harden_rq()
        super().__init__(*args, **kwargs)
        self.unreadable: str | None = None

    def restore(self, raw_data: Any) -> None:
        """Load the hash as RQ does; a field RQ cannot parse marks the job unreadable instead of raising."""
        cleaned, oversized = rq_internals.defuse_compressed_fields(raw_data)
        self.unreadable = None if oversized is None else f"FieldTooLargeError: {oversized}"
        try:
            super().restore(cleaned)
        except RQ_PARSE_ERRORS as error:
            # RQ parses a dozen fields with int(), json and dates; any may hold garbage written to Redis
            # (its timeout parser asserts that what it got is text).
            self.unreadable = f"{type(error).__name__}: {str(error)[:200]}"
            return
        # Fields RQ reads without checking them, then trips over when it acts on the job.
        if not decode_redis_hash(raw_data).get("status"):
            self.unreadable = "it has no status"
        elif not rq_internals.dependency_ids_are_ids(self):
            self.unreadable = "its dependency ids are not a list of ids"

    def latest_result(self, timeout: int = 0) -> Result | None:
        """RQ's latest result, or None when its stream entry cannot be read (it was written by hand)."""
        try:
            return super().latest_result(timeout)
        except RESULT_PARSE_ERRORS:
            return None

    @property
    def func_name(self) -> str | None:
        """The task the job names; UnreadableJobData (why, in words) when its data is not JSON."""
        if self.unreadable is not None:
            raise UnreadableJobData(self.unreadable)
        try:
            name: str | None = super().func_name
        except DeserializationError:
            raise UnreadableJobData(unreadable_data_reason(self.data)) from None
        return name

    @func_name.setter
    def func_name(self, value: str) -> None:
        Job.func_name.fset(self, value)  # type: ignore[attr-defined]  # RQ's setter, untyped

    @property
    def func(self) -> Any:
        """The task function, once the job is known to be readable and to name one of our tasks."""
        if self.unreadable is not None:
            raise UnreadableJob(self.id, self.unreadable)
        if self.instance is not None or self.func_name not in tasks.REGISTERED_TASKS:
            raise ForbiddenTaskError(f"{self.func_name!r} is not a plotjobs task; refusing to run it")
        return super().func


def unreadable_data_reason(data: bytes) -> str:
    """Why a job's data cannot be read, in words an operator can act on."""
    if data.startswith(PICKLE_MARK):
        return "its data is a pickle, as plotjobs 0.1 queued jobs; it was not loaded and nothing ran: submit it again"
    return "its data is not JSON; it was not loaded and nothing ran"


def queue(connection: Redis, name: str) -> Queue:
    """The RQ queue ``name`` with our job class and serializer."""
    return Queue(name, connection=connection, job_class=PlotJob, serializer=JsonSerializer)


def new_job_id() -> str:
    """A random, unguessable job id (UUID4, as RQ makes)."""
    return str(uuid.uuid4())


def queue_for_priority(settings: Settings, priority: str | None) -> str:
    """The queue for a priority (``high``, ``default``, ``low``); InvalidPriority if none serves it.

    The one place a priority becomes a queue name: the API and the bridge call it as a request
    arrives, and everything below them takes queue names.
    """
    if priority is None or priority == DEFAULT_PRIORITY:
        return settings.default_queue
    if priority not in PRIORITIES:
        raise InvalidPriority(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}", field="priority")
    if priority not in settings.queues:
        served = ", ".join(settings.queues)
        raise InvalidPriority(f"no workers serve priority {priority!r} here (queues: {served})", field="priority")
    return priority


def generator_queue_names(settings: Settings, *, worker: bool = False) -> tuple[str, ...]:
    """Every queue of the served generators (with ``worker``, of those a worker renders), highest priority first.

    A generator's jobs of priority ``p`` go to ``<generator>.<p>`` (the chart's to ``p`` itself), so
    a worker dedicated to some generators listens to their queues only.
    """
    served = generators.served(settings.rendered_here if worker else settings.generators)
    return tuple(generator.queue_name(name) for name in settings.queues for generator in served.values())


def enqueue_render(
    connection: Redis,
    settings: Settings,
    spec: GeneratorSpec,
    queue_name: str | None = None,
    *,
    job_id: str | None = None,
) -> Job:
    """Put a render of ``spec`` on its generator's queue of priority queue ``queue_name`` (None: the default one).

    A given ``job_id`` is used once. The spec's arrays (large data) are stored apart (plotjobs.queue.data) and
    the job names them by reference.
    """
    generator = generators.get(spec.generator_name, settings.generators)
    document, arrays = detached_document(spec)
    data_args: tuple[data.DataReference, ...] = ()
    if arrays:
        data_args = (data.store(connection, arrays, data.lifetime(settings)),)
    job = queue(connection, generator.queue_name(queue_name or settings.default_queue)).enqueue(
        tasks.generate,
        spec.generator_name,
        document,
        *data_args,
        job_timeout=settings.job_timeout,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.failure_ttl,
        # Names the generator only: user text must never reach RQ's description field.
        description=job_description(spec.generator_name),
        meta=tasks.progress_meta(0.0, "queued"),
        job_id=job_id or new_job_id(),
        # RQ checks and enqueues atomically (one Lua script), so two deliveries cannot both enqueue.
        unique=job_id is not None,
    )
    mark_inflight(connection, settings, job.id)
    metrics.count_job(connection, "submitted", spec.metric_label)
    return job


def mark_inflight(connection: Redis, settings: Settings, job_id: str) -> None:
    """Note the job as in flight (the sweep's list); with REDIS_MIN_REPLICAS, wait until that many replicas have it.

    Raises NotReplicated when fewer replicas confirm within REDIS_MIN_REPLICAS_TIMEOUT_MS.
    """
    with connection.pipeline(transaction=False) as pipe:
        pipe.zadd(keys.INFLIGHT, {job_id: time.time()})
        pipe.expire(keys.INFLIGHT, keys.INFLIGHT_TTL)
        if settings.redis_min_replicas:
            # WAIT waits for this connection's last write, so it goes in this pipeline, after writes
            # that always reach the replicas. Replication is one ordered stream: a replica that has
            # the ZADD also has the job RQ enqueued before it, on whichever connection.
            pipe.wait(settings.redis_min_replicas, settings.redis_min_replicas_timeout_ms)
        replies = pipe.execute()
    if settings.redis_min_replicas and replies[-1] < settings.redis_min_replicas:
        raise NotReplicated(
            f"the job store has not confirmed the job on REDIS_MIN_REPLICAS={settings.redis_min_replicas} "
            f"replica(s) within {settings.redis_min_replicas_timeout_ms} ms, so it is not accepted"
        )


def enqueue_render_once(
    connection: Redis, settings: Settings, spec: GeneratorSpec, job_id: str, queue_name: str | None = None
) -> bool:
    """Enqueue a render under ``job_id`` unless a job with that id exists; True when this call enqueued it."""
    try:
        enqueue_render(connection, settings, spec, queue_name, job_id=job_id)
    except DuplicateJobError:
        if settings.redis_min_replicas:
            # An earlier try may have enqueued it and then missed its replicas: confirm before saying it exists.
            mark_inflight(connection, settings, job_id)
        return False
    return True


def is_job_id(job_id: str) -> bool:
    """Whether ``job_id`` has the shape of one of our job ids."""
    return bool(_JOB_ID.match(job_id))


def read_states(connection: Redis, job_ids: list[str]) -> dict[str, str | None]:
    """The RQ status of each job in one round trip; None for a job that no longer exists."""
    with connection.pipeline(transaction=False) as pipeline:
        for job_id in job_ids:
            pipeline.hget(Job.key_for(job_id), "status")
        replies = pipeline.execute()
    return {job_id: reply.decode() if reply else None for job_id, reply in zip(job_ids, replies, strict=True)}


def stored_result(connection: Redis, job: Job) -> results.ResultDescription | None:
    """The description of a finished job's file, or None once the file is gone."""
    result = latest_result(job)
    description = result.return_value if result else None
    if not isinstance(description, dict) or not connection.exists(str(description.get("key", ""))):
        return None
    return description  # type: ignore[return-value]


def queue_depth(connection: Redis, settings: Settings) -> int:
    """How many jobs wait in the queues of every served generator."""
    return sum(queue_depths(connection, generator_queue_names(settings)).values())


def active_flags(connection: Redis, job_ids: Sequence[str]) -> list[bool | None]:
    """For each id, whether its job is still to end: False once it has ended, None if there is no such job."""
    current = read_states(connection, list(job_ids))
    return [None if current[job_id] is None else current[job_id] not in states.TERMINAL for job_id in job_ids]


def cancel(connection: Redis, job: Job) -> Job:
    """Cancel a waiting job, or ask the worker running it to stop; JobAlreadyEnded if it has ended."""
    status = job.get_status()
    if status in states.TERMINAL:
        raise JobAlreadyEnded(job.id, status.value)
    # Set first: a worker that dequeues the job in the meantime stops at its first stage.
    connection.set(keys.cancel(job.id), "1", ex=keys.CANCEL_TTL)
    if status != JobStatus.STARTED:
        with contextlib.suppress(InvalidJobOperation):  # canceled by a concurrent request
            job.cancel()
        tasks.announce(job)
        return fetch(connection, job.id)
    # Forking RQ workers kill their work horse on this; ours stop cooperatively at the next stage.
    # InvalidJobOperation: it ended or was requeued meanwhile; the cancel flag still applies.
    with contextlib.suppress(InvalidJobOperation):
        send_stop_job_command(connection, job.id, serializer=JsonSerializer)
    return _wait_until_ended(connection, job)


def _wait_until_ended(connection: Redis, job: Job) -> Job:
    pubsub = connection.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(keys.events(job.id))
    try:
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while True:
            current = fetch(connection, job.id)
            if current.get_status(refresh=False) in states.TERMINAL or time.monotonic() >= deadline:
                return current
            pubsub.get_message(timeout=0.1)
    finally:
        pubsub.close()


def fetch(connection: Redis, job_id: str) -> Job:
    """The job with ``job_id``; JobNotFound if the id is malformed, unknown or expired."""
    if not is_job_id(job_id):
        raise JobNotFound(job_id)
    try:
        job = cast(PlotJob, PlotJob.fetch(job_id, connection=connection, serializer=JsonSerializer))
    except NoSuchJobError:
        raise JobNotFound(job_id) from None
    if job.unreadable is not None:
        raise UnreadableJob(job_id, job.unreadable)
    return job


def latest_result(job: Job) -> Result | None:
    """The job's latest RQ result, or None when it has none or its entry cannot be read."""
    try:
        return job.latest_result()
    except RESULT_PARSE_ERRORS:
        # A hand-written stream entry: RQ's parser raises on its fields; it is no result of ours.
        return None


def workers_alive(connection: Redis) -> int:
    """How many workers are registered and still heartbeating (their key has not expired)."""
    return len(Worker.all_keys(connection=connection))


def submitted_spec(job: Job) -> dict[str, Any]:
    """The spec a job was given, as plain JSON data: data stored apart is read back inline (DataExpired once gone)."""
    try:
        args = job.args
    except DeserializationError:
        raise UnreadableJob(job.id, unreadable_data_reason(job.data)) from None
    spec = args[1] if isinstance(args, list | tuple) and len(args) > 1 else {}
    if not isinstance(spec, dict):
        return {}
    document = dict(spec)
    reference = args[DATA_ARGUMENT] if len(args) > DATA_ARGUMENT else None
    if data.is_reference(reference):
        try:
            stored = data.load(job.connection, cast(data.DataReference, reference))
        except data.UnreadableData as error:
            raise UnreadableJob(job.id, f"its stored data cannot be read: {error}") from None
        arrays = [array_as_json(array) for array in stored]
        try:
            document = dict(attach_arrays(document, arrays))
        except KeyError as error:
            raise UnreadableJob(job.id, f"its spec names data it does not hold: {error}") from None
    name = args[0] if args else None
    if isinstance(name, str) and name != DEFAULT_GENERATOR:
        # Resubmitting the document as it is asks for the same generator.
        document = {"generator": name, **document}
    return document


def job_generator(job: Job) -> str:
    """The name of the generator a job renders with (as the task was given it)."""
    try:
        args = job.args
    except DeserializationError:
        raise UnreadableJob(job.id, unreadable_data_reason(job.data)) from None
    name = args[0] if isinstance(args, list | tuple) and args else None
    return name if isinstance(name, str) and name else "unknown"


def job_description(generator_name: str) -> str:
    """RQ's description of our jobs: the generator's name, never user text (monitoring tools render it)."""
    return f"plotjobs.{generator_name}"


def result_file(connection: Redis, job: Job) -> tuple[bytes, results.ResultDescription]:
    """The rendered bytes of a finished job and their description."""
    status = job.get_status(refresh=False)
    if status != JobStatus.FINISHED:
        raise ResultNotReady(job.id, status.value if status else "unknown")
    result = latest_result(job)
    description = result.return_value if result else None
    if not isinstance(description, dict):
        raise ResultExpired(job.id)
    data = results.load(connection, description)  # type: ignore[arg-type]
    if data is None:
        raise ResultExpired(job.id)
    return data, description  # type: ignore[return-value]


def queue_depths(connection: Redis, names: tuple[str, ...]) -> dict[str, int]:
    """How many jobs wait in each named queue, read in one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(queue(connection, name).key)
        return {name: int(length) for name, length in zip(names, pipe.execute(), strict=True)}


def worker_heartbeats(connection: Redis) -> list[dict[str, Any]]:
    """Every registered RQ worker with its queues, state and seconds since its last heartbeat.

    RQ keeps a worker's key alive only while it heartbeats, so a worker that died
    vanishes from this list once its key expires.
    """
    now = dt.datetime.now(dt.UTC)
    described = []
    for key in Worker.all_keys(connection=connection):
        try:
            worker = Worker.find_by_key(key, connection=connection, serializer=JsonSerializer)
        except RQ_PARSE_ERRORS:
            continue  # a worker hash written by hand is no worker of ours
        if worker is None:
            continue
        heartbeat = worker.last_heartbeat
        if heartbeat is not None and heartbeat.tzinfo is None:
            heartbeat = heartbeat.replace(tzinfo=dt.UTC)
        described.append(
            {
                "name": worker.name,
                "hostname": worker.hostname,
                "pid": worker.pid,
                "state": str(worker.get_state()),
                "queues": worker.queue_names(),
                "current_job": worker.get_current_job_id(),
                "last_heartbeat": heartbeat.isoformat() if heartbeat else None,
                "seconds_since_heartbeat": round((now - heartbeat).total_seconds(), 1) if heartbeat else None,
            }
        )
    return sorted(described, key=lambda item: item["name"])
