"""The RQ side of the mounted rq-dashboard: jobs, queues and workers read so hostile records show, not fail.

rq-dashboard looks these classes up as module globals of ``rq_dashboard.web``;
``read_through_plotjobs()`` points them at ours. See docs/operations.md.
"""

from __future__ import annotations

from typing import Any, cast

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchGroupError, NoSuchJobError
from rq.executions import Execution
from rq.job import Job
from rq.registry import BaseRegistry
from rq.timeouts import BaseDeathPenalty
from rq.worker import BaseWorker

from plotjobs.errors import UnknownPage, UnreadableJob
from plotjobs.queue import jobs
from plotjobs.queue.serialization import JsonSerializer

# RQ refuses an action on a job in a state that does not allow it (the web answers 409).
ACTION_REFUSED = InvalidJobOperation

# What RQ raises reading a worker or execution hash written by hand (bad numbers, dates, text).
RECORD_ERRORS = (NoSuchGroupError, ValueError, TypeError, KeyError, OverflowError)


class DashboardJob(jobs.PlotJob):
    """A job as the dashboard reads it: always JSON, an unreadable record refused or marked, never a 500."""

    @classmethod
    def fetch(cls, id: str, connection: Redis | None = None, serializer: Any = None) -> DashboardJob:
        """The job ``id``; UnreadableJob (409) when its record cannot be read."""
        job = cls.fetch_marked(id, connection)
        if job.unreadable is not None:
            raise UnreadableJob(id, job.unreadable)
        return job

    @classmethod
    def fetch_marked(cls, id: str, connection: Redis | None) -> DashboardJob:
        """The job ``id`` even when its record cannot be read; then its description says why."""
        job = super().fetch(id, connection=connection, serializer=JsonSerializer)
        assert isinstance(job, DashboardJob)
        if job.unreadable is not None:
            # What restore parsed before it stopped is plain text and dates; the rest keeps RQ's defaults.
            job.description = f"unreadable job: {job.unreadable}"
        return job

    def get_meta(self, refresh: bool = True) -> dict[str, Any]:
        """The job's meta; a note in its place when it is not a JSON object."""
        try:
            meta = super().get_meta(refresh)
        except ValueError:
            meta = None
        return meta if isinstance(meta, dict) and "unserialized" not in meta else {"unreadable": "meta is not JSON"}

    @property
    def dependency_ids(self) -> list[str]:
        """None: plotjobs' jobs never depend on others, and rq-dashboard cannot show rq 3's dependency ids."""
        return []

    def get_call_string(self) -> str | None:
        """The call, as RQ writes it, when the job's data is a call; else why it cannot be shown."""
        if self.unreadable is not None:
            return f"unreadable: {self.unreadable}"
        try:
            func_name, args, kwargs = self.func_name, self.args, self.kwargs
        except DeserializationError:
            return f"unreadable: {jobs.unreadable_data_reason(self.data)}"
        if not (isinstance(func_name, str) and isinstance(args, list | tuple) and isinstance(kwargs, dict)):
            return "unreadable: its data is not a call"
        return super().get_call_string()


class DashboardQueue(Queue):
    """RQ's queue, whose listing leaves out names that are no queue key."""

    job_class = DashboardJob

    @classmethod
    def all(
        cls,
        connection: Redis,
        job_class: type[Job] | None = None,
        serializer: Any = None,
        death_penalty_class: type[BaseDeathPenalty] | None = None,
    ) -> list[Queue]:
        """Every registered queue whose key can be read."""
        queues: list[Queue] = []
        for key in _members(connection.smembers(cls.redis_queues_keys)):
            try:
                queues.append(
                    cls.from_queue_key(
                        key.decode(), connection=connection, job_class=DashboardJob, serializer=JsonSerializer
                    )
                )
            except ValueError:
                continue  # not a queue key (or not text): no queue of ours
        return queues

    def compact(self) -> None:
        """RQ's compaction (keep the members that name a job, in order), which reads members as bytes.

        RQ's own stops at a member that is not text, leaving the rest of the queue in a key no one reads.
        """
        parked = f"{self.redis_queue_namespace_prefix}_compact:{jobs.new_job_id()}"
        if not self.connection.exists(self.key):
            return
        self.connection.rename(self.key, parked)
        while (member := cast(bytes | None, self.connection.lpop(parked))) is not None:
            job_id = member.decode(errors="replace")
            if jobs.is_job_id(job_id) and self.connection.exists(self.job_class.key_for(job_id)):
                self.connection.rpush(self.key, member)


class DashboardWorker(Worker):
    """RQ's worker, whose listing leaves out hashes that cannot be read and shows a job it can."""

    @classmethod
    def all(cls, connection: Redis | None = None, **kwargs: Any) -> list[BaseWorker]:  # type: ignore[override]
        """Every registered worker whose hash can be read."""
        assert connection is not None
        workers: list[BaseWorker] = []
        for key in cls.all_keys(connection=connection):
            try:
                worker = cls.find_by_key(
                    key,
                    connection=connection,
                    job_class=DashboardJob,
                    queue_class=DashboardQueue,
                    serializer=JsonSerializer,
                )
            except RECORD_ERRORS:
                continue
            if worker is not None:
                workers.append(worker)
        return workers

    def get_current_job(self) -> DashboardJob | None:
        """The job of one of the worker's executions, marked if unreadable; None if idle or none can be read."""
        try:
            execution: Execution | None = self.execution
        except RECORD_ERRORS:
            return None
        if execution is None or not jobs.is_job_id(execution.job_id):
            return None
        try:
            return DashboardJob.fetch_marked(execution.job_id, self.connection)
        except NoSuchJobError:
            return None


def _registry(queue_name: str, registry_name: str, connection: Redis) -> BaseRegistry:
    queue = jobs.queue(connection, queue_name)
    registries: dict[str, BaseRegistry] = {
        "started": queue.started_job_registry,
        "finished": queue.finished_job_registry,
        "failed": queue.failed_job_registry,
        "deferred": queue.deferred_job_registry,
        "scheduled": queue.scheduled_job_registry,
        "canceled": queue.canceled_job_registry,
    }
    if registry_name not in registries:
        raise UnknownPage(f"no registry {registry_name!r}")
    return registries[registry_name]


def _members(reply: Any) -> list[bytes]:
    """A Redis reply of members, as the bytes they are (our client does not decode replies)."""
    return list(reply)


def _job_ids(members: list[bytes]) -> list[str]:
    """The job ids in a queue's or registry's members (started ones are job:execution), once each."""
    ids: dict[str, None] = {}
    for member in members:
        try:
            ids[member.decode().partition(":")[0]] = None
        except UnicodeDecodeError:
            continue  # not text: names no job
    return [job_id for job_id in ids if jobs.is_job_id(job_id)]


def registry_page(  # noqa: PLR0917  # rq-dashboard calls it with these six, positionally
    queue_name: str, registry_name: str, offset: int, per_page: int, order: str, connection: Redis
) -> tuple[int, list[dict[str, Any]]]:
    """rq-dashboard's page of a queue or registry: (how many it holds, its jobs), unreadable ones marked."""
    import rq_dashboard.web

    if registry_name == "queued":
        key = jobs.queue(connection, queue_name).key
        total = int(connection.llen(key))
    else:
        key = _registry(queue_name, registry_name, connection).key
        total = int(connection.zcard(key))
    start = max(0, total - offset - per_page) if order == "dsc" else offset
    end = (total - offset if order == "dsc" else offset + per_page) - 1
    members = _members(
        connection.lrange(key, start, end) if registry_name == "queued" else connection.zrange(key, start, end)
    )
    if order == "dsc":
        members.reverse()
    listed = []
    for job_id in _job_ids(members):
        try:
            listed.append(rq_dashboard.web.serialize_job(DashboardJob.fetch_marked(job_id, connection)))
        except NoSuchJobError:
            continue  # expired, or a member that names no job
    return total, listed


# A bulk action leaves these jobs as they are and carries on with the others.
_SKIPPED_IN_BULK = (UnreadableJob, NoSuchJobError, NoSuchGroupError, InvalidJobOperation, *RECORD_ERRORS)


def requeue_all(connection: Redis, queue_name: str) -> int:
    """Requeue every failed job of the queue that can be read (the others stay where they are); how many."""
    count = 0
    for job_id in _job_ids(_members(connection.zrange(_registry(queue_name, "failed", connection).key, 0, -1))):
        try:
            DashboardJob.fetch(job_id, connection=connection).requeue()
        except _SKIPPED_IN_BULK:
            continue
        count += 1
    return count


def empty(connection: Redis, queue_name: str, registry_name: str) -> None:
    """Delete every job of a queue or registry that can be read; unreadable ones stay, for an operator to see."""
    if registry_name == "queued":
        jobs.queue(connection, queue_name).empty()  # type: ignore[no-untyped-call]
        return
    registry = _registry(queue_name, registry_name, connection)
    for job_id in _job_ids(_members(connection.zrange(registry.key, 0, -1))):
        try:
            DashboardJob.fetch(job_id, connection=connection).delete()
        except NoSuchJobError:
            # RQ's own cleanup takes a started entry off once its heartbeat lapses; it cannot remove one by id.
            if registry_name != "started":
                registry.remove(job_id)
        except _SKIPPED_IN_BULK:
            continue


def read_through_plotjobs() -> None:
    """Have rq-dashboard read jobs, queues and workers through the classes above (its module globals)."""
    import rq_dashboard.web

    rq_dashboard.web.config.serializer = JsonSerializer
    rq_dashboard.web.Job = DashboardJob
    rq_dashboard.web.Queue = DashboardQueue
    rq_dashboard.web.Worker = DashboardWorker
    rq_dashboard.web.get_queue_registry_jobs_count = registry_page
