"""What the running app holds, read back by the helpers the views use."""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis

from plotjobs.web.extension import current_publisher, current_redis, current_settings


def test_the_helpers_return_what_the_app_was_built_with(fake_app: Flask, fake_redis: Redis) -> None:
    with fake_app.app_context():
        assert current_redis() is fake_redis
        assert current_settings().secret_key == "test-secret"


def test_without_a_broker_url_there_is_no_publisher(fake_app: Flask) -> None:
    with fake_app.app_context(), pytest.raises(RuntimeError, match="BROKER_URL"):
        current_publisher()
