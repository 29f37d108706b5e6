"""A real gunicorn, a real worker, a real Redis: what a user's HTTP client sees."""

from __future__ import annotations

import io
from typing import Any

import matplotlib.image
import pytest
import requests
from redis import Redis

from tests.support.processes import post_when_ready, running_dev, running_gunicorn, running_worker, stop_dev
from tests.support.waiting import wait_for

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
    with running_dev() as (process, base_url, lines):
        assert any("started a private Redis" in line for line in lines), lines
        response = post_when_ready(base_url, {"seed": 7})
        poll_until_finished(base_url, response.json()["status_url"])
        assert requests.get(base_url + response.json()["result_url"], timeout=5).content.startswith(b"\x89PNG")
        assert stop_dev(process, lines) == 0, lines[-20:]
