"""A real gunicorn, a real worker, a real Redis: what a user's HTTP client sees."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from typing import Any

import matplotlib.image
import pytest
import requests
from redis import Redis

from plotjobs.redis_embedded import free_port
from tests.processes import PROJECT_ROOT, running_gunicorn, running_worker, stop
from tests.waiting import wait_for

pytestmark = pytest.mark.serving


def poll_until_finished(base_url: str, status_url: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        status: dict[str, Any] = requests.get(base_url + status_url, timeout=5).json()
        assert status["state"] not in {"failed", "canceled", "stopped"}, status
        return status if status["state"] == "finished" else None

    return wait_for(finished, timeout=30, what="the job to finish")


def test_gunicorn_serves_the_api_end_to_end(redis_url: str, redis_connection: Redis) -> None:
    with running_gunicorn(redis_url) as base_url, running_worker(redis_url, redis_connection):
        submitted = requests.post(base_url + "/api/jobs", timeout=5)
        assert submitted.status_code == 202
        assert submitted.headers["Location"] == submitted.json()["status_url"]
        poll_until_finished(base_url, submitted.json()["status_url"])
        image = requests.get(base_url + submitted.json()["result_url"], timeout=5)
        assert image.headers["Content-Type"] == "image/png"
        assert matplotlib.image.imread(io.BytesIO(image.content), format="png").shape[:2] == (500, 800)
        assert requests.get(base_url + "/api/jobs/nope", timeout=5).status_code == 404
        bad = requests.post(base_url + "/api/jobs", json={"dpi": "high"}, timeout=5)
        assert bad.status_code == 422 and bad.json()["field"] == "dpi"


def test_plotjobs_dev_runs_everything_on_a_private_redis() -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["PORT"] = str(port)
    process = subprocess.Popen(
        [sys.executable, "-m", "plotjobs", "dev"], env=env, cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "plotjobs is running" in line:
                break
        assert any("started a private Redis" in line for line in lines), lines

        def submitted() -> requests.Response | None:
            try:
                # The first request may wait for gunicorn's workers to boot (slow on a busy machine).
                return requests.post(base_url + "/api/jobs", json={"seed": 7}, timeout=30)
            except requests.ConnectionError:
                return None

        response = wait_for(submitted, timeout=30, what="the dev server to accept a job")
        poll_until_finished(base_url, response.json()["status_url"])
        assert requests.get(base_url + response.json()["result_url"], timeout=5).content.startswith(b"\x89PNG")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        stop(process)
