"""Pushed progress: the SSE stream against a real Redis, real workers and a real gunicorn."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from plotjobs.queue import jobs
from plotjobs.web import events as events_module
from plotjobs.web.events import EventHub, sse_message
from plotjobs.web.extension import EXTENSION_KEY
from tests.support.processes import running_gunicorn, running_worker
from tests.support.sse import sse_blocks, sse_events, take, take_one
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
# A stream read waits at most this long for what it expects (a render takes well under a second).
READ_SECONDS = 30


@pytest.fixture
def hub(app: Flask) -> Iterator[EventHub]:
    """The app's event hub, stopped after the test so its thread never outlives it."""
    event_hub: EventHub = app.extensions[EXTENSION_KEY]["events"]
    yield event_hub
    event_hub.stop()


def test_sse_message_is_one_status_event() -> None:
    assert sse_message({"id": "x", "state": "queued"}) == 'event: status\ndata: {"id": "x", "state": "queued"}\n\n'


def test_stream_sends_current_status_then_each_update_and_ends_when_finished(
    client: FlaskClient, hub: EventHub, redis_url: str, redis_connection: Redis
) -> None:
    body = client.post("/api/jobs", json={"title": "streamed"}).get_json()
    response = client.get(body["events_url"], buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    stream = sse_events(response.response)  # type: ignore[arg-type]
    first = take_one(stream, READ_SECONDS)
    assert first == client.get(body["status_url"]).get_json()
    assert first["state"] == "queued"

    with running_worker(redis_url, redis_connection):
        rest = take(stream, READ_SECONDS, what="the stream")  # ends by itself once the job is finished
    response.close()

    assert rest, "the stream sent updates after the first status"
    assert rest[-1]["state"] == "finished" and rest[-1]["progress"] == 1.0
    progress = [first["progress"]] + [event["progress"] for event in rest]
    assert progress == sorted(progress)
    assert any(event["state"] == "started" for event in rest)
    assert hub.watched() == 0


def test_stream_of_a_finished_job_sends_one_event_and_ends(
    client: FlaskClient, hub: EventHub, redis_url: str, redis_connection: Redis
) -> None:
    body = client.post("/api/jobs", json={"title": "done already"}).get_json()
    with running_worker(redis_url, redis_connection):
        wait_for(lambda: client.get(body["status_url"]).get_json()["state"] == "finished", what="the job to finish")
    response = client.get(body["events_url"], buffered=False)
    events = take(sse_events(response.response), READ_SECONDS)  # type: ignore[arg-type]
    assert [event["state"] for event in events] == ["finished"]


def test_stream_ends_with_failed_for_a_job_that_raises(
    client: FlaskClient, hub: EventHub, redis_url: str, redis_connection: Redis
) -> None:
    job = jobs.queue(redis_connection, "default").enqueue("plotjobs.queue.tasks.generate", "chart", {"width": 5})
    response = client.get(f"/api/jobs/{job.id}/events", buffered=False)
    with running_worker(redis_url, redis_connection):
        events = take(sse_events(response.response), READ_SECONDS)  # type: ignore[arg-type]
    assert events[0]["state"] == "queued"
    assert events[-1]["state"] == "failed"
    assert "width" in events[-1]["error"]


def test_stream_notices_a_status_change_nobody_published(
    client: FlaskClient, hub: EventHub, redis_connection: Redis
) -> None:
    body = client.post("/api/jobs", json={"title": "canceled quietly"}).get_json()
    response = client.get(body["events_url"], buffered=False)
    stream = sse_events(response.response)  # type: ignore[arg-type]
    assert take_one(stream, READ_SECONDS)["state"] == "queued"
    # RQ's cancel publishes nothing on our channel: the hub's periodic status read must see it.
    jobs.fetch(redis_connection, body["id"]).cancel()
    assert [event["state"] for event in take(stream, READ_SECONDS)] == ["canceled"]


def test_stream_of_an_unknown_job_is_404_json(client: FlaskClient, hub: EventHub) -> None:
    for job_id in (UNKNOWN_ID, "not-a-job"):
        response = client.get(f"/api/jobs/{job_id}/events")
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"
    assert hub.watched() == 0


@pytest.mark.serving
def test_one_gunicorn_process_holds_many_streams_to_the_end(redis_url: str, redis_connection: Redis) -> None:
    stream_count = 50
    with running_gunicorn(redis_url, workers=1) as base_url:
        submitted = [requests.post(base_url + "/api/jobs", timeout=5).json() for _ in range(5)]
        responses = [
            requests.get(base_url + submitted[number % 5]["events_url"], stream=True, timeout=30)
            for number in range(stream_count)
        ]
        streams = [sse_events(response.iter_content(chunk_size=None)) for response in responses]
        # Every stream has its first event while all of them are open: one process holds them all.
        assert {take_one(stream, READ_SECONDS)["state"] for stream in streams} == {"queued"}

        def last_state(stream: Iterator[dict[str, Any]]) -> str:
            return str(take(stream, READ_SECONDS)[-1]["state"])

        with running_worker(redis_url, redis_connection), ThreadPoolExecutor(stream_count) as pool:
            final_states = list(pool.map(last_state, streams))
        for response in responses:
            response.close()
    assert final_states == ["finished"] * stream_count


def test_the_hub_wakes_every_watch_of_a_job_and_they_share_one_read(redis_connection: Redis) -> None:
    event_hub = EventHub(redis_connection, poll_interval=600)  # no periodic read during the test
    try:
        first, second, other = event_hub.watch(UNKNOWN_ID), event_hub.watch(UNKNOWN_ID), event_hub.watch("other")
        reads: list[int] = []

        def read() -> dict[str, Any]:
            reads.append(1)
            return {"reads": len(reads)}

        assert event_hub.status(UNKNOWN_ID, read) == {"reads": 1}
        redis_connection.publish(f"plotjobs:events:{UNKNOWN_ID}", "{}")
        assert first.wait(10) and second.wait(10)
        assert event_hub.status(UNKNOWN_ID, read) == {"reads": 2}
        assert event_hub.status(UNKNOWN_ID, read) == {"reads": 2}  # the second stream reuses the read
        assert not other.wait(0.05)
        assert event_hub.watched() == 3
        for watch in (first, second, other):
            watch.close()
        assert event_hub.watched() == 0
    finally:
        event_hub.stop()


def test_an_idle_stream_sends_a_keep_alive_comment_after_keepalive_seconds(
    client: FlaskClient, hub: EventHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "KEEPALIVE_SECONDS", 0.2)
    body = client.post("/api/jobs", json={"title": "nobody renders me"}).get_json()
    response = client.get(body["events_url"], buffered=False)
    blocks = sse_blocks(response.response)  # type: ignore[arg-type]
    first, second = take(blocks, READ_SECONDS, count=2)
    response.close()
    assert first.startswith("event: status")
    assert second == ": keep-alive"
