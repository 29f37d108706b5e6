"""Against a real Redis with real worker processes: the whole path a request takes."""

from __future__ import annotations

import io
import json
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from flask.testing import FlaskClient
from redis import Redis

from plotjobs.queue import jobs
from tests.support.processes import running_worker
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TERMINAL = {"finished", "failed", "canceled", "stopped"}


def wait_for_end(client: FlaskClient, status_url: str, timeout: float = 30) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get(status_url).get_json()
        return status if status["state"] in TERMINAL else None

    return wait_for(ended, timeout=timeout, what=f"{status_url} to end")


def test_submit_progress_finish_and_decode(client: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    updates = redis_connection.pubsub()
    updates.psubscribe("plotjobs:events:*")
    wait_for(lambda: updates.get_message(timeout=0.1), what="the subscription")  # psubscribe confirmation
    with running_worker(redis_url, redis_connection):
        body = client.post("/api/jobs", json={"title": "integration", "width": 640, "height": 480}).get_json()
        status = wait_for_end(client, body["status_url"])

    assert status["state"] == "finished", status
    seen = []
    while (message := updates.get_message(timeout=0.5)) is not None:
        event = json.loads(message["data"])
        assert event["id"] == body["id"]
        seen.append((event["progress"], event["stage"]))
    updates.close()
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions)
    assert any(0 < fraction < 1 for fraction in fractions), seen
    assert seen[-1] == (1.0, "done")

    result = client.get(body["result_url"])
    assert result.status_code == 200 and result.mimetype == "image/png"
    assert matplotlib.image.imread(io.BytesIO(result.data), format="png").shape[:2] == (480, 640)


def test_a_job_that_raises_ends_failed_with_its_message(
    client: FlaskClient, redis_url: str, redis_connection: Redis
) -> None:
    job = jobs.queue(redis_connection, "default").enqueue("plotjobs.queue.tasks.generate", "chart", {"width": 5})
    with running_worker(redis_url, redis_connection):
        status = wait_for_end(client, f"/api/jobs/{job.id}")
    assert status["state"] == "failed"
    assert "width: Input should be greater than or equal to 100" in status["error"]
    assert client.get(f"/api/jobs/{job.id}/result").status_code == 409


def test_worker_refuses_functions_that_are_not_our_tasks(
    client: FlaskClient, redis_url: str, redis_connection: Redis, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    job = jobs.queue(redis_connection, "default").enqueue("os.system", f"touch {marker}")
    with running_worker(redis_url, redis_connection):
        status = wait_for_end(client, f"/api/jobs/{job.id}")
    assert status["state"] == "failed"
    assert "ForbiddenTaskError" in status["error"]
    assert not marker.exists()


def test_unknown_job_is_404(client: FlaskClient) -> None:
    assert client.get("/api/jobs/00000000-0000-4000-8000-000000000000").status_code == 404


def test_tutorial_routes_with_a_real_worker(client: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    page = client.get("/image_page").get_data(as_text=True)
    job_id = page.split('data-status-url="/api/jobs/')[1].split('"')[0]
    with running_worker(redis_url, redis_connection):
        wait_for(
            lambda: client.get(f"/progress?jobid={job_id}").get_json()["progress"] >= 0.99,
            what="the tutorial progress to reach 0.99",
        )
    assert client.get(f"/progress?jobid={job_id}").get_json()["state"] == "SUCCESS"
    image = client.get(f"/result.png?jobid={job_id}")
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")


STOCK_WORKER_OPTIONS = ["-S", "json", "-j", "plotjobs.queue.jobs.PlotJob"]


def _rq_command() -> str:
    rq_command = shutil.which("rq", path=str(Path(sys.executable).parent))
    assert rq_command, "the rq package's command is installed beside this Python"
    return rq_command


@pytest.mark.parametrize("options", [["-S", "json"], STOCK_WORKER_OPTIONS], ids=["json", "json-and-job-class"])
def test_stock_rq_worker_processes_an_api_job(
    client: FlaskClient, redis_url: str, redis_connection: Redis, options: list[str]
) -> None:
    body = client.post("/api/jobs", json={"title": "stock worker"}).get_json()
    command = [_rq_command(), "worker", "-u", redis_url, *options, "default"]
    with running_worker(redis_url, redis_connection, command=command):
        status = wait_for_end(client, body["status_url"])
    assert status["state"] == "finished", status
    assert client.get(body["result_url"]).data.startswith(b"\x89PNG")


def test_a_stock_worker_with_our_job_class_refuses_a_foreign_function(
    client: FlaskClient, redis_url: str, redis_connection: Redis, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    foreign = jobs.queue(redis_connection, "default").enqueue("os.system", f"touch {marker}")
    command = [_rq_command(), "worker", "-u", redis_url, *STOCK_WORKER_OPTIONS, "default"]
    with running_worker(redis_url, redis_connection, command=command):
        status = wait_for_end(client, f"/api/jobs/{foreign.id}")
    assert status["state"] == "failed" and "ForbiddenTaskError" in status["error"], status
    assert not marker.exists()


def test_python_worker_py_serves_every_configured_queue(
    client: FlaskClient, redis_url: str, redis_connection: Redis
) -> None:
    enqueued = [jobs.queue(redis_connection, name).enqueue("plotjobs.queue.tasks.generate", "chart", {})
                for name in ("default", "low")]  # fmt: skip
    with running_worker(redis_url, redis_connection, QUEUES="default,low") as supervisor:
        states = [wait_for_end(client, f"/api/jobs/{job.id}")["state"] for job in enqueued]
    assert states == ["finished", "finished"]
    # worker.py ran the supervisor, whose workers are named after its host and process id.
    names = {jobs.fetch(redis_connection, job.id).worker_name for job in enqueued}
    assert all(name and name.startswith(f"{socket.gethostname()}.{supervisor.pid}.") for name in names), names
