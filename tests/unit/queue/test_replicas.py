"""REDIS_MIN_REPLICAS: a job is acknowledged only once that many replicas confirm it (WAIT, enqueue pipeline)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from redis import Redis

from plotjobs import keys
from plotjobs.config import ConfigError, Settings, from_env
from plotjobs.errors import NotReplicated
from plotjobs.queue import jobs
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app

pytestmark = pytest.mark.integration

# The test Redis has no replica: WAIT 1 always comes back with 0 after its timeout.
WAITING = {"redis_min_replicas": 1, "redis_min_replicas_timeout_ms": 50}


def test_the_settings_read_and_check_the_replica_count() -> None:
    settings = from_env({"REDIS_MIN_REPLICAS": "2", "REDIS_MIN_REPLICAS_TIMEOUT_MS": "250"})
    assert (settings.redis_min_replicas, settings.redis_min_replicas_timeout_ms) == (2, 250)
    assert (Settings().redis_min_replicas, Settings().redis_min_replicas_timeout_ms) == (0, 1000)
    with pytest.raises(ConfigError, match="REDIS_MIN_REPLICAS must be 0 or more"):
        from_env({"REDIS_MIN_REPLICAS": "-1"})
    with pytest.raises(ConfigError, match="REDIS_MIN_REPLICAS_TIMEOUT_MS must be greater than 0"):
        from_env({"REDIS_MIN_REPLICAS_TIMEOUT_MS": "0"})


def test_without_the_replicas_the_enqueue_raises_not_replicated(redis_connection: Redis, settings: Settings) -> None:
    with pytest.raises(NotReplicated, match="REDIS_MIN_REPLICAS=1 replica\\(s\\) within 50 ms"):
        jobs.enqueue_render(redis_connection, settings.replace(**WAITING), ChartSpec(seed=1), job_id="a" * 32)


def test_the_wait_goes_in_the_pipeline_after_the_inflight_write(
    redis_connection: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[list[tuple[Any, ...]]] = []
    execute = type(redis_connection.pipeline()).execute

    def recorded(pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append([command[0] for command in pipeline.command_stack])
        return execute(pipeline, *args, **kwargs)

    monkeypatch.setattr(type(redis_connection.pipeline()), "execute", recorded)
    with pytest.raises(NotReplicated):
        jobs.mark_inflight(redis_connection, settings.replace(**WAITING), "job-1")
    assert [args[0] for args in sent[-1]] == ["ZADD", "EXPIRE", "WAIT"]
    assert sent[-1][-1] == ("WAIT", 1, 50)
    sent.clear()
    jobs.mark_inflight(redis_connection, settings, "job-2")
    assert [args[0] for args in sent[-1]] == ["ZADD", "EXPIRE"]


def test_a_seeded_resubmission_of_an_unconfirmed_job_is_confirmed_again(
    redis_connection: Redis, settings: Settings
) -> None:
    job_id = "b" * 32
    assert jobs.enqueue_render_once(redis_connection, settings, ChartSpec(seed=2), job_id) is True
    with pytest.raises(NotReplicated):
        jobs.enqueue_render_once(redis_connection, settings.replace(**WAITING), ChartSpec(seed=2), job_id)


@pytest.fixture
def waiting_app(settings: Settings, redis_connection: Redis) -> Flask:
    app = create_app(settings.replace(**WAITING), redis=redis_connection)
    app.testing = True
    return app


def test_the_api_answers_503_not_replicated_and_gives_the_client_its_share_back(
    waiting_app: Flask, redis_connection: Redis
) -> None:
    response = waiting_app.test_client().post("/api/jobs", json={"title": "unconfirmed"})
    assert response.status_code == 503
    assert response.json is not None and response.json["error"] == "not_replicated"
    assert response.headers["Retry-After"]
    assert not [key for key in redis_connection.scan_iter(f"{keys.CLIENT_PREFIX}*") if redis_connection.zcard(key)]
