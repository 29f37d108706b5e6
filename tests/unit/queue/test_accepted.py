"""Submissions accepted through RabbitMQ: a marker gives them a queued status until RQ has them."""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient
from redis import Redis

from plotjobs import keys
from plotjobs.errors import JobNotFound
from plotjobs.queue import accepted, jobs


def test_an_accepted_job_has_a_queued_status_until_rq_has_it(fake_redis: Redis) -> None:
    job_id = str(uuid.uuid4())
    assert accepted.status(fake_redis, job_id) is None
    accepted.record(fake_redis, job_id)
    assert 0 < fake_redis.ttl(keys.accepted(job_id)) <= keys.ACCEPTED_TTL
    status = accepted.status(fake_redis, job_id)
    assert status is not None
    assert (status["id"], status["state"], status["stage"], status["progress"]) == (job_id, "queued", "submitted", 0.0)
    assert status["created_at"]
    assert accepted.status(fake_redis, job_id.upper()) is None
    accepted.forget(fake_redis, job_id)
    assert accepted.status(fake_redis, job_id) is None


def test_a_hand_written_marker_still_gives_a_status(fake_redis: Redis) -> None:
    job_id = str(uuid.uuid4())
    fake_redis.set(keys.accepted(job_id), b"not json")
    status = accepted.status(fake_redis, job_id)
    assert status is not None and status["state"] == "queued" and status["created_at"] is None


def test_fetch_or_pending_gives_the_pending_status_then_not_found(fake_redis: Redis) -> None:
    job_id = str(uuid.uuid4())
    accepted.record(fake_redis, job_id)
    pending = accepted.fetch_or_pending(fake_redis, job_id)
    assert isinstance(pending, dict) and pending["id"] == job_id
    accepted.forget(fake_redis, job_id)
    with pytest.raises(JobNotFound):
        accepted.fetch_or_pending(fake_redis, job_id)


def test_fetch_or_pending_prefers_the_job_rq_holds(fake_redis: Redis, fake_client: FlaskClient) -> None:
    job_id = fake_client.post("/api/jobs", json={"title": "held"}).get_json()["id"]
    accepted.record(fake_redis, job_id)
    found = accepted.fetch_or_pending(fake_redis, job_id)
    assert not isinstance(found, dict) and found.id == jobs.fetch(fake_redis, job_id).id
