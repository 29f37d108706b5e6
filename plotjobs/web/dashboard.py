"""rq-dashboard mounted at /rq: behind HTTP Basic auth, off without credentials, hardened.

rq-dashboard 0.9.0 ships no authentication in its blueprint, renders job fields into its
pages without escaping (a stored XSS), requeues every failed job on a plain GET and
deletes jobs on request. Mounted here it answers only to the configured credentials,
its JSON is escaped before its templates see it, every action that changes state needs
a same-origin POST, and deleting is off unless DASHBOARD_ALLOW_DELETE is set.

It also reads records anyone with access to Redis may have written. rq-dashboard parses
them with RQ and answers 500 on the first field RQ cannot parse, hiding every honest record
listed beside it. Here it reads jobs, queues and workers through the classes below: a job
that cannot be read is listed marked as unreadable, refused with 409 when asked for by id,
and skipped by the bulk actions; a queue or worker that cannot be read is left out.
"""

from __future__ import annotations

import hmac
import html
import json
from collections.abc import Callable
from typing import Any, cast

from flask import Flask, Response, jsonify, request
from redis import Redis
from rq import Queue, Worker
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchGroupError, NoSuchJobError
from rq.executions import Execution
from rq.job import Job
from rq.registry import BaseRegistry
from rq.timeouts import BaseDeathPenalty
from rq.worker import BaseWorker

from plotjobs.config import Settings
from plotjobs.errors import (
    ActionForbidden,
    AuthenticationRequired,
    JobActionRefused,
    MethodNotAllowed,
    UnknownPage,
    UnreadableJob,
)
from plotjobs.queue import jobs
from plotjobs.queue.rq_internals import harden_rq
from plotjobs.queue.serialization import JsonSerializer
from plotjobs.web.extension import current_redis, current_settings

URL_PREFIX = "/rq"
BLUEPRINT = "rq_dashboard"

# Every view of rq-dashboard that changes state; it accepts GET for the first one.
STATE_CHANGING = frozenset({"requeue_all", "requeue_job_view", "delete_job_view", "empty_queue", "compact_queue"})
DELETING = frozenset({"delete_job_view", "empty_queue"})

# The JSON views whose strings the dashboard's templates insert as raw HTML, with the keys
# those templates already escape themselves (escaping them again would show entities).
ESCAPED_JSON = {
    "job_info": frozenset(),
    "list_jobs": frozenset({"description", "exc_info"}),
    "list_workers": frozenset({"description"}),
    "list_queues": frozenset(),
}


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _authenticate(settings: Settings) -> None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
        raise AuthenticationRequired("the dashboard needs the operator's username and password")
    # Both comparisons always run, so the time taken does not tell which one failed.
    username_ok = _same(auth.username, settings.dashboard_username or "")
    password_ok = _same(auth.password, settings.dashboard_password or "")
    if not (username_ok and password_ok):
        raise AuthenticationRequired("wrong username or password for the dashboard")


def _guard() -> None:
    """Runs before every dashboard view, in place of rq-dashboard's own connection hook."""
    settings = current_settings()
    _authenticate(settings)
    if (request.view_args or {}).get("instance_number", 0) != 0:
        raise UnknownPage("this dashboard shows one Redis: instance 0")
    action = (request.endpoint or "").partition(".")[2]
    if action in STATE_CHANGING:
        if request.method != "POST":
            raise MethodNotAllowed(f"{action} changes state: use POST")
        # A cross-site form cannot set this header; rq-dashboard's own pages (jQuery) always do.
        if request.headers.get("X-Requested-With") != "XMLHttpRequest":
            raise ActionForbidden("dashboard actions must come from the dashboard's own page")
        if action in DELETING and not settings.dashboard_allow_delete:
            raise ActionForbidden("deleting jobs from the dashboard is turned off (DASHBOARD_ALLOW_DELETE)")


def _escaped(value: Any, keep: frozenset[str]) -> Any:
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, list):
        return [_escaped(item, keep) for item in value]
    if isinstance(value, dict):
        return {key: item if key in keep else _escaped(item, keep) for key, item in value.items()}
    return value


# rq-dashboard's pages run inline scripts and compile underscore templates (new Function);
# they get their own policy, still limited to this origin, instead of our pages' stricter one.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


def _harden(response: Response) -> Response:
    # No framing (its buttons cannot be clickjacked), no caching of job data, no referrer leaks.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DASHBOARD_CSP
    return response


def _escape_json(response: Response) -> Response:
    keep = ESCAPED_JSON.get((request.endpoint or "").partition(".")[2])
    if keep is not None and response.status_code == 200 and response.is_json:
        response.set_data(json.dumps(_escaped(response.get_json(), keep)))
    return response


def _known_job_first(view: Callable[..., Any]) -> Callable[..., Any]:
    def checked(**view_args: Any) -> Any:
        # Our fetch refuses malformed ids (404) and jobs whose record cannot be read (409).
        jobs.fetch(current_redis(), view_args["job_id"])
        return view(**view_args)

    return checked


# What RQ raises reading a worker or execution hash written by hand (bad numbers, dates, text).
_RECORD_ERRORS = (ValueError, TypeError, KeyError, OverflowError)


def _job_action(view: Callable[..., Any]) -> Callable[..., Any]:
    def acted(**view_args: Any) -> Any:
        try:
            return view(**view_args)
        except InvalidJobOperation as error:
            raise JobActionRefused(view_args["job_id"], str(error)) from None
        except (NoSuchGroupError, *_RECORD_ERRORS) as error:
            # Acting on a job, RQ reads its execution and group records too; any may be hand-written.
            raise UnreadableJob(view_args["job_id"], f"{type(error).__name__} in a record RQ reads with it") from None

    return acted


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
            except _RECORD_ERRORS:
                continue
            if worker is not None:
                workers.append(worker)
        return workers

    def get_current_job(self) -> DashboardJob | None:
        """The job of one of the worker's executions, marked if unreadable; None if idle or none can be read."""
        try:
            execution: Execution | None = self.execution
        except _RECORD_ERRORS:
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


def registry_page(
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
_SKIPPED_IN_BULK = (UnreadableJob, NoSuchJobError, NoSuchGroupError, InvalidJobOperation, *_RECORD_ERRORS)


def _requeue_all(queue_name: str) -> Response:
    """Requeue every failed job of the queue that can be read; the others stay where they are."""
    connection = current_redis()
    count = 0
    for job_id in _job_ids(_members(connection.zrange(_registry(queue_name, "failed", connection).key, 0, -1))):
        try:
            DashboardJob.fetch(job_id, connection=connection).requeue()
        except _SKIPPED_IN_BULK:
            continue
        count += 1
    return jsonify(status="OK", count=count)


def _empty_queue(queue_name: str, registry_name: str) -> Response:
    """Delete every job of a queue or registry that can be read; unreadable ones stay, for an operator to see."""
    connection = current_redis()
    if registry_name == "queued":
        jobs.queue(connection, queue_name).empty()  # type: ignore[no-untyped-call]
        return jsonify(status="OK")
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
    return jsonify(status="OK")


def _read_through_plotjobs() -> None:
    """Have rq-dashboard read jobs, queues and workers through the classes above (its module globals)."""
    import rq_dashboard.web

    rq_dashboard.web.config.serializer = JsonSerializer
    rq_dashboard.web.Job = DashboardJob
    rq_dashboard.web.Queue = DashboardQueue
    rq_dashboard.web.Worker = DashboardWorker
    rq_dashboard.web.get_queue_registry_jobs_count = registry_page


def _display_name(settings: Settings) -> str:
    if settings.redis_sentinels:
        return f"sentinel master {settings.redis_sentinel_master}"
    return settings.redis_url or "redis://localhost:6379/0"


def init_app(app: Flask, settings: Settings, connection: Redis) -> None:
    """Mount rq-dashboard at /rq when DASHBOARD_USERNAME and DASHBOARD_PASSWORD are set; else nothing."""
    if not settings.dashboard_enabled:
        return
    import rq_dashboard
    import rq_dashboard.web

    # rq-dashboard passes its serializer setting in some places only; harden_rq() covers the
    # others (they fall back to RQ's default serializer), its classes are replaced by ours.
    harden_rq()
    _read_through_plotjobs()
    app.config.update(
        RQ_DASHBOARD_REDIS_URL=(_display_name(settings),),
        RQ_DASHBOARD_DISABLE_DELETE=not settings.dashboard_allow_delete,
        RQ_DASHBOARD_SHOW_FULL_ARGS=False,
    )
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # The blueprint's own hook builds a new client from the URL on every request; the
    # dashboard uses the app's client instead, and the guard takes the hook's place.
    app.redis_conn = connection  # type: ignore[attr-defined]
    app.before_request_funcs[BLUEPRINT] = [_guard]
    app.after_request_funcs.setdefault(BLUEPRINT, []).extend([_escape_json, _harden])
    for endpoint in ("job_view", "job_info", "requeue_job_view", "delete_job_view"):
        name = f"{BLUEPRINT}.{endpoint}"
        app.view_functions[name] = _known_job_first(app.view_functions[name])
    for endpoint in ("requeue_job_view", "delete_job_view"):
        name = f"{BLUEPRINT}.{endpoint}"
        app.view_functions[name] = _job_action(app.view_functions[name])
    # Its own versions stop at the first job they cannot read (a 500), leaving the rest undone.
    app.view_functions[f"{BLUEPRINT}.requeue_all"] = _requeue_all
    app.view_functions[f"{BLUEPRINT}.empty_queue"] = _empty_queue
