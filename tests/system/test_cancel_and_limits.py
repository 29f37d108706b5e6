"""Cancel (queued and running), backpressure on queue depth, and per-client limits, on a real Redis."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import psutil
import pytest
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.queue import interest, jobs
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app
from plotjobs.worker import recovery
from plotjobs.worker.render_worker import build_worker
from tests.support.processes import running_worker
from tests.support.waiting import wait_for
from tests.system.test_faults import BIG, FAST, FAST_SETTINGS, freeze, wait_until_started, watching

pytestmark = pytest.mark.integration


def cancel(client: FlaskClient, submitted: dict[str, Any]) -> TestResponse:
    """DELETE the job a submission answered, with that submission's cancel token."""
    return client.delete(submitted["status_url"], headers={"X-Cancel-Token": submitted["cancel_token"]})


def test_cancel_a_queued_job(client: FlaskClient, redis_connection: Redis) -> None:
    body = client.post("/api/jobs").get_json()
    response = cancel(client, body)
    assert response.status_code == 200
    assert response.get_json()["state"] == "canceled" and response.get_json()["withdrawn"] is False
    assert response.get_json()["id"] == body["id"]
    assert jobs.queue(redis_connection, "default").count == 0
    assert client.get(body["status_url"]).get_json()["state"] == "canceled"
    again = cancel(client, body)
    assert again.status_code == 409
    assert again.get_json() == {
        "error": "already_ended", "message": f"job {body['id']} has already ended: it is canceled",
        "state": "canceled"}  # fmt: skip
    assert client.get(body["result_url"]).status_code == 409


def test_cancel_unknown_or_malformed_is_404(client: FlaskClient) -> None:
    assert client.delete("/api/jobs/00000000-0000-4000-8000-000000000000").status_code == 404
    response = client.delete("/api/jobs/rq:job:x")
    assert response.status_code == 404 and response.is_json


def test_cancel_a_finished_job_is_409(client: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    body = client.post("/api/jobs").get_json()
    with running_worker(redis_url, redis_connection, **FAST):
        wait_for(lambda: client.get(body["status_url"]).get_json()["state"] == "finished", what="the job to finish")
    response = cancel(client, body)
    assert response.status_code == 409 and response.get_json()["state"] == "finished"


def test_cancel_a_running_job_stops_it(client: FlaskClient, redis_url: str, redis_connection: Redis) -> None:
    job_id = jobs.new_job_id()
    answers: list[Any] = []
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, **FAST) as supervisor,
    ):
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        token = interest.record(redis_connection, Settings(), job_id)
        wait_until_started(events)
        [worker] = psutil.Process(supervisor.pid).children()
        freeze(worker)  # mid-render: it can only stop, not finish first
        request = threading.Thread(
            target=lambda: answers.append(client.delete(f"/api/jobs/{job_id}", headers={"X-Cancel-Token": token}))
        )
        request.start()
        wait_for(lambda: redis_connection.exists(keys.cancel(job_id)), what="the cancel request")
        worker.send_signal(signal.SIGCONT)
        request.join(timeout=30)
        after = client.get(f"/api/jobs/{job_id}").get_json()
        next_job = client.post("/api/jobs").get_json()
        wait_for(lambda: client.get(next_job["status_url"]).get_json()["state"] == "finished",
                 what="the worker to carry on")  # fmt: skip
    [response] = answers
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["state"] == "stopped"
    assert after["state"] == "stopped"
    assert after["error"] == "JobCanceled: canceled on request"
    assert 0 < redis_connection.ttl(keys.cancel(job_id)) <= keys.CANCEL_TTL


def test_a_full_queue_answers_429_and_keeps_what_is_queued(settings: Settings, redis_connection: Redis) -> None:
    app = create_app(settings.replace(max_queue_depth=2), redis=redis_connection)
    client = app.test_client()
    accepted = [client.post("/api/jobs").get_json()["id"] for _ in range(2)]
    response = client.post("/api/jobs")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["error"] == "queue_full" and body["limit"] == 2
    assert "MAX_QUEUE_DEPTH" in body["message"]
    assert jobs.queue(redis_connection, "default").get_job_ids() == accepted


def test_one_client_cannot_hold_more_than_its_share(settings: Settings, redis_connection: Redis) -> None:
    app = create_app(settings.replace(max_jobs_per_client=2), redis=redis_connection)
    client = app.test_client()
    first = client.post("/api/jobs").get_json()
    client.post("/api/jobs")
    response = client.post("/api/jobs")
    assert response.status_code == 429
    assert response.get_json()["error"] == "too_many_jobs"
    assert "MAX_JOBS_PER_CLIENT is 2" in response.get_json()["message"]
    assert response.headers["Retry-After"]
    other = client.post("/api/jobs", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 202
    # An ended job frees its place (after the grace a reservation keeps, here backdated).
    cancel(client, first)
    redis_connection.zadd("plotjobs:client:127.0.0.1", {first["id"]: 0})
    assert client.post("/api/jobs").status_code == 202
    assert redis_connection.ttl("plotjobs:client:127.0.0.1") > 0


def test_forwarded_for_counts_only_behind_a_configured_proxy(settings: Settings, redis_connection: Redis) -> None:
    forged = {"X-Forwarded-For": "203.0.113.9"}
    direct = create_app(settings.replace(max_jobs_per_client=1), redis=redis_connection).test_client()
    assert direct.post("/api/jobs", headers=forged).status_code == 202
    assert direct.post("/api/jobs", headers={"X-Forwarded-For": "203.0.113.10"}).status_code == 429
    proxied = create_app(settings.replace(max_jobs_per_client=1, proxy_hops=1), redis=redis_connection).test_client()
    assert proxied.post("/api/jobs", headers=forged).status_code == 202
    assert proxied.post("/api/jobs", headers=forged).status_code == 429
    assert proxied.post("/api/jobs", headers={"X-Forwarded-For": "203.0.113.10"}).status_code == 202


def test_the_tutorial_entry_obeys_the_same_limits(settings: Settings, redis_connection: Redis) -> None:
    client = create_app(settings.replace(max_jobs_per_client=1), redis=redis_connection).test_client()
    assert client.get("/image_page").status_code == 200
    response = client.get("/image_page")
    assert response.status_code == 429 and response.get_json()["error"] == "too_many_jobs"


def test_every_key_plotjobs_creates_expires(client: FlaskClient, redis_connection: Redis) -> None:
    first = client.post("/api/jobs").get_json()
    client.post("/api/jobs")
    cancel(client, first)
    queue = jobs.queue(redis_connection, "default")
    redis_connection.lmove(queue.key, queue.intermediate_queue_key)  # a stranded job leaves a first-seen mark
    recovery.beat(redis_connection, "some-worker")
    recovery.sweep(redis_connection, FAST_SETTINGS)
    keys = list(redis_connection.scan_iter("plotjobs:*"))
    assert {key.decode().split(":")[1] for key in keys} >= {"inflight", "client", "cancel", "heartbeats", "limbo",
                                                            "sweeper", "interest"}  # fmt: skip
    assert all(redis_connection.ttl(key) > 0 for key in keys), {key: redis_connection.ttl(key) for key in keys}


def test_one_job_at_a_time_is_never_refused(settings: Settings, redis_url: str, redis_connection: Redis) -> None:
    client = create_app(settings.replace(max_jobs_per_client=3), redis=redis_connection).test_client()
    with running_worker(redis_url, redis_connection, **FAST):
        for _ in range(8):
            response = client.post("/api/jobs")
            assert response.status_code == 202, response.get_json()
            status_url = response.get_json()["status_url"]
            wait_for(lambda url=status_url: client.get(url).get_json()["state"] == "finished", what="the job to finish")


SHARED = {"title": "wanted twice", "seed": 3, "start": "2026-01-01"}


def refusals(client: FlaskClient, status_url: str) -> list[tuple[int, str]]:
    """What a DELETE without a token, and one with a made-up token, answer."""
    answers = [client.delete(status_url), client.delete(status_url, headers={"X-Cancel-Token": "guessed"})]
    return [(answer.status_code, answer.get_json()["error"]) for answer in answers]


def test_a_shared_job_is_canceled_only_by_its_last_submitter(client: FlaskClient, redis_connection: Redis) -> None:
    first = client.post("/api/jobs", json=SHARED).get_json()
    second = client.post("/api/jobs", json=SHARED, environ_base={"REMOTE_ADDR": "192.0.2.7"}).get_json()
    assert second["id"] == first["id"] and second["reused"] and first["cancel_token"] != second["cancel_token"]
    stored = redis_connection.smembers(keys.interest(first["id"]))
    assert len(stored) == 2 and first["cancel_token"].encode() not in stored
    assert redis_connection.ttl(keys.interest(first["id"])) > 0

    assert refusals(client, first["status_url"]) == [(403, "cancel_token_required"), (403, "cancel_token_invalid")]
    assert client.get(first["status_url"]).get_json()["state"] == "queued"
    assert redis_connection.scard(keys.interest(first["id"])) == 2

    withdrawn = cancel(client, first)
    assert withdrawn.status_code == 200
    assert (withdrawn.get_json()["withdrawn"], withdrawn.get_json()["state"]) == (True, "queued")
    assert cancel(client, first).get_json()["error"] == "cancel_token_invalid"  # a token withdraws once
    assert jobs.queue(redis_connection, "default").get_job_ids() == [first["id"]]

    canceled = cancel(client, second)
    assert canceled.status_code == 200
    assert (canceled.get_json()["withdrawn"], canceled.get_json()["state"]) == (False, "canceled")


def test_a_job_another_submitter_withdrew_from_still_finishes(
    client: FlaskClient, redis_url: str, redis_connection: Redis
) -> None:
    first = client.post("/api/jobs", json=SHARED).get_json()
    second = client.post("/api/jobs", json=SHARED).get_json()
    assert cancel(client, first).get_json()["withdrawn"] is True
    with running_worker(redis_url, redis_connection, **FAST):
        wait_for(lambda: client.get(first["status_url"]).get_json()["state"] == "finished", what="the job to finish")
    assert client.get(second["result_url"]).status_code == 200
    assert cancel(client, second).status_code == 409


def test_a_job_of_its_own_is_canceled_by_its_token_in_the_query(client: FlaskClient) -> None:
    own = client.post("/api/jobs").get_json()
    assert refusals(client, own["status_url"]) == [(403, "cancel_token_required"), (403, "cancel_token_invalid")]
    response = client.delete(f"{own['status_url']}?token={own['cancel_token']}")
    assert response.status_code == 200
    assert (response.get_json()["withdrawn"], response.get_json()["state"]) == (False, "canceled")


@pytest.mark.parametrize(
    ("proxy_hops", "answers"),
    [
        # 0: the header is ignored; every request comes from the test client's own address.
        (0, [("203.0.113.1, 203.0.113.2", 202), ("203.0.113.3, 203.0.113.4", 429)]),
        # 1: the client is the last address (the one our proxy appended).
        (1, [("203.0.113.1, 203.0.113.2", 202), ("203.0.113.3, 203.0.113.2", 429), ("203.0.113.1, 203.0.113.4", 202)]),
        # 2: the client is the second to last (the first of our two proxies saw it).
        (2, [("203.0.113.1, 203.0.113.2", 202), ("203.0.113.1, 203.0.113.4", 429), ("203.0.113.3, 203.0.113.2", 202)]),
    ],
)
def test_proxy_hops_picks_the_client_out_of_several_forwarded_addresses(
    settings: Settings, redis_connection: Redis, proxy_hops: int, answers: list[tuple[str, int]]
) -> None:
    app = create_app(settings.replace(max_jobs_per_client=1, proxy_hops=proxy_hops), redis=redis_connection)
    client = app.test_client()
    seen = [(forwarded, client.post("/api/jobs", headers={"X-Forwarded-For": forwarded}).status_code)
            for forwarded, _ in answers]  # fmt: skip
    assert seen == answers


def test_delete_of_a_running_job_that_has_not_stopped_within_stop_wait_seconds_is_202(
    client: FlaskClient, redis_connection: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "STOP_WAIT_SECONDS", 0.3)
    submitted = client.post("/api/jobs").get_json()
    queue = jobs.queue(redis_connection, "default")
    redis_connection.lrem(queue.key, 0, submitted["id"])
    redis_connection.hset(f"rq:job:{submitted['id']}", "status", "started")  # a worker that never stops
    asked_at = time.monotonic()
    response = cancel(client, submitted)
    answered_after = time.monotonic() - asked_at
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["state"] == "started" and response.get_json()["withdrawn"] is False
    assert 0.3 <= answered_after < 0.3 + 3, answered_after  # STOP_WAIT_SECONDS + 3 s margin
    assert redis_connection.exists(keys.cancel(submitted["id"])), "the worker is still asked to stop"


def test_a_failed_job_is_kept_for_failure_ttl_then_expires(settings: Settings, redis_connection: Redis) -> None:
    short = settings.replace(failure_ttl=120)
    invalid = ChartSpec.model_construct(**{**ChartSpec().model_dump(), "width": 5})  # the worker's check refuses it
    job = jobs.enqueue_render(redis_connection, short, invalid)
    build_worker(redis_connection, short).work(burst=True)
    assert job.get_status(refresh=True) == "failed"
    assert 0 < redis_connection.ttl(job.key) <= 120
