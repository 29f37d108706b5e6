"""Fixtures: a real Redis (REDIS_URL or a private embedded one), apps, fakeredis for unit tests."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import fakeredis
import hypothesis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from plotjobs.cli.embedded_redis import EmbeddedRedis
from plotjobs.config import Settings
from plotjobs.web import create_app

# Locally each run explores new examples; under CI they are fixed, so a CI run is repeatable
# (what a local run finds is kept as an explicit regression test).
hypothesis.settings.register_profile("ci", derandomize=True)
if os.environ.get("CI") == "true":
    hypothesis.settings.load_profile("ci")

# Tests never touch database 0 of a shared server: they own this one and flush it.
TEST_DATABASE = int(os.environ.get("PLOTJOBS_TEST_REDIS_DB", "13"))


def _with_database(url: str, database: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: the one in REDIS_URL (on a private database), else a private embedded server."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield _with_database(configured, TEST_DATABASE)
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def redis_connection(redis_url: str) -> Iterator[Redis]:
    """A client of the real Redis, with the test database flushed before and after."""
    client = Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Settings pointing at the test Redis, with a fixed secret key."""
    return Settings(redis_url=redis_url, secret_key="test-secret")


@pytest.fixture
def app(settings: Settings, redis_connection: Redis) -> Flask:
    """The web app on the real Redis."""
    flask_app = create_app(settings, redis=redis_connection)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app on the real Redis."""
    return app.test_client()


@pytest.fixture
def fake_redis() -> Redis:
    """An in-memory Redis for fast unit tests."""
    return fakeredis.FakeRedis()


@pytest.fixture
def fake_app(fake_redis: Redis) -> Flask:
    """The web app on fakeredis."""
    flask_app = create_app(Settings(redis_url="redis://fake", secret_key="test-secret"), redis=fake_redis)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def fake_client(fake_app: Flask) -> FlaskClient:
    """A test client of the app on fakeredis."""
    return fake_app.test_client()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The test RabbitMQ (AMQP_URL or the local guest account); skip without one, fail under CI."""
    from tests.support.amqp import amqp_url_from_env, unreachable_reason

    url = amqp_url_from_env()
    reason = unreachable_reason(url)
    if reason is not None:
        if os.environ.get("PLOTJOBS_REQUIRE_AMQP") == "1":
            pytest.fail(f"{reason} (PLOTJOBS_REQUIRE_AMQP=1 makes RabbitMQ required)")
        pytest.skip(reason)
    return url


@pytest.fixture
def amqp_queue(amqp_url: str) -> Iterator[str]:
    """A submissions queue name unique to this test; its queues and exchange are deleted afterwards."""
    from tests.support.amqp import delete_topology

    name = f"plotjobs-test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        delete_topology(amqp_url, name)


@pytest.fixture
def amqp_settings(settings: Settings, amqp_url: str, amqp_queue: str) -> Settings:
    """Settings that send submissions through the test RabbitMQ queue."""
    return settings.replace(broker_url=amqp_url, amqp_queue=amqp_queue)


@pytest.fixture
def plotjobs_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog on plotjobs' own logger, at INFO: configured logging stops it propagating to the root's handlers."""
    logger = logging.getLogger("plotjobs")
    caplog.set_level(logging.INFO, logger="plotjobs")
    propagate, logger.propagate = logger.propagate, False  # one way in for each record
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate = propagate
