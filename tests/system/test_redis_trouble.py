"""Redis stopped and restarted under a real gunicorn and worker; hostile data written straight into Redis."""

from __future__ import annotations

import pickle
import zlib
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from redis import Redis

from plotjobs.cli.embedded_redis import EmbeddedRedis, free_port
from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.queue.serialization import MAX_FIELD_BYTES
from plotjobs.spec.chart import ChartSpec
from tests.support.processes import running_gunicorn, running_worker
from tests.support.waiting import wait_for
from tests.system.test_faults import FAST, wait_for_end

pytestmark = pytest.mark.serving


def _status_code(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.ConnectionError:
        return None


def test_queued_jobs_survive_a_redis_restart_and_the_api_recovers(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedRedis(data_dir=tmp_path, port=port).start()
    try:
        with running_gunicorn(server.url) as base_url:
            accepted = [requests.post(base_url + "/api/jobs", timeout=5).json()["id"] for _ in range(5)]
            server.stop()
            for response in (
                requests.get(f"{base_url}/api/jobs/{accepted[0]}", timeout=10),
                requests.post(base_url + "/api/jobs", timeout=10),
            ):
                assert response.status_code == 503
                assert response.json()["error"] == "service_unavailable"
                assert response.headers["Retry-After"]
            server = EmbeddedRedis(data_dir=tmp_path, port=port).start()
            wait_for(lambda: _status_code(f"{base_url}/api/jobs/{accepted[0]}") == 200, what="the API to recover")
            connection = Redis.from_url(server.url)
            try:
                assert jobs.queue(connection, "default").get_job_ids() == accepted
                with running_worker(server.url, connection, **FAST) as worker:
                    for job_id in accepted:
                        assert wait_for_end(connection, job_id)["state"] == "finished"
                    # Redis goes away under a running worker and comes back: work resumes by itself.
                    server.stop()
                    server = EmbeddedRedis(data_dir=tmp_path, port=port).start()
                    wait_for(lambda: _status_code(f"{base_url}/api/jobs/{accepted[0]}") == 200, what="the API")
                    later = requests.post(base_url + "/api/jobs", timeout=5).json()["id"]
                    assert wait_for_end(connection, later)["state"] == "finished"
                    assert worker.poll() is None
            finally:
                connection.close()
    finally:
        server.stop()


# A pickle that, if loaded by a stock unpickler, would run a shell command.
def _malicious_pickle(marker: Path) -> bytes:
    return f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()


@pytest.mark.integration
def test_a_malicious_pickle_in_meta_cannot_run_code_in_the_web_app(
    client: FlaskClient, redis_connection: Redis, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned-web"
    body = client.post("/api/jobs").get_json()
    redis_connection.hset(f"rq:job:{body['id']}", "meta", _malicious_pickle(marker))
    response = client.get(body["status_url"])
    assert response.status_code == 200
    assert response.get_json()["state"] == "queued"
    assert client.get(f"/progress?jobid={body['id']}").status_code == 200
    assert not marker.exists()


@pytest.mark.integration
def test_a_malicious_pickle_as_job_data_is_refused_by_the_worker(
    redis_url: str, redis_connection: Redis, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned-worker"
    hostile = jobs.enqueue_render(redis_connection, Settings(), ChartSpec())
    redis_connection.hset(hostile.key, "data", _malicious_pickle(marker))
    honest = jobs.enqueue_render(redis_connection, Settings(), ChartSpec())
    with running_worker(redis_url, redis_connection, **FAST) as worker:
        failed = wait_for_end(redis_connection, hostile.id)
        assert wait_for_end(redis_connection, honest.id)["state"] == "finished"
        assert worker.poll() is None
    assert failed["state"] == "failed"
    assert failed["error"].startswith("UnreadableJobData: its data is not JSON"), failed["error"]
    assert not marker.exists()


@pytest.mark.integration
def test_a_job_queued_by_the_previous_version_fails_with_a_reason_and_nothing_runs(
    redis_url: str, redis_connection: Redis
) -> None:
    legacy = jobs.enqueue_render(redis_connection, Settings(), ChartSpec())
    # What plotjobs 0.1 wrote: zlib-compressed pickle (protocol 4) of RQ's call tuple.
    old_data = pickle.dumps(("plotjobs.tasks.render_chart", None, ({"title": "old"},), {}), protocol=4)
    redis_connection.hset(legacy.key, "data", zlib.compress(old_data))
    with running_worker(redis_url, redis_connection, **FAST):
        failed = wait_for_end(redis_connection, legacy.id)
    assert failed["state"] == "failed"
    assert failed["error"].startswith("UnreadableJobData: its data is a pickle, as plotjobs 0.1 queued jobs")


@pytest.mark.integration
def test_a_zip_bomb_as_job_data_fails_that_job_and_the_worker_carries_on(
    redis_url: str, redis_connection: Redis
) -> None:
    bomb = jobs.enqueue_render(redis_connection, Settings(), ChartSpec())
    redis_connection.hset(bomb.key, "data", zlib.compress(b"[" * (MAX_FIELD_BYTES * 4)))
    honest = jobs.enqueue_render(redis_connection, Settings(), ChartSpec())
    with running_worker(redis_url, redis_connection, **FAST) as worker:
        assert wait_for_end(redis_connection, honest.id)["state"] == "finished"
        failed = wait_for_end(redis_connection, bomb.id)
        assert worker.poll() is None
    assert failed["state"] == "failed", failed
    assert failed["error"].startswith("UnreadableJobData: FieldTooLargeError: data:"), failed["error"]
    # Recording the failure wrote the job back with the bomb replaced.
    assert len(redis_connection.hget(bomb.key, "data") or b"") < 100
