"""Status reads below Flask: the same answer, headers, log line and metrics as the view, and only when one read does."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import JobStatus
from werkzeug.test import Client, TestResponse

from plotjobs import logs
from plotjobs.config import Settings
from plotjobs.queue import jobs, tasks
from plotjobs.spec.chart import ChartSpec
from plotjobs.web.status_reads import STATUS_ENDPOINT, StatusReads
from tests.unit.queue.test_status import counted
from tests.unit.test_logs import json_lines
from tests.unit.web.test_request_metrics import request_samples, series

SETTINGS = Settings(redis_url="redis://fake")


def _job(connection: Redis, state: JobStatus, meta: dict[str, Any] | None = None) -> str:
    job = jobs.enqueue_render(connection, SETTINGS, ChartSpec())
    if state != JobStatus.QUEUED:
        jobs.queue(connection, job.origin).remove(job.id)
        job.started_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        if state != JobStatus.STARTED:
            job.ended_at = dt.datetime(2026, 1, 2, 3, 4, 6, tzinfo=dt.UTC)
        job.set_status(state)
        job.meta = meta or {}
        job.save()
    return job.id


def _middleware(app: Flask) -> StatusReads:
    assert isinstance(app.wsgi_app, StatusReads)
    return app.wsgi_app


def _through_flask(app: Flask, path: str) -> TestResponse:
    """The same request answered by the Flask view, the middleware left out."""
    return Client(_middleware(app).app).get(path)


def _comparable(response: TestResponse) -> tuple[str, dict[str, str], bytes]:
    return response.status, dict(response.headers), response.data


@pytest.mark.parametrize(
    ("state", "meta", "reads"),
    [
        (JobStatus.STARTED, {"progress": 0.4, "stage": "drawing"}, ["HMGET"]),
        (JobStatus.FINISHED, {"progress": 0.9, "stage": "storing"}, ["HMGET"]),
        (JobStatus.CANCELED, None, ["HMGET"]),
        (JobStatus.QUEUED, None, ["HMGET", "LPOS"]),
    ],
)
def test_a_read_the_job_fields_answer_gets_the_views_answer_from_those_reads_alone(
    fake_app: Flask, fake_redis: Redis, state: JobStatus, meta: dict[str, Any] | None, reads: list[str]
) -> None:
    path = f"/api/jobs/{_job(fake_redis, state, meta)}"
    with counted(fake_redis) as commands:
        answered = fake_app.test_client().get(path)
    assert commands == reads
    assert _comparable(answered) == _comparable(_through_flask(fake_app, path))
    assert answered.json is not None and answered.json["state"] == state.value


@pytest.mark.parametrize("state", [JobStatus.FAILED, JobStatus.STOPPED])
def test_a_job_that_needs_more_than_its_fields_is_answered_by_the_view(
    fake_app: Flask, fake_redis: Redis, state: JobStatus
) -> None:
    path = f"/api/jobs/{_job(fake_redis, state)}"
    with counted(fake_redis) as commands:
        answered = fake_app.test_client().get(path)
    assert commands == ["HMGET", "HGETALL", "XREVRANGE"]
    assert _comparable(answered) == _comparable(_through_flask(fake_app, path))


@pytest.mark.parametrize(
    "path",
    ["/api/jobs/not-a-job", "/api/jobs/0b8f3b8e-7b37-4c32-9c1b-1a1f6d8e2f00", "/api/jobs/", "/api/jobs/a/b"],
)
def test_unknown_ids_and_other_paths_get_the_views_answer(fake_app: Flask, path: str) -> None:
    assert _comparable(fake_app.test_client().get(path)) == _comparable(_through_flask(fake_app, path))


def test_other_methods_are_left_to_flask(fake_app: Flask, fake_redis: Redis) -> None:
    path = f"/api/jobs/{_job(fake_redis, JobStatus.FINISHED)}"
    with counted(fake_redis) as commands:
        head = fake_app.test_client().head(path)
    assert head.status_code == 200 and commands == ["HGETALL"]
    assert fake_app.test_client().post(path).status_code == 405


def test_redis_failing_is_answered_as_the_view_answers_it(fake_app: Flask, fake_redis: Redis) -> None:
    path = f"/api/jobs/{_job(fake_redis, JobStatus.FINISHED)}"

    def down(*args: Any, **options: Any) -> Any:
        raise RedisConnectionError("connection refused")

    fake_redis.execute_command = down  # type: ignore[method-assign]
    answered = fake_app.test_client().get(path)
    assert answered.status_code == 503 and answered.json is not None
    assert answered.json["error"] == "service_unavailable"


def test_a_read_answered_here_is_logged_and_counted_as_the_views(
    fake_app: Flask, fake_redis: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    path = f"/api/jobs/{_job(fake_redis, JobStatus.FINISHED)}"
    capsys.readouterr()
    fake_app.test_client().get(path, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    (line,) = [line for line in json_lines(capsys.readouterr().out) if line["logger"] == logs.REQUEST_LOGGER]
    assert (line["message"], line["method"], line["path"], line["endpoint"], line["status"], line["remote_addr"]) == (
        "request",
        "GET",
        path,
        STATUS_ENDPOINT,
        200,
        "192.0.2.7",
    )
    scraped = request_samples(fake_app.test_client().get("/metrics").text)
    # The log line and the histogram record the same duration, the line in milliseconds to 2 places.
    (recorded,) = series(scraped, "_sum", "GET", STATUS_ENDPOINT).values()
    assert 0 < line["duration_ms"] == round(recorded * 1000, 2) < 10_000
    fake_app.test_client().get(path)
    scraped = request_samples(fake_app.test_client().get("/metrics").text)
    assert series(scraped, "_count", "GET", STATUS_ENDPOINT) == {"": 2}


def test_the_endpoint_named_is_the_views(fake_app: Flask) -> None:
    rules = {rule.endpoint: rule.rule for rule in fake_app.url_map.iter_rules()}
    assert rules[STATUS_ENDPOINT] == "/api/jobs/<job_id>"


def test_progress_written_by_a_worker_shows_at_once(fake_app: Flask, fake_redis: Redis) -> None:
    job_id = _job(fake_redis, JobStatus.STARTED, {"progress": 0.2, "stage": "preparing data"})
    client = fake_app.test_client()
    assert client.get(f"/api/jobs/{job_id}").json["stage"] == "preparing data"  # type: ignore[index]
    tasks.report_progress(jobs.fetch(fake_redis, job_id), 0.6, "drawing", check_cancel=False)
    assert client.get(f"/api/jobs/{job_id}").json["stage"] == "drawing"  # type: ignore[index]


def test_a_read_whose_latency_cannot_be_recorded_is_answered_and_the_failure_logged(
    fake_app: Flask, fake_redis: Redis, plotjobs_logs: pytest.LogCaptureFixture
) -> None:
    def unwritable(*args: Any) -> None:
        raise OSError("no space left on device")

    _middleware(fake_app).request_metrics.observe = unwritable  # type: ignore[method-assign]
    answered = fake_app.test_client().get(f"/api/jobs/{_job(fake_redis, JobStatus.FINISHED)}")
    assert answered.status_code == 200
    assert "request latency not recorded: OSError" in [record.getMessage() for record in plotjobs_logs.records]
