"""Every /api route under a real gunicorn while its real Redis is stopped: 503 JSON with Retry-After, then back."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis

from plotjobs.cli.embedded_redis import EmbeddedRedis, free_port
from plotjobs.config import Settings
from plotjobs.worker.render_worker import build_worker
from tests.support.processes import running_gunicorn
from tests.support.waiting import wait_for
from tests.unit.web.test_spec_input import SALES_CSV

pytestmark = pytest.mark.serving

# Connection refused comes back at once; anything slower than this is a hang, not an answer.
ANSWER_SECONDS = 10
SEEDED = {"seed": 11, "width": 320, "height": 240}


@dataclass
class Service:
    """A gunicorn on a Redis the test may stop and start, with a finished job and a queued one."""

    base_url: str
    redis: EmbeddedRedis
    data_dir: Path
    port: int
    finished: dict[str, Any]
    queued: dict[str, Any]

    def stop_redis(self) -> None:
        self.redis.stop()

    def start_redis(self) -> None:
        self.redis = EmbeddedRedis(data_dir=self.data_dir, port=self.port).start()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir, port = tmp_path_factory.mktemp("redis-outage"), free_port()
    server = EmbeddedRedis(data_dir=data_dir, port=port).start()
    try:
        with running_gunicorn(server.url) as base_url:
            first = requests.post(base_url + "/api/jobs", json=SEEDED, timeout=ANSWER_SECONDS)
            assert first.status_code == 202, first.text
            connection = Redis.from_url(server.url)
            try:
                build_worker(connection, Settings(redis_url=server.url)).work(burst=True)
            finally:
                connection.close()
            finished = requests.post(base_url + "/api/jobs", json=SEEDED, timeout=ANSWER_SECONDS).json()
            assert "file_url" in finished, finished
            queued = requests.post(base_url + "/api/jobs", timeout=ANSWER_SECONDS).json()
            state = Service(base_url, server, data_dir, port, {**first.json(), **finished}, queued)
            try:
                yield state
            finally:
                server = state.redis
    finally:
        server.stop()


def _multipart() -> dict[str, Any]:
    spec = {"kind": "line", "series": [{"x_column": "day", "y_column": "north"}]}
    return {"data": {"spec": json.dumps(spec)}, "files": {"csv": ("sales.csv", io.BytesIO(SALES_CSV), "text/csv")}}


# (route, how to call it, the status it answers once Redis is back)
ROUTES: dict[str, tuple[str, str, Any, int]] = {
    "submit JSON": ("POST", "/api/jobs", lambda s: {"json": {"title": "outage"}}, 202),
    "submit multipart": ("POST", "/api/jobs", lambda s: _multipart(), 202),
    "status": ("GET", "{finished[status_url]}", None, 200),
    "spec": ("GET", "{finished[status_url]}/spec", None, 200),
    "result": ("GET", "{finished[result_url]}", None, 200),
    "events": ("GET", "{finished[events_url]}", None, 200),
    "cancel": (
        "DELETE",
        "{queued[status_url]}",
        lambda s: {"headers": {"X-Cancel-Token": s.queued["cancel_token"]}},
        200,
    ),
    "workers": ("GET", "/api/workers", None, 200),
    "stored file": ("GET", "{finished[file_url]}", None, 200),
}


def _call(service: Service, route: str) -> requests.Response:
    method, path, options, _ = ROUTES[route]
    url = service.base_url + path.format(finished=service.finished, queued=service.queued)
    return requests.request(method, url, timeout=ANSWER_SECONDS, **(options(service) if options else {}))


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_api_route_answers_503_while_redis_is_stopped_and_works_once_it_is_back(
    service: Service, route: str
) -> None:
    service.stop_redis()
    try:
        down = _call(service, route)
        assert down.status_code == 503, (down.status_code, down.text[:500])
        assert down.headers["Content-Type"].startswith("application/json")
        assert down.json()["error"] == "service_unavailable"
        assert int(down.headers["Retry-After"]) > 0
    finally:
        service.start_redis()
    expected = ROUTES[route][3]

    def recovered() -> requests.Response | None:
        answer = _call(service, route)
        return answer if answer.status_code == expected else None

    wait_for(recovered, timeout=30, what=f"{route} to answer {expected} again")
