"""Each way a job can end on RQ 3.0, with real worker processes, as the dashboard then shows it."""

from __future__ import annotations

import signal
import threading
from typing import Any

import psutil
import pytest
from flask.testing import FlaskClient
from redis import Redis

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.queue import interest, jobs
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app
from tests.support.processes import running_worker
from tests.support.waiting import wait_for
from tests.system.test_faults import (
    BIG,
    FAST,
    freeze,
    single_worker_command,
    wait_for_end,
    wait_until_started,
    watching,
    worker_processes,
)
from tests.unit.web.test_dashboard import PASSWORD, USER, basic

pytestmark = pytest.mark.integration


@pytest.fixture
def dashboard(settings: Settings, redis_connection: Redis) -> FlaskClient:
    app = create_app(settings.replace(dashboard_username=USER, dashboard_password=PASSWORD), redis=redis_connection)
    return app.test_client()


def assert_dashboard_shows(dashboard: FlaskClient, job_id: str, state: str, registry: str) -> dict[str, Any]:
    """The dashboard's job page says ``state`` and the ``registry`` list holds the job; the job page's JSON."""
    info = dashboard.get(f"/rq/0/data/job/{job_id}.json", headers=basic())
    assert info.status_code == 200 and info.get_json()["status"] == state, info.get_json()
    listed = dashboard.get(f"/rq/0/data/jobs/default/{registry}/8/asc/1.json", headers=basic())
    assert listed.status_code == 200 and job_id in [job["id"] for job in listed.get_json()["jobs"]], listed.get_json()
    body: dict[str, Any] = info.get_json()
    return body


def test_a_finished_job(dashboard: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    job_id = jobs.new_job_id()
    with running_worker(redis_url, redis_connection, **FAST):
        jobs.enqueue_render(redis_connection, Settings(), ChartSpec(), job_id=job_id)
        assert wait_for_end(redis_connection, job_id)["state"] == "finished"
    info = assert_dashboard_shows(dashboard, job_id, "finished", "finished")
    assert info["result"]["key"] and info["exc_info"] is None


def test_a_failed_job(dashboard: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    # Past the spec's validation (dpi 5 is refused): the render itself refuses it.
    job = jobs.queue(redis_connection, "default").enqueue(
        "plotjobs.queue.tasks.generate", "chart", {"kind": "line", "dpi": 5}, description=jobs.job_description("chart")
    )
    with running_worker(redis_url, redis_connection, **FAST):
        status = wait_for_end(redis_connection, job.id)
    assert status["state"] == "failed" and status["error"], status
    assert assert_dashboard_shows(dashboard, job.id, "failed", "failed")["exc_info"]


def test_a_job_over_its_timeout(dashboard: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    """The render stalls on its storage: Redis pauses every writer for 3 s, past JOB_TIMEOUT=1."""
    job_id = jobs.new_job_id()
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, command=single_worker_command("timed"), **FAST),
    ):
        jobs.enqueue_render(redis_connection, Settings(job_timeout=1), BIG, job_id=job_id)
        wait_until_started(events)
        redis_connection.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
        status = wait_for_end(redis_connection, job_id)
    assert status["state"] == "failed" and "timed out" in status["error"], status
    assert "timed out" in assert_dashboard_shows(dashboard, job_id, "failed", "failed")["exc_info"]


def test_a_job_stopped_on_request(dashboard: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    job_id = jobs.new_job_id()
    answers: list[Any] = []
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, **FAST) as supervisor,
    ):
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        token = interest.record(redis_connection, Settings(), job_id)
        wait_until_started(events)
        [worker] = psutil.Process(supervisor.pid).children()
        freeze(worker)  # mid-render: it can only stop, not finish first
        cancel = f"/api/jobs/{job_id}"
        request = threading.Thread(
            target=lambda: answers.append(dashboard.delete(cancel, headers={"X-Cancel-Token": token}))
        )
        request.start()
        wait_for(lambda: answers or redis_connection.exists(keys.cancel(job_id)), what="the cancel request")
        worker.send_signal(signal.SIGCONT)
        request.join(timeout=30)
        status = wait_for_end(redis_connection, job_id)
    [response] = answers
    assert response.status_code == 200 and status["state"] == "stopped", (response.get_json(), status)
    # RQ keeps a stopped job in its failed registry, with the stopped status.
    assert "canceled on request" in assert_dashboard_shows(dashboard, job_id, "stopped", "failed")["exc_info"]


def test_a_job_whose_worker_is_killed(dashboard: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    job_id = jobs.new_job_id()
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, LOST_JOB_RETRIES="0", **FAST) as supervisor,
    ):
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        [child] = worker_processes(supervisor)
        child.send_signal(signal.SIGSTOP)
        child.kill()
        status = wait_for_end(redis_connection, job_id)
    assert status["state"] == "failed" and status["error"].startswith("WorkerLostError"), status
    assert "WorkerLostError" in assert_dashboard_shows(dashboard, job_id, "failed", "failed")["exc_info"]
