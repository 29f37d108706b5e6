"""Large data through the API: stored apart from the job, loaded by the worker, given back by the spec endpoint."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from flask.testing import FlaskClient
from redis import Redis
from rq.job import Job

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.queue import data, jobs
from plotjobs.web import create_app
from tests.unit.web.test_api import run_queued_jobs
from tests.unit.web.test_embed import make_app
from tests.unit.web.test_spec_input import post_form

POINTS = 50_000
# A job hash names its data by reference: a few kB whatever the data's size.
MAX_JOB_DATA_BYTES = 2_000


def _large_spec(points: int = POINTS) -> dict[str, Any]:
    y = np.random.default_rng(7).normal(size=points).tolist()
    return {"kind": "line", "title": "large", "series": [{"x": list(range(points)), "y": y}]}


def _job_data_bytes(connection: Redis, job_id: str) -> int:
    return int(connection.hstrlen(Job.key_for(job_id), "data"))


def _data_keys(connection: Redis) -> list[bytes]:
    return list(connection.scan_iter(keys.DATA_PREFIX + "*"))


def test_large_json_data_is_stored_apart_rendered_and_given_back_inline(
    fake_client: FlaskClient, fake_redis: Redis
) -> None:
    spec = _large_spec()
    submitted = fake_client.post("/api/jobs", json=spec)
    assert submitted.status_code == 202, submitted.get_json()
    job_id = submitted.get_json()["id"]
    assert _job_data_bytes(fake_redis, job_id) < MAX_JOB_DATA_BYTES
    (data_key,) = _data_keys(fake_redis)
    assert fake_redis.ttl(data_key) > Settings().failure_ttl
    run_queued_jobs(fake_redis)
    status = fake_client.get(f"/api/jobs/{job_id}").get_json()
    assert status["state"] == "finished", status
    assert fake_client.get(f"/api/jobs/{job_id}/result").data.startswith(b"\x89PNG")
    given_back = fake_client.get(f"/api/jobs/{job_id}/spec").get_json()
    assert given_back["series"][0]["y"] == spec["series"][0]["y"]
    assert given_back["series"][0]["x"] == [float(value) for value in spec["series"][0]["x"]]
    # The page's "Try again" posts the spec it read: the same data names the same finished job.
    again = fake_client.post("/api/jobs", json=given_back)
    assert (again.status_code, again.get_json()["id"]) == (200, job_id)
    assert len(_data_keys(fake_redis)) == 1


def test_a_job_whose_data_expired_before_it_started_fails_saying_so(
    fake_client: FlaskClient, fake_redis: Redis
) -> None:
    job_id = fake_client.post("/api/jobs", json=_large_spec()).get_json()["id"]
    for key in _data_keys(fake_redis):
        fake_redis.delete(key)
    run_queued_jobs(fake_redis)
    status = fake_client.get(f"/api/jobs/{job_id}").get_json()
    assert status["state"] == "failed" and "data expired before it started" in status["error"]
    answer = fake_client.get(f"/api/jobs/{job_id}/spec")
    assert (answer.status_code, answer.get_json()["error"]) == (410, "data_expired")


def test_the_worker_pushes_the_datas_expiry_past_the_jobs_record(fake_client: FlaskClient, fake_redis: Redis) -> None:
    fake_client.post("/api/jobs", json=_large_spec())
    (data_key,) = _data_keys(fake_redis)
    fake_redis.expire(data_key, 5)
    run_queued_jobs(fake_redis)
    assert fake_redis.ttl(data_key) > data.lifetime(Settings()) - 60


def test_a_large_csv_upload_charts_and_keeps_the_job_small(fake_client: FlaskClient, fake_redis: Redis) -> None:
    rows = "".join(f"2024-01-01T00:00:{row % 60:02d},{row * 0.25}\n" for row in range(POINTS))
    answer = post_form(fake_client, {"series": [{"x_column": "t", "y_column": "v"}]}, ("t,v\n" + rows).encode())
    assert answer.status_code == 202, answer.get_json()
    job_id = answer.get_json()["id"]
    assert _job_data_bytes(fake_redis, job_id) < MAX_JOB_DATA_BYTES
    run_queued_jobs(fake_redis)
    assert fake_client.get(f"/api/jobs/{job_id}").get_json()["state"] == "finished"
    given_back = fake_client.get(f"/api/jobs/{job_id}/spec").get_json()["series"][0]
    assert given_back["x"][0] == "2024-01-01T00:00:00" and given_back["y"][-1] == (POINTS - 1) * 0.25
    assert given_back["name"] == "v"


def test_a_bad_cell_deep_in_a_large_csv_is_422_naming_row_and_column(
    fake_client: FlaskClient, fake_redis: Redis
) -> None:
    rows = [f"{row},{row}" for row in range(1, POINTS + 1)]
    rows[42_000 - 1] = "42000,n/a"
    answer = post_form(
        fake_client, {"series": [{"x_column": "x", "y_column": "y"}]}, ("x,y\n" + "\n".join(rows)).encode()
    )
    body = answer.get_json()
    assert (answer.status_code, body["field"]) == (422, "csv")
    assert body["message"] == "csv: data row 42000 of column 'y' is 'n/a', not a number"
    assert not list(fake_redis.scan_iter("rq:*")) and not _data_keys(fake_redis)


def test_a_body_over_the_limit_is_413_with_the_limit(fake_redis: Redis) -> None:
    client = create_app(Settings(redis_url="redis://fake", max_request_bytes=50_000), redis=fake_redis).test_client()
    answer = client.post("/api/jobs", json=_large_spec(10_000))
    body = answer.get_json()
    assert (answer.status_code, body["error"], body["limit"]) == (413, "request_too_large", 50_000)
    assert "MAX_REQUEST_BYTES" in body["message"]
    assert not list(fake_redis.scan_iter("*"))


def test_a_stored_chart_references_its_data_and_each_view_keeps_both(fake_redis: Redis) -> None:
    client = make_app(fake_redis).test_client()
    body = client.post("/api/charts", json=_large_spec()).get_json()
    stored = json.loads(fake_redis.get(keys.chart(body["id"])) or b"{}")
    assert len(json.dumps(stored)) < MAX_JOB_DATA_BYTES
    reference = stored["$data"]
    assert fake_redis.ttl(reference["key"]) > 364 * 24 * 3600
    fake_redis.expire(reference["key"], 100)
    fake_redis.expire(keys.chart(body["id"]), 100)
    assert client.get(body["path"]).status_code == 503  # still rendering
    assert fake_redis.ttl(reference["key"]) > 364 * 24 * 3600
    assert fake_redis.ttl(keys.chart(body["id"])) > 364 * 24 * 3600
    run_queued_jobs(fake_redis)
    assert client.get(body["path"]).mimetype == "image/png"
    again = client.post("/api/charts", json=_large_spec()).get_json()
    assert (again["id"], again["created"]) == (body["id"], False)


def test_the_job_layer_stores_any_generators_arrays_by_reference(fake_redis: Redis) -> None:
    from plotjobs.spec.chart import ChartSpec

    spec = ChartSpec.model_validate(_large_spec())
    job = jobs.enqueue_render(fake_redis, Settings(redis_url="redis://fake"), spec)
    name, document, reference = job.args
    assert name == "chart" and document["series"][0]["y"] == {"$array": 1}
    assert data.is_reference(reference) and fake_redis.exists(reference["key"])


GARBAGE_BLOB = data.MAGIC + b"\x05\x00\x00\x00{}{}{garbage"


def test_a_jobs_unreadable_stored_data_is_409_not_a_500(fake_client: FlaskClient, fake_redis: Redis) -> None:
    job_id = fake_client.post("/api/jobs", json=_large_spec()).get_json()["id"]
    (data_key,) = _data_keys(fake_redis)
    fake_redis.set(data_key, GARBAGE_BLOB)
    answer = fake_client.get(f"/api/jobs/{job_id}/spec")
    assert (answer.status_code, answer.get_json()["error"]) == (409, "unreadable_job")
    assert "stored data cannot be read" in answer.get_json()["message"]


def test_a_stored_charts_unreadable_data_is_410_json(fake_redis: Redis) -> None:
    client = make_app(fake_redis).test_client()
    body = client.post("/api/charts", json=_large_spec()).get_json()
    (data_key,) = _data_keys(fake_redis)
    fake_redis.set(data_key, GARBAGE_BLOB)
    answer = client.get(body["path"])
    assert (answer.status_code, answer.get_json()["error"]) == (410, "data_expired")
    assert "cannot be read" in answer.get_json()["message"]
