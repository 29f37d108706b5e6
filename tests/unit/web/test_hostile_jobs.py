"""Hostile bytes in a job's record answer clearly through the API: never a 5xx, never code run."""

from __future__ import annotations

import base64
import pickle
import zlib
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from redis import Redis

from plotjobs.queue.serialization import MAX_FIELD_BYTES

ROUTES = ("", "/spec", "/result")


class _Marker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.path}",)


def _submit(client: FlaskClient) -> str:
    body = client.post("/api/jobs", json={"title": "honest"}).get_json()
    return str(body["id"])


def _bomb() -> bytes:
    return zlib.compress(b"[" * (MAX_FIELD_BYTES * 2))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", b"not-a-state"),
        ("created_at", b"yesterday-ish"),
        ("enqueued_at", b"\xff\xfe"),
        ("timeout", b"forever"),
        ("result_ttl", b"many"),
        ("failure_ttl", b"[]"),
        ("dependency_ids", b"{not json"),
        ("retry_intervals", b"nope"),
        ("data", b"garbage that is not zlib nor JSON"),
        ("data", None),  # a zip bomb, filled in below
        ("meta", None),  # a pickle, filled in below
        ("meta", b'{"progress": "lots", "stage": 7}'),
        ("exc_info", None),  # a zip bomb
    ],
)
def test_a_hostile_field_is_a_clear_answer_on_every_job_route(
    client: FlaskClient, redis_connection: Redis, tmp_path: Path, field: str, value: bytes | None
) -> None:
    marker = tmp_path / "ran"
    job_id = _submit(client)
    if value is None:
        value = pickle.dumps(_Marker(marker)) if field == "meta" else _bomb()
    redis_connection.hset(f"rq:job:{job_id}", field, value)
    for route in ROUTES:
        response = client.get(f"/api/jobs/{job_id}{route}", buffered=True)
        assert response.status_code < 500, (field, route, response.get_data(as_text=True)[:300])
        if response.status_code >= 400:
            assert response.is_json and response.get_json()["error"], (field, route)
    assert not marker.exists()
    # The job next door is unaffected.
    assert client.get(f"/api/jobs/{_submit(client)}").status_code == 200


def test_a_hostile_result_entry_reads_as_no_result(client: FlaskClient, redis_connection: Redis) -> None:
    job_id = _submit(client)
    redis_connection.hset(f"rq:job:{job_id}", "status", "finished")
    bad_value = base64.b64encode(b"\x80\x04not json").decode()
    redis_connection.xadd(f"rq:results:{job_id}", {"type": "1", "return_value": bad_value})
    assert client.get(f"/api/jobs/{job_id}").get_json()["state"] == "finished"
    result = client.get(f"/api/jobs/{job_id}/result")
    assert result.status_code == 404 and result.get_json()["error"] == "result_expired"
    redis_connection.xadd(f"rq:results:{job_id}", {"type": "2", "exc_string": base64.b64encode(_bomb()).decode()})
    redis_connection.hset(f"rq:job:{job_id}", "status", "failed")
    failed = client.get(f"/api/jobs/{job_id}")
    assert failed.status_code == 200 and failed.get_json()["error"] is None


def test_an_unreadable_job_says_why(client: FlaskClient, redis_connection: Redis) -> None:
    job_id = _submit(client)
    redis_connection.hset(f"rq:job:{job_id}", "status", "not-a-state")
    answer = client.get(f"/api/jobs/{job_id}")
    assert answer.status_code == 409
    assert answer.get_json()["error"] == "unreadable_job" and job_id in answer.get_json()["message"]


def test_hostile_values_in_our_own_keys_answer_clearly(client: FlaskClient, redis_connection: Redis) -> None:
    pending = "0b7c1cde-8f44-4b5e-9a56-1f4f0a1b2c3d"
    redis_connection.set(f"plotjobs:accepted:{pending}", b"\x80not json")
    status = client.get(f"/api/jobs/{pending}")
    assert status.status_code == 200 and status.get_json()["stage"] == "submitted"
    for key in redis_connection.scan_iter("plotjobs:spec:*"):
        redis_connection.set(key, b"many")
    seeded = client.post("/api/jobs", json={"seed": 7})
    assert seeded.status_code in (200, 202)
    for key in redis_connection.scan_iter("plotjobs:spec:*"):
        redis_connection.set(key, b"many")
    again = client.post("/api/jobs", json={"seed": 7})
    assert again.status_code in (200, 202) and again.get_json()["id"]
    redis_connection.hset(
        "plotjobs:metrics:jobs", mapping={"submitted|line": "lots", "render_seconds|line|bucket=0.1": "3"}
    )
    redis_connection.hset("plotjobs:metrics:jobs", "render_seconds|line|bucket=0.5", b"\xff")
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert 'plotjobs_jobs_finished_total{kind="line"} 3.0' in scrape.get_data(as_text=True)
