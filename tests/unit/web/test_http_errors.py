"""Every error answered as the web layer promises: our errors and Redis outages as JSON, with their headers."""

from __future__ import annotations

from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError

from plotjobs.errors import TooManyRequests
from plotjobs.web.http_errors import UNAVAILABLE_RETRY_AFTER, register_error_handlers


def _app() -> Flask:
    app = Flask(__name__)
    register_error_handlers(app)

    @app.get("/api/redis-down")
    def redis_down() -> str:
        raise RedisConnectionError("refused")

    @app.get("/api/busy")
    def busy() -> str:
        raise TooManyRequests("the queue is full", code="queue_full", retry_after=11)

    @app.get("/api/broken")
    def broken() -> str:
        raise KeyError("a bug")

    @app.get("/page/broken")
    def broken_page() -> str:
        raise KeyError("a bug")

    return app


def test_a_redis_error_is_a_503_json_with_retry_after() -> None:
    response = _app().test_client().get("/api/redis-down")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(UNAVAILABLE_RETRY_AFTER)
    body = response.get_json()
    assert body["error"] == "service_unavailable" and "ConnectionError" in body["message"]


def test_too_many_requests_says_when_to_retry() -> None:
    response = _app().test_client().get("/api/busy")
    assert response.status_code == 429 and response.headers["Retry-After"] == "11"
    assert response.get_json() == {"error": "queue_full", "message": "the queue is full"}


def test_http_errors_are_json_under_api_and_keep_their_headers() -> None:
    client = _app().test_client()
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    wrong_method = client.post("/api/busy")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["Allow"]
    assert wrong_method.get_json()["error"] == "method_not_allowed"
    assert not client.get("/nothing-here").is_json


def test_an_unexpected_error_is_a_500_without_a_traceback() -> None:
    client = _app().test_client()
    api = client.get("/api/broken")
    assert api.status_code == 500 and api.get_json()["error"] == "internal_error"
    assert "a bug" not in api.get_data(as_text=True)
    page = client.get("/page/broken")
    assert page.status_code == 500 and page.get_data(as_text=True) == "Internal server error"
