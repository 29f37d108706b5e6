"""The JSON API and the tutorial routes on fakeredis, jobs run by an in-process burst worker."""

from __future__ import annotations

import io
from typing import Any

import matplotlib.image
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.queue.status import exception_text
from plotjobs.web import create_app
from plotjobs.worker.render_worker import build_worker


def run_queued_jobs(connection: Redis) -> None:
    """Process every queued job in this process, as a worker would."""
    build_worker(connection, Settings(redis_url="redis://fake")).work(burst=True)


def submit(client: FlaskClient, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/api/jobs", json=spec) if spec is not None else client.post("/api/jobs")
    assert response.status_code == 202, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_submit_answers_202_with_links_and_location(fake_client: FlaskClient) -> None:
    response = fake_client.post("/api/jobs", json={"title": "hello"})
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"id", "status_url", "result_url", "events_url", "reused", "cancel_token"}
    # 32 random bytes, URL-safe base64 without padding.
    assert len(body["cancel_token"]) == 43 and body["cancel_token"].replace("-", "").replace("_", "").isalnum()
    assert body["status_url"] == f"/api/jobs/{body['id']}"
    assert body["result_url"] == f"/api/jobs/{body['id']}/result"
    assert body["events_url"] == f"/api/jobs/{body['id']}/events"
    assert body["reused"] is False
    assert response.headers["Location"] == body["status_url"]


def test_empty_body_is_the_default_chart(fake_client: FlaskClient, fake_redis: Redis) -> None:
    body = submit(fake_client)
    job = jobs.fetch(fake_redis, body["id"])
    assert job.args == ["chart", {"kind": "line", "title": "", "x_label": "", "y_label": "", "series": None,
                         "x_type": "auto", "bins": 10, "legend": None, "theme": "light", "seed": None,
                         "start": None, "format": "png", "width": 800, "height": 500, "dpi": 100}]  # fmt: skip
    assert job.description == jobs.job_description("chart")


def test_queued_job_reports_state_stage_and_position(fake_client: FlaskClient) -> None:
    first, second = submit(fake_client), submit(fake_client)
    status = fake_client.get(second["status_url"]).get_json()
    assert status["state"] == "queued"
    assert status["stage"] == "queued"
    assert status["progress"] == 0.0
    assert status["position"] == 1
    assert fake_client.get(first["status_url"]).get_json()["position"] == 0
    assert status["created_at"] and status["started_at"] is None and status["ended_at"] is None
    assert status["error"] is None


def test_finished_job_serves_a_cacheable_png(fake_client: FlaskClient, fake_redis: Redis) -> None:
    body = submit(fake_client, {"width": 400, "height": 300})
    assert fake_client.get(body["result_url"]).status_code == 409
    run_queued_jobs(fake_redis)

    status = fake_client.get(body["status_url"]).get_json()
    assert (status["state"], status["progress"], status["stage"]) == ("finished", 1.0, "done")
    assert status["started_at"] and status["ended_at"]

    result = fake_client.get(body["result_url"])
    assert result.status_code == 200
    assert result.mimetype == "image/png"
    assert matplotlib.image.imread(io.BytesIO(result.data), format="png").shape[:2] == (300, 400)
    assert "immutable" in result.headers["Cache-Control"]
    assert f'filename="chart-{body["id"]}.png"' in result.headers["Content-Disposition"]
    etag = result.headers["ETag"]
    assert fake_client.get(body["result_url"], headers={"If-None-Match": etag}).status_code == 304


def test_result_of_a_queued_job_is_409_with_the_state(fake_client: FlaskClient) -> None:
    body = submit(fake_client)
    response = fake_client.get(body["result_url"])
    assert response.status_code == 409
    assert response.get_json()["state"] == "queued"
    assert response.get_json()["error"] == "not_ready"


def test_expired_result_bytes_answer_404(fake_client: FlaskClient, fake_redis: Redis) -> None:
    body = submit(fake_client)
    run_queued_jobs(fake_redis)
    for key in fake_redis.scan_iter("plotjobs:result:*"):
        fake_redis.delete(key)
    response = fake_client.get(body["result_url"])
    assert response.status_code == 404
    assert response.get_json()["error"] == "result_expired"


def test_result_bytes_expire_with_the_result_ttl(fake_client: FlaskClient, fake_redis: Redis) -> None:
    submit(fake_client)
    run_queued_jobs(fake_redis)
    keys = list(fake_redis.scan_iter("plotjobs:result:*"))
    assert len(keys) == 1
    assert 0 < fake_redis.ttl(keys[0]) <= 3600


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/00000000-0000-4000-8000-000000000000",
        "/api/jobs/not-a-job",
        "/api/jobs/" + "x" * 5000,
        "/api/jobs/%2A",
        "/api/jobs/rq:job:abc",
        "/api/jobs/00000000-0000-4000-8000-000000000000/result",
        "/api/jobs/..%2F..%2Fetc/result",
    ],
)
def test_unknown_or_malformed_ids_are_404_json(fake_client: FlaskClient, path: str) -> None:
    response = fake_client.get(path)
    assert response.status_code == 404
    assert response.is_json
    assert set(response.get_json()) >= {"error", "message"}


def test_unparseable_json_is_400(fake_client: FlaskClient) -> None:
    response = fake_client.post("/api/jobs", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"
    assert response.get_json()["field"] == "body"


@pytest.mark.parametrize("body", ['{"width": ' + "9" * 5000 + "}", "[" * 100_000])
def test_json_python_cannot_read_is_400_not_500(fake_client: FlaskClient, body: str) -> None:
    response = fake_client.post("/api/jobs", data=body, content_type="application/json")
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_json")


def test_a_non_object_spec_is_422(fake_client: FlaskClient) -> None:
    response = fake_client.post("/api/jobs", json=[1, 2])
    assert response.status_code == 422
    assert response.get_json()["field"] == "body"


def test_invalid_spec_is_422_naming_every_field(fake_client: FlaskClient, fake_redis: Redis) -> None:
    response = fake_client.post("/api/jobs", json={"width": "wide", "format": "gif"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid_spec"
    assert body["field"] in {"width", "format"}
    assert body["message"].startswith(body["field"] + ":")
    assert {detail["field"] for detail in body["details"]} == {"width", "format"}
    assert not list(fake_redis.scan_iter("rq:job:*"))


def test_a_body_that_is_not_json_is_415(fake_client: FlaskClient) -> None:
    response = fake_client.post("/api/jobs", data="title=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.get_json()["field"] == "Content-Type"


def test_an_oversized_body_is_413_json(fake_redis: Redis) -> None:
    app = create_app(Settings(redis_url="redis://fake", max_request_bytes=100), redis=fake_redis)
    response = app.test_client().post("/api/jobs", json={"title": "x" * 500})
    assert response.status_code == 413
    assert response.is_json
    assert not list(fake_redis.scan_iter("rq:job:*"))


def test_unknown_api_path_and_wrong_method_are_json(fake_client: FlaskClient) -> None:
    assert fake_client.get("/api/nothing").get_json()["error"] == "not_found"
    response = fake_client.delete("/api/jobs")
    assert response.status_code == 405
    assert response.is_json


def test_wrong_method_on_the_api_says_which_methods_are_allowed(fake_client: FlaskClient) -> None:
    response = fake_client.open("/api/jobs/00000000-0000-4000-8000-000000000000", method="TRACE")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "DELETE"}


def test_redis_down_is_503_json_not_a_traceback() -> None:
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", secret_key="k"))
    client = app.test_client()
    for response in (client.post("/api/jobs"), client.get("/api/jobs/00000000-0000-4000-8000-000000000000")):
        assert response.status_code == 503
        assert response.get_json()["error"] == "service_unavailable"
        assert response.headers["Retry-After"]


def test_tutorial_routes(fake_client: FlaskClient, fake_redis: Redis) -> None:
    page = fake_client.get("/image_page")
    assert page.status_code == 200
    job_id = next(iter(fake_redis.scan_iter("rq:job:*"))).decode().split(":")[-1]
    assert job_id in page.get_data(as_text=True)
    assert fake_client.get(f"/progress?jobid={job_id}").get_json() == {
        "state": "PENDING", "progress": 0.0, "error": None}  # fmt: skip
    assert fake_client.get(f"/result.png?jobid={job_id}").status_code == 409

    run_queued_jobs(fake_redis)
    assert fake_client.get(f"/progress?jobid={job_id}").get_json() == {
        "state": "SUCCESS", "progress": 1.0, "error": None}  # fmt: skip
    image = fake_client.get(f"/result.png?jobid={job_id}")
    assert image.status_code == 200 and image.mimetype == "image/png"


def test_tutorial_progress_of_an_unknown_job_is_a_visible_failure(fake_client: FlaskClient) -> None:
    response = fake_client.get("/progress?jobid=gone")
    assert response.status_code == 404
    assert response.get_json()["state"] == "FAILURE"
    assert fake_client.get("/progress").status_code == 404


def test_failed_job_reports_its_error(fake_client: FlaskClient, fake_redis: Redis, fake_app: Flask) -> None:
    job = jobs.queue(fake_redis, "default").enqueue("plotjobs.queue.tasks.generate", "chart", {"kind": "radar"})
    run_queued_jobs(fake_redis)
    status = fake_client.get(f"/api/jobs/{job.id}").get_json()
    assert status["state"] == "failed"
    assert status["error"].startswith("InvalidSpecError: invalid chart spec: kind: Input should be 'line', 'bar'")
    tutorial = fake_client.get(f"/progress?jobid={job.id}").get_json()
    assert tutorial["state"] == "FAILURE" and tutorial["error"]


def test_pages_render(fake_client: FlaskClient) -> None:
    assert b"chart-form" in fake_client.get("/").data
    page = fake_client.get("/jobs/some-id").get_data(as_text=True)
    assert "/api/jobs/some-id" in page


def test_status_has_the_documented_fields_of_a_queued_job(fake_client: FlaskClient) -> None:
    body = submit(fake_client)
    status = fake_client.get(body["status_url"]).get_json()
    assert set(status) >= {"id", "state", "progress", "stage", "error", "position", "created_at", "started_at",
                           "ended_at"}  # fmt: skip
    assert status["id"] == body["id"] and status["state"] == "queued" and status["stage"] == "queued"
    assert status["progress"] == 0.0 and status["error"] is None and status["position"] == 0
    assert status["created_at"] and status["started_at"] is None and status["ended_at"] is None


def test_exception_text_keeps_type_and_whole_message() -> None:
    traceback_text = (
        "Traceback (most recent call last):\n"
        '  File "/x/rq/job.py", line 1, in perform\n'
        "    return self.func()\n"
        "           ^^^^^^^^^\n"
        "rq.timeouts.JobTimeoutException: Task exceeded maximum timeout value (5 seconds)\n"
    )
    assert exception_text(traceback_text) == "JobTimeoutException: Task exceeded maximum timeout value (5 seconds)"
    assert exception_text("ValueError: boom\n  detail") == "ValueError: boom\n  detail"


def test_responses_carry_strict_headers(fake_client: FlaskClient) -> None:
    for response in (fake_client.get("/"), fake_client.post("/api/jobs"), fake_client.get("/api/jobs/x")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert fake_client.get("/api/jobs/x").headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_debug_mode_stays_off_even_when_flask_debug_asks_for_it(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app(Settings(redis_url="redis://fake", secret_key="k"), redis=fake_redis)
    assert not app.debug

    @app.get("/api/boom")
    def boom() -> str:
        raise RuntimeError("internal detail")

    response = app.test_client().get("/api/boom")
    assert response.status_code == 500 and response.is_json
    assert "internal detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_the_workers_list_is_503_json_with_retry_after_when_redis_is_down() -> None:
    client = create_app(Settings(redis_url="redis://127.0.0.1:1/0", secret_key="k")).test_client()
    response = client.get("/api/workers")
    assert response.status_code == 503
    assert response.get_json()["error"] == "service_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_a_report_part_of_a_generator_not_served_is_422_naming_the_part(fake_redis: Redis) -> None:
    app = create_app(Settings(redis_url="redis://fake", generators=("chart", "report")), redis=fake_redis)
    part = {"generator": "vega-lite", "spec": {"vega_lite": {"mark": "point", "data": {"values": [{"a": 1}]}}}}
    response = app.test_client().post("/api/jobs", json={"generator": "report", "parts": [{"text": "a"}, part]})
    assert response.status_code == 422
    body = response.get_json()
    assert (body["error"], body["field"]) == ("unknown_generator", "parts.1.generator")
    assert "'vega-lite'" in body["message"]
    assert not list(fake_redis.scan_iter("rq:job:*"))
