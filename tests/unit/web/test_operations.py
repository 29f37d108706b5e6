"""Operations on a real Redis through the Flask test client: probes, metrics, logs, priority."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from plotjobs import keys
from plotjobs.config import ConfigError, Settings
from plotjobs.queue import jobs
from plotjobs.web import create_app
from plotjobs.worker.render_worker import build_worker


def run_jobs(connection: Redis, settings: Settings) -> None:
    build_worker(connection, settings).work(burst=True)


def submit(client: FlaskClient, query: str = "", spec: dict[str, Any] | None = None) -> str:
    response = client.post(f"/api/jobs{query}", json=spec or {})  # unseeded: never shared with another job
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["id"]
    return job_id


def failed_job(connection: Redis, settings: Settings) -> str:
    """A job that fails at once: the worker refuses a function that is not one of our tasks."""
    job = jobs.queue(connection, "default").enqueue("plotjobs.queue.tasks.missing")
    run_jobs(connection, settings)
    assert job.get_status(refresh=True) == "failed"
    return job.id


# --- health ---------------------------------------------------------------------------------


def test_healthz_answers_without_touching_redis(fake_client: FlaskClient) -> None:
    assert fake_client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_reports_queue_depths_and_workers(client: FlaskClient) -> None:
    submit(client, "?priority=low")
    body = client.get("/readyz")
    assert body.status_code == 200
    every_generator = {f"{name}.{queue}": 0 for name in ("vega-lite", "report") for queue in ("high", "default", "low")}
    assert body.get_json()["queues"] == {"high": 0, "default": 0, "low": 1, **every_generator}
    assert body.get_json()["workers"] == 0 and body.get_json()["redis"] == "ok"


# --- priority -------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "queue"), [("", "default"), ("?priority=high", "high"),
                                               ("?priority=default", "default"), ("?priority=low", "low")])  # fmt: skip
def test_priority_chooses_the_queue(client: FlaskClient, redis_connection: Redis, query: str, queue: str) -> None:
    job = jobs.fetch(redis_connection, submit(client, query))
    assert job.origin == queue


@pytest.mark.parametrize("priority", ["urgent", "HIGH", ""])
def test_unknown_priority_is_a_422_naming_it(client: FlaskClient, priority: str) -> None:
    response = client.post(f"/api/jobs?priority={priority}", json={})
    assert response.status_code == 422
    assert response.get_json()["field"] == "priority" and response.get_json()["error"] == "invalid_priority"


def test_priority_without_a_queue_is_refused(settings: Settings, redis_connection: Redis) -> None:
    app = create_app(settings.replace(queues=("default",)), redis=redis_connection)
    response = app.test_client().post("/api/jobs?priority=high", json={})
    assert response.status_code == 422 and "no workers serve" in response.get_json()["message"]
    assert response.get_json()["field"] == "priority" and response.get_json()["error"] == "invalid_priority"


def origins(settings: Settings, connection: Redis, queues: tuple[str, ...], *queries: str) -> list[str]:
    """The queue each submission with ``queries`` went to, under ``QUEUES=queues``."""
    client = create_app(settings.replace(queues=queues), redis=connection).test_client()
    return [jobs.fetch(connection, submit(client, query)).origin for query in queries]


def test_queues_default_alone_takes_jobs_with_no_priority_or_the_default_one(
    settings: Settings, redis_connection: Redis
) -> None:
    assert origins(settings, redis_connection, ("default",), "", "?priority=default") == ["default", "default"]
    client = create_app(settings.replace(queues=("default",)), redis=redis_connection).test_client()
    assert client.post("/api/jobs?priority=low", json={}).get_json()["field"] == "priority"


def test_a_single_custom_queue_takes_every_job_without_a_priority(settings: Settings, redis_connection: Redis) -> None:
    assert origins(settings, redis_connection, ("charts",), "", "", "?priority=default") == ["charts"] * 3
    assert jobs.queue(redis_connection, "charts").count == 3


def test_high_and_low_send_no_priority_and_priority_default_to_the_first_queue(
    settings: Settings, redis_connection: Redis
) -> None:
    found = origins(
        settings, redis_connection, ("high", "low"), "", "?priority=default", "?priority=low", "?priority=high"
    )
    assert found == ["high", "high", "low", "high"]


def test_workers_take_high_priority_first(client: FlaskClient, redis_connection: Redis, settings: Settings) -> None:
    low, high = submit(client, "?priority=low"), submit(client, "?priority=high")
    run_jobs(redis_connection, settings)
    ended = {job_id: jobs.fetch(redis_connection, job_id).ended_at for job_id in (low, high)}
    assert ended[high] < ended[low]


# --- metrics and logs -----------------------------------------------------------------------


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (labels in any order)."""
    for line in text.splitlines():
        found = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if found and dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or "")) == labels:
            return float(found.group(2))
    raise AssertionError(f"{name} {labels} not in metrics")


def test_metrics_count_jobs_durations_queues_and_requests(
    client: FlaskClient, redis_connection: Redis, settings: Settings
) -> None:
    submit(client)
    submit(client, "?priority=high")
    failed_job(redis_connection, settings)
    before = client.get("/metrics")
    assert before.status_code == 200 and before.mimetype == "text/plain"
    assert sample(before.text, "plotjobs_jobs_submitted_total", kind="line") == 2
    assert sample(before.text, "plotjobs_queue_depth", queue="default") == 0
    run_jobs(redis_connection, settings)
    submit(client, "?priority=low")

    text = client.get("/metrics").text
    assert sample(text, "plotjobs_jobs_submitted_total", kind="line") == 3
    assert sample(text, "plotjobs_jobs_finished_total", kind="line") == 2
    assert sample(text, "plotjobs_render_duration_seconds_count", kind="line") == 2
    assert sample(text, "plotjobs_render_duration_seconds_bucket", kind="line", le="+Inf") == 2
    assert sample(text, "plotjobs_render_duration_seconds_sum", kind="line") > 0
    assert sample(text, "plotjobs_queue_depth", queue="low") == 1
    assert sample(text, "plotjobs_workers_alive") == 0
    assert sample(text, "plotjobs_http_request_duration_seconds_count", method="POST", endpoint="api.submit_job") == 3
    assert sample(text, "plotjobs_http_request_duration_seconds_count", method="GET",
                  endpoint="monitoring.prometheus_metrics") == 1  # fmt: skip
    for key in redis_connection.keys("plotjobs:metrics:*"):
        assert 0 < redis_connection.ttl(key) <= keys.METRICS_TTL


def test_a_failed_render_is_counted_by_kind(client: FlaskClient, redis_connection: Redis, settings: Settings) -> None:
    job = jobs.queue(redis_connection, "default").enqueue(
        "plotjobs.queue.tasks.generate", "chart", {"kind": "line", "dpi": 5}, description=jobs.job_description("chart")
    )
    run_jobs(redis_connection, settings)
    assert job.get_status(refresh=True) == "failed"
    assert sample(client.get("/metrics").text, "plotjobs_jobs_failed_total", kind="invalid") == 1


def test_one_json_line_per_request_and_per_job(
    client: FlaskClient, redis_connection: Redis, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = submit(client)
    run_jobs(redis_connection, settings)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    requests_logged = [line for line in lines if line["logger"] == "plotjobs.request"]
    assert requests_logged[0]["method"] == "POST" and requests_logged[0]["path"] == "/api/jobs"
    assert requests_logged[0]["status"] == 202 and requests_logged[0]["duration_ms"] >= 0
    (job_line,) = [line for line in lines if line["logger"] == "plotjobs.job"]
    assert job_line["job_id"] == job_id and job_line["kind"] == "line" and job_line["outcome"] == "finished"
    assert job_line["duration_ms"] > 0 and job_line["queue"] == "default"


@pytest.mark.parametrize("missing", ["rq_dashboard", "six"])
def test_dashboard_credentials_without_the_extra_name_the_extra(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    for name in [name for name in sys.modules if name == "rq_dashboard" or name.startswith("rq_dashboard.")]:
        monkeypatch.delitem(sys.modules, name)
    # None in sys.modules makes importing it raise ModuleNotFoundError, as if it were not installed.
    monkeypatch.setitem(sys.modules, missing, None)
    settings = Settings(redis_url="redis://fake", dashboard_username="ops", dashboard_password="s3cret-pw")
    with pytest.raises(ConfigError, match=re.escape("pip install 'plotjobs[dashboard]'")):
        create_app(settings, redis=fake_redis)


def test_log_level_comes_from_the_settings(
    settings: Settings, redis_connection: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = create_app(settings.replace(log_level="WARNING"), redis=redis_connection).test_client()
    quiet.get("/healthz")
    assert "plotjobs.request" not in capsys.readouterr().out
    loud = create_app(settings.replace(log_level="DEBUG"), redis=redis_connection).test_client()
    loud.get("/healthz")
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines() if "plotjobs.request" in text]
    assert (line["path"], line["status"], line["endpoint"]) == ("/healthz", 200, "monitoring.healthz")
