"""rq-dashboard at /rq on a real Redis: credentials, escaping, same-origin actions, and hostile records.

The hostile tests write into Redis what an attacker with access to it could: pickles that
would run code, invalid JSON, zip bombs and garbage in every field RQ parses. Every view we
mount must then answer without a 5xx and without running anything, and still show the
honest records planted beside the hostile ones.
"""

from __future__ import annotations

import base64
import importlib
import json
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq.job import Job, JobStatus
from rq.results import Result
from rq.worker import Worker

from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.queue.serialization import MAX_FIELD_BYTES, JsonSerializer
from plotjobs.web import create_app
from plotjobs.worker.render_worker import build_worker
from tests.support.processes import PROJECT_ROOT
from tests.unit.web.test_operations import run_jobs, submit

USER, PASSWORD = "ops", "s3cret-pw"
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.body.dataset.pwned=1">'
XHR = {"X-Requested-With": "XMLHttpRequest"}


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def dashboard_settings(settings: Settings) -> Settings:
    return settings.replace(dashboard_username=USER, dashboard_password=PASSWORD)


@pytest.fixture
def dashboard_app(dashboard_settings: Settings, redis_connection: Redis) -> Flask:
    app = create_app(dashboard_settings, redis=redis_connection)
    app.testing = True
    return app


@pytest.fixture
def dashboard(dashboard_app: Flask) -> FlaskClient:
    return dashboard_app.test_client()


def failed_job_with_html(connection: Redis, settings: Settings) -> str:
    """A job that fails with markup in its exception text (the worker refuses its function)."""
    job = jobs.queue(connection, "default").enqueue(
        f"plotjobs.queue.tasks.{HOSTILE}", description=jobs.job_description("chart")
    )
    run_jobs(connection, settings)
    assert job.get_status(refresh=True) == "failed"
    return job.id


# --- credentials, escaping, actions -----------------------------------------------------------


def test_rq_dashboard_imports_with_the_pinned_six() -> None:
    assert importlib.import_module("rq_dashboard.web").blueprint.name == "rq_dashboard"
    pins = (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("six==") for line in pins)


def test_dashboard_is_off_without_credentials(client: FlaskClient) -> None:
    assert client.get("/rq/").status_code == 404
    assert client.get("/rq/0/data/queues.json").status_code == 404


@pytest.mark.parametrize("headers", [{}, basic(password="wrong"), basic(user="admin"), {"Authorization": "Bearer x"}])
def test_dashboard_refuses_missing_or_wrong_credentials(dashboard: FlaskClient, headers: dict[str, str]) -> None:
    for path in ("/rq/", "/rq/0/data/queues.json", "/rq/static/css/main.css"):
        response = dashboard.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_dashboard_lists_our_queues_and_a_finished_job(
    dashboard: FlaskClient, redis_connection: Redis, dashboard_settings: Settings
) -> None:
    job_id = submit(dashboard)
    run_jobs(redis_connection, dashboard_settings)
    page = dashboard.get("/rq/", headers=basic())
    assert page.status_code == 200 and "RQ dashboard" in page.text
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    queues = dashboard.get("/rq/0/data/queues.json", headers=basic()).get_json()["queues"]
    default = next(queue for queue in queues if queue["name"] == "default")
    assert default["finished_job_registry_count"] == 1
    listed = dashboard.get("/rq/0/data/jobs/default/finished/8/asc/1.json", headers=basic()).get_json()
    assert [job["id"] for job in listed["jobs"]] == [job_id]
    assert listed["jobs"][0]["description"] == jobs.job_description("chart")
    assert dashboard.get(f"/rq/0/view/job/{job_id}", headers=basic()).status_code == 200
    assert dashboard.get(f"/rq/0/data/job/{job_id}.json", headers=basic()).get_json()["status"] == "finished"
    assert dashboard.get("/rq/0/view/job/not-a-job", headers=basic()).status_code == 404
    assert dashboard.get("/rq/1/view/queues", headers=basic()).status_code == 404


# The policy docs/operations.md gives the dashboard: this origin only, plus what rq-dashboard's
# own pages need (inline scripts, underscore templates compiled with new Function, style
# attributes, Bootstrap's data: images).
DASHBOARD_POLICY = {
    "default-src": {"'self'"},
    "script-src": {"'self'", "'unsafe-inline'", "'unsafe-eval'"},
    "style-src": {"'self'", "'unsafe-inline'"},
    "img-src": {"'self'", "data:"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "frame-ancestors": {"'none'"},
}


def policy_of(header: str) -> dict[str, set[str]]:
    """A Content-Security-Policy header as {directive: its sources}."""
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: set(sources) for name, *sources in directives}


@pytest.mark.parametrize("path", ["/rq/", "/rq/0/view/workers", "/rq/0/view/jobs/default/failed/8/asc/1",
                                  "/rq/0/data/queues.json", "/rq/static/js/jquery-3.5.1.min.js",
                                  "/rq/1/view/queues"])  # fmt: skip
def test_dashboard_responses_carry_the_dashboards_own_policy(dashboard: FlaskClient, path: str) -> None:
    for headers in (basic(), {}):
        with dashboard.get(path, headers=headers) as response:
            assert response.status_code in {200, 401, 404}, (path, response.status_code)
            assert policy_of(response.headers["Content-Security-Policy"]) == DASHBOARD_POLICY, (path, headers)
            assert response.headers["Referrer-Policy"] == "same-origin"
            assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_job_page_of_the_dashboard_carries_its_policy(dashboard: FlaskClient) -> None:
    job_id = submit(dashboard)
    page = dashboard.get(f"/rq/0/view/job/{job_id}", headers=basic())
    assert page.status_code == 200
    assert policy_of(page.headers["Content-Security-Policy"]) == DASHBOARD_POLICY


@pytest.mark.parametrize("path", ["/", "/static/js/index.js", "/api/workers", "/rqx"])
def test_the_dashboards_policy_stays_on_the_dashboard(dashboard: FlaskClient, path: str) -> None:
    with dashboard.get(path, headers=basic()) as response:
        policy = policy_of(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ({"'none'"} if path.startswith("/api/") else {"'self'"})
    sources = set().union(*policy.values())
    assert not sources & {"'unsafe-inline'", "'unsafe-eval'", "data:"}, policy


def test_markup_in_job_fields_reaches_the_dashboard_escaped(
    dashboard: FlaskClient, redis_connection: Redis, dashboard_settings: Settings
) -> None:
    job_id = failed_job_with_html(redis_connection, dashboard_settings)
    detail = dashboard.get(f"/rq/0/data/job/{job_id}.json", headers=basic())
    assert "<script>" not in detail.text and "<img" not in detail.text
    assert "&lt;script&gt;" in detail.get_json()["exc_info"]
    assert "&lt;img src=x onerror=" in detail.get_json()["exc_info"]
    # The job list's template escapes exc_info itself: it gets the raw text, once.
    listed = dashboard.get("/rq/0/data/jobs/default/failed/8/asc/1.json", headers=basic()).get_json()
    assert "<script>" in listed["jobs"][0]["exc_info"]


def test_state_changing_get_is_refused(
    dashboard: FlaskClient, redis_connection: Redis, dashboard_settings: Settings
) -> None:
    job_id = failed_job_with_html(redis_connection, dashboard_settings)
    refused = dashboard.get("/rq/requeue/default", headers=basic())
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
    assert jobs.fetch(redis_connection, job_id).get_status() == "failed"
    assert dashboard.post("/rq/requeue/default", headers=basic()).status_code == 403
    assert jobs.fetch(redis_connection, job_id).get_status() == "failed"
    requeued = dashboard.post("/rq/requeue/default", headers={**basic(), **XHR})
    assert requeued.status_code == 200 and requeued.get_json()["count"] == 1
    assert jobs.fetch(redis_connection, job_id).get_status() == "queued"


def test_delete_and_empty_are_off_by_default(
    dashboard: FlaskClient, redis_connection: Redis, dashboard_settings: Settings
) -> None:
    job_id = submit(dashboard)
    for path in (f"/rq/job/{job_id}/delete", "/rq/queue/default/queued/empty"):
        response = dashboard.post(path, headers={**basic(), **XHR})
        assert response.status_code == 403 and "DASHBOARD_ALLOW_DELETE" in response.get_json()["message"]
    assert jobs.fetch(redis_connection, job_id).get_status() == "queued"


def test_delete_works_when_allowed(dashboard_settings: Settings, redis_connection: Redis) -> None:
    app = create_app(dashboard_settings.replace(dashboard_allow_delete=True), redis=redis_connection)
    client = app.test_client()
    job_id = submit(client)
    assert client.post(f"/rq/job/{job_id}/delete", headers={**basic(), **XHR}).get_json()["status"] == "OK"
    assert client.get(f"/api/jobs/{job_id}").status_code == 404


def test_the_running_jobs_call_string_reaches_the_workers_page_escaped(
    dashboard: FlaskClient, redis_connection: Redis, dashboard_settings: Settings
) -> None:
    job_id = submit(dashboard, spec={"title": HOSTILE})
    worker = build_worker(redis_connection, dashboard_settings)
    worker.register_birth()
    worker.prepare_execution(jobs.fetch(redis_connection, job_id))
    try:
        (listed,) = dashboard.get("/rq/0/data/workers.json", headers=basic()).get_json()["workers"]
    finally:
        worker.register_death()
    assert listed["current_job"]["job_id"] == job_id
    assert "&lt;script&gt;" in listed["current_job"]["call_string"]
    assert "<script>" not in json.dumps(listed)


# --- hostile records ----------------------------------------------------------------------------

QUEUE = "default"
HONEST_ID = "00000000-0000-4000-8000-000000000001"
HOSTILE_ID = "00000000-0000-4000-8000-000000000002"
HONEST_WORKER = "honest-worker"
HOSTILE_WORKER = "hostile-worker"
REGISTRIES = ("queued", "started", "finished", "failed", "deferred", "scheduled", "canceled")
# Far in the future: no registry cleanup removes what the tests plant.
SCORE = 4_000_000_000


class Planted:
    """Pickles to a call that creates ``marker``: whoever unpickles it has run our code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return Path.touch, (self.marker,)


@cache
def zip_bomb() -> bytes:
    """A few kilobytes of zlib that expand past MAX_FIELD_BYTES."""
    return zlib.compress(b"0" * (MAX_FIELD_BYTES + 1), 9)


@dataclass(frozen=True)
class Payloads:
    """The hostile byte strings of one test, its pickle naming that test's marker file."""

    marker: Path

    @property
    def pickle(self) -> bytes:
        return pickle.dumps(Planted(self.marker), protocol=pickle.HIGHEST_PROTOCOL)


Value = Callable[[Payloads], bytes]
NOT_UTF8 = b"\xff\xfe\x00\x9c not text"

# Planted in every field; the kinds below only where a field is parsed as that kind.
UNIVERSAL: dict[str, Value] = {
    "pickle": lambda p: p.pickle,
    "not-utf8": lambda p: NOT_UTF8,
    "garbage": lambda p: b"12abc{not anything",
}
NUMBER: dict[str, Value] = {"huge-number": lambda p: b"9" * 5000, "infinite": lambda p: b"1e309"}
DATE: dict[str, Value] = {"bad-date": lambda p: b"2024-13-45T99:99:99Z", "epoch-number": lambda p: b"1700000000"}
JSON_SHAPES: dict[str, Value] = {
    "invalid-json": lambda p: b'{"unterminated": [',
    "json-object": lambda p: b'{"a": {"b": 1}}',
    "json-numbers": lambda p: b"[42, null]",
    "json-string": lambda p: b'"text"',
}


def compressed(value: Value) -> Value:
    return lambda p: zlib.compress(value(p))


def b64(value: Value) -> Value:
    return lambda p: base64.b64encode(value(p))


COMPRESSED_JSON: dict[str, Value] = {f"zlib-{name}": compressed(value) for name, value in JSON_SHAPES.items()} | {
    "zlib-pickle": lambda p: zlib.compress(p.pickle),
    "zip-bomb": lambda p: zip_bomb(),
    "zlib-foreign-call": lambda p: zlib.compress(b'["os.system", null, ["touch /tmp/pwned"], {}]'),
    "zlib-not-utf8": lambda p: zlib.compress(NOT_UTF8),
}

# Every field rq 3.0's Job.restore reads, with the kinds of value it parses it as.
JOB_FIELDS: dict[str, dict[str, Value]] = {
    "data": COMPRESSED_JSON | JSON_SHAPES,
    "meta": JSON_SHAPES | {"zip-bomb": lambda p: zip_bomb()},
    "result": JSON_SHAPES | {"zip-bomb": lambda p: zip_bomb()},
    "exc_info": COMPRESSED_JSON,
    "status": {"unknown-status": lambda p: b"exploded"},
    "created_at": DATE,
    "enqueued_at": DATE,
    "started_at": DATE,
    "ended_at": DATE,
    "last_heartbeat": DATE,
    "timeout": NUMBER,
    "result_ttl": NUMBER,
    "failure_ttl": NUMBER,
    "ttl": NUMBER,
    "description": {"markup": lambda p: HOSTILE.encode(), "zip-bomb": lambda p: zip_bomb()},
    "origin": {"other-queue": lambda p: b"../../elsewhere"},
    "worker_name": {},
    "group_id": {},
    "dependency_ids": JSON_SHAPES,
    "dependency_id": {"missing-job": lambda p: b"00000000-0000-4000-8000-00000000dead"},
    "allow_dependency_failures": NUMBER,
    "enqueue_at_front": NUMBER,
    "success_callback_name": {},
    "success_callback_timeout": NUMBER,
    "failure_callback_name": {},
    "failure_callback_timeout": NUMBER,
    "stopped_callback_name": {},
    "stopped_callback_timeout": NUMBER,
    "webhooks": JSON_SHAPES,
    "number_of_retries": NUMBER,
    "retries_left": NUMBER,
    "retry_intervals": JSON_SHAPES,
    "enqueue_at_front_on_retry": NUMBER,
    "repeats_left": NUMBER,
    "repeat_intervals": JSON_SHAPES,
    "rate_limit_key": {},
    "rate_limit_concurrency": NUMBER,
}


# The fields of a result stream entry (rq:results:<id>) that Result.restore parses.
RESULT_FIELDS: dict[str, dict[str, Value]] = {
    "return_value": {f"b64-{name}": b64(value) for name, value in (UNIVERSAL | JSON_SHAPES | COMPRESSED_JSON).items()}
    | {"not-base64": lambda p: b"%%%not base64%%%"},
    "exc_string": {f"b64-{name}": b64(value) for name, value in (UNIVERSAL | COMPRESSED_JSON).items()}
    | {"not-base64": lambda p: b"%%%not base64%%%"},
    "type": {"unknown-type": lambda p: b"99"},
    "worker_name": {},
    "execution_id": {},
    "execution_started_at": NUMBER,
    "execution_ended_at": NUMBER,
}

# The fields of a worker hash that Worker.refresh reads (rq 2's current_job included).
WORKER_FIELDS: dict[str, dict[str, Value]] = {
    "name": {},
    "hostname": {},
    "ip_address": {},
    "pid": NUMBER,
    "version": {},
    "python_version": {},
    "state": {"unknown-state": lambda p: b"exploded"},
    "last_heartbeat": DATE,
    "birth": DATE,
    "failed_job_count": NUMBER,
    "successful_job_count": NUMBER,
    "total_working_time": NUMBER,
    "queues": {"other-queues": lambda p: b",,../x,"},
    "current_job": {"job-id": lambda p: HOSTILE_ID.encode()},
}

# The fields of an execution hash (rq:execution:<job>:<execution>) that Execution.restore reads.
EXECUTION_FIELDS: dict[str, dict[str, Value]] = {
    "created_at": NUMBER,
    "last_heartbeat": NUMBER,
    "worker_name": {},
    "job_id": {},
}


@dataclass(frozen=True)
class Case:
    """One hostile value planted in one place."""

    where: str  # job, result, worker, execution, member
    field: str
    kind: str
    value: Value | None  # None: the field is removed

    @property
    def id(self) -> str:
        return f"{self.where}.{self.field}={self.kind}"


def _cases(where: str, fields: dict[str, dict[str, Value]], missing: bool = True) -> list[Case]:
    return [
        Case(where, field, kind, value)
        for field, kinds in fields.items()
        for kind, value in (UNIVERSAL | kinds | ({"missing": None} if missing else {})).items()  # type: ignore[operator]
    ]


# Registry and queue members that name no job of ours, or no job at all.
MEMBERS: dict[str, Value] = {
    "missing-job": lambda p: b"00000000-0000-4000-8000-00000000dead",
    "not-a-job-id": lambda p: HOSTILE.encode(),
    "path": lambda p: b"../../rq:worker:x",
    "not-utf8": lambda p: NOT_UTF8,
    "no-execution-part": lambda p: HONEST_ID.encode(),
    "empty": lambda p: b"",
}

CASES = (
    _cases("job", JOB_FIELDS)
    + _cases("result", RESULT_FIELDS)
    + _cases("worker", WORKER_FIELDS)
    + _cases("execution", EXECUTION_FIELDS)
    + [Case("execution", "member", kind, value) for kind, value in MEMBERS.items()]
    + [Case("member", registry, kind, value) for registry in REGISTRIES for kind, value in MEMBERS.items()]
    + [Case("member", "queues", kind, value) for kind, value in MEMBERS.items()]
)


def _honest_job(connection: Redis, job_id: str) -> Job:
    return jobs.queue(connection, QUEUE).enqueue(
        "plotjobs.queue.tasks.generate",
        "chart",
        {"kind": "line"},
        job_id=job_id,
        description=jobs.job_description("chart"),
        meta={"progress": 1.0, "stage": "done"},
        result_ttl=600,
    )


def _finish(job: Job) -> None:
    Result.create(job, Result.Type.SUCCESSFUL, ttl=600, return_value={"key": "plotjobs:result:x", "bytes": 1})
    job.set_status(JobStatus.FINISHED)


def _register_everywhere(connection: Redis, job_id: bytes) -> None:
    """Name ``job_id`` in the queue and in every registry, as the dashboard lists them."""
    connection.rpush(f"rq:queue:{QUEUE}", job_id)
    for registry in REGISTRIES[1:]:
        member = job_id + b":planted" if registry == "started" else job_id
        connection.zadd(f"rq:wip:{QUEUE}" if registry == "started" else f"rq:{registry}:{QUEUE}", {member: SCORE})


def _start(connection: Redis, name: str, job: Job) -> None:
    worker = Worker([jobs.queue(connection, QUEUE)], connection=connection, name=name, serializer=JsonSerializer)
    worker.register_birth()
    worker.prepare_execution(job)


def plant(connection: Redis, case: Case, payloads: Payloads) -> None:
    """An honest finished job and worker, and a hostile job and worker with ``case`` planted in them."""
    honest, hostile = _honest_job(connection, HONEST_ID), _honest_job(connection, HOSTILE_ID)
    _start(connection, HONEST_WORKER, honest)
    _start(connection, HOSTILE_WORKER, hostile)
    _finish(honest)
    _finish(hostile)
    _register_everywhere(connection, HONEST_ID.encode())
    _register_everywhere(connection, HOSTILE_ID.encode())
    value = None if case.value is None else case.value(payloads)
    if case.where == "job":
        _put(connection, Job.key_for(HOSTILE_ID), case.field, value)
    elif case.where == "result":
        stream = f"rq:results:{HOSTILE_ID}"
        (_, entry), *_ = connection.xrevrange(stream, count=1)
        entry = {key: item for key, item in entry.items() if key != case.field.encode()}
        connection.xadd(stream, entry if value is None else entry | {case.field.encode(): value})
    elif case.where == "worker":
        _put(connection, f"rq:worker:{HOSTILE_WORKER}", case.field, value)
    elif case.where == "execution" and case.field == "member":
        connection.sadd(f"rq:worker:{HOSTILE_WORKER}:executions", value or b"")
    elif case.where == "execution":
        (member,) = connection.smembers(f"rq:worker:{HOSTILE_WORKER}:executions")
        _put(connection, f"rq:execution:{member.decode()}", case.field, value)
    elif case.field == "queues":
        connection.sadd("rq:queues", b"rq:queue:" + (value or b""), value or b"")
    elif case.field == "queued":
        connection.rpush(f"rq:queue:{QUEUE}", value or b"")
    else:
        key = f"rq:wip:{QUEUE}" if case.field == "started" else f"rq:{case.field}:{QUEUE}"
        connection.zadd(key, {value or b"": SCORE})


def _put(connection: Redis, key: str, field: str, value: bytes | None) -> None:
    if value is None:
        connection.hdel(key, field)
    else:
        connection.hset(key, field, value)


@dataclass(frozen=True)
class View:
    """One rq-dashboard view we mount, and what it must still show of the honest records."""

    name: str
    path: str
    post: bool = False
    shows: Callable[[Any], bool] | None = None


def _lists_honest_job(body: Any) -> bool:
    return HONEST_ID in [job["id"] for job in body["jobs"]]


def _shows_honest_job(body: Any) -> bool:
    return body["id"] == HONEST_ID and body["status"] == "finished"


def _lists_honest_worker(body: Any) -> bool:
    workers = {worker["name"]: worker for worker in body["workers"]}
    return workers[HONEST_WORKER]["current_job"]["job_id"] == HONEST_ID


def _lists_our_queue(body: Any) -> bool:
    return QUEUE in [queue["name"] for queue in body["queues"]]


VIEWS = [
    View("queues_overview", "/rq/"),  # its other paths redirect here: instance 0 is the default
    View("workers_overview", "/rq/0/view/workers"),
    *[View(f"jobs_overview[{registry}]", f"/rq/0/view/jobs/{QUEUE}/{registry}/8/asc/1") for registry in REGISTRIES],
    View("job_view[hostile]", f"/rq/0/view/job/{HOSTILE_ID}"),
    View("job_view[honest]", f"/rq/0/view/job/{HONEST_ID}", shows=lambda body: True),
    View("job_info[hostile]", f"/rq/0/data/job/{HOSTILE_ID}.json"),
    View("job_info[honest]", f"/rq/0/data/job/{HONEST_ID}.json", shows=_shows_honest_job),
    View("list_queues", "/rq/0/data/queues.json", shows=_lists_our_queue),
    View("list_workers", "/rq/0/data/workers.json", shows=_lists_honest_worker),
    *[
        View(f"list_jobs[{registry}]", f"/rq/0/data/jobs/{QUEUE}/{registry}/8/asc/1.json", shows=_lists_honest_job)
        for registry in REGISTRIES
    ],
    View("requeue_job_view", f"/rq/job/{HOSTILE_ID}/requeue", post=True),
    View("requeue_all", f"/rq/requeue/{QUEUE}", post=True),
    View("delete_job_view", f"/rq/job/{HOSTILE_ID}/delete", post=True),
    *[View(f"empty_queue[{registry}]", f"/rq/queue/{QUEUE}/{registry}/empty", post=True) for registry in REGISTRIES],
    View("compact_queue", f"/rq/queue/{QUEUE}/compact", post=True),
]


@pytest.fixture
def hostile_dashboard(dashboard_settings: Settings, redis_connection: Redis) -> FlaskClient:
    """The dashboard with every action on, deleting included: the most it can be made to do."""
    app = create_app(dashboard_settings.replace(dashboard_allow_delete=True), redis=redis_connection)
    app.testing = False  # a view that raises must answer as in production, not re-raise into the test
    return app.test_client()


def _answer(client: FlaskClient, view: View) -> tuple[int, Any]:
    if view.post:
        response = client.post(view.path, headers={**basic(), **XHR})
    else:
        response = client.get(view.path, headers=basic())
    return response.status_code, response.get_json(silent=True) if response.is_json else response.text


def _problems(view: View, status: int, body: Any, marker: Path) -> list[str]:
    problems = []
    if marker.exists():
        problems.append(f"{view.name}: unpickled the planted pickle")
    if status >= 500:
        problems.append(f"{view.name}: {status} {str(body)[:300]}")
    elif status >= 400 and not (isinstance(body, dict) and body.get("error")):
        problems.append(f"{view.name}: {status} without a JSON error: {str(body)[:300]}")
    elif view.shows is not None and (status != 200 or not view.shows(body)):
        problems.append(f"{view.name}: {status}, the honest record is missing: {str(body)[:300]}")
    return problems


def _problems_of_every_view(client: FlaskClient, connection: Redis, case: Case, payloads: Payloads) -> list[str]:
    """Call every view on ``case`` planted: the reading ones on one planting, each action on its own."""
    problems = []
    for index, view in enumerate(VIEWS):
        if view.post or index == 0:
            connection.flushdb()
            plant(connection, case, payloads)
        problems += _problems(view, *_answer(client, view), payloads.marker)
    return problems


def test_the_planted_pickle_would_create_its_marker(tmp_path: Path) -> None:
    payloads = Payloads(tmp_path / "PWNED")
    pickle.loads(payloads.pickle)  # the control: what no view may do
    assert payloads.marker.exists()


def test_every_view_shows_the_honest_records_of_a_clean_redis(
    hostile_dashboard: FlaskClient, redis_connection: Redis, tmp_path: Path
) -> None:
    clean = Case("job", "description", "honest", lambda p: jobs.job_description("chart").encode())
    problems = _problems_of_every_view(hostile_dashboard, redis_connection, clean, Payloads(tmp_path / "PWNED"))
    assert not problems, "\n".join(problems)


# RQ warns, and carries on, on a started-registry or execution member without an execution id.
@pytest.mark.filterwarnings("ignore:Composite key must contain")
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_hostile_records_run_nothing_and_hide_no_honest_record(
    case: Case, hostile_dashboard: FlaskClient, redis_connection: Redis, tmp_path: Path
) -> None:
    payloads = Payloads(tmp_path / "PWNED")
    assert not (problems := _problems_of_every_view(hostile_dashboard, redis_connection, case, payloads)), (
        f"{case.id}:\n" + "\n".join(problems)
    )
