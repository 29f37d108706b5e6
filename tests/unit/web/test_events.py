"""Pushed progress: the hub on a pub/sub the test drives step by step, then streams against a real Redis,
real workers and a real gunicorn."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import Job

from plotjobs import keys
from plotjobs.errors import JobNotFound
from plotjobs.queue import jobs, status, tasks
from plotjobs.web import events as events_module
from plotjobs.web.events import EventHub, HubUnavailable, Watch, open_stream, sse_message
from plotjobs.web.extension import EXTENSION_KEY
from tests.support.processes import running_gunicorn, running_worker
from tests.support.pubsub import FakeClock, ScriptedRedis, published_message, subscribed_message
from tests.support.sse import sse_events, take, take_one
from tests.support.waiting import Background, wait_for

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
JOB_ID = "11111111-1111-4111-8111-111111111111"
OTHER_ID = "22222222-2222-4222-8222-222222222222"
# A stream read waits at most this long for what it expects (a render takes well under a second).
READ_SECONDS = 30
KEEP_ALIVE = ": keep-alive\n\n"


@pytest.fixture
def hub(app: Flask) -> Iterator[EventHub]:
    """The app's event hub, stopped after the test so its thread never outlives it."""
    event_hub: EventHub = app.extensions[EXTENSION_KEY]["events"]
    yield event_hub
    event_hub.stop()


def test_sse_message_is_one_status_event() -> None:
    assert sse_message({"id": "x", "state": "queued"}) == 'event: status\ndata: {"id": "x", "state": "queued"}\n\n'


@pytest.mark.integration
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


@pytest.mark.integration
def test_stream_of_a_finished_job_sends_one_event_and_ends(
    client: FlaskClient, hub: EventHub, redis_url: str, redis_connection: Redis
) -> None:
    body = client.post("/api/jobs", json={"title": "done already"}).get_json()
    with running_worker(redis_url, redis_connection):
        wait_for(lambda: client.get(body["status_url"]).get_json()["state"] == "finished", what="the job to finish")
    response = client.get(body["events_url"], buffered=False)
    events = take(sse_events(response.response), READ_SECONDS)  # type: ignore[arg-type]
    assert [event["state"] for event in events] == ["finished"]


@pytest.mark.integration
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


@pytest.mark.integration
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


@pytest.mark.integration
def test_stream_of_an_unknown_job_is_404_json(client: FlaskClient, hub: EventHub) -> None:
    for job_id in (UNKNOWN_ID, "not-a-job"):
        response = client.get(f"/api/jobs/{job_id}/events")
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"
    assert hub.watched() == 0


@pytest.mark.integration
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


@pytest.mark.integration
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


# The hub on a scripted pub/sub: every wait for a message is answered by the test, on a clock it moves.


class WarningsLogged(logging.Handler):
    """Collects what the events module logs at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


class CountingRead:
    """A status read that says how many times it was called."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"read": self.calls}


@pytest.fixture
def warnings_logged() -> Iterator[WarningsLogged]:
    """The events module's warnings during the test, whatever handlers the app's logging set up."""
    logger = logging.getLogger(events_module.__name__)
    handler, level = WarningsLogged(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scripted(clock: FakeClock) -> ScriptedRedis:
    return ScriptedRedis(clock)


def shut_down(hub: EventHub, scripted: ScriptedRedis) -> None:
    """Stop ``hub`` and wait for its thread, which may be blocked in a wait the test never answered."""
    hub.stop(timeout=0)
    scripted.release_all()
    hub.stop()


@pytest.fixture
def make_hub(scripted: ScriptedRedis, clock: FakeClock) -> Iterator[Callable[..., EventHub]]:
    """Makes hubs on the scripted Redis and the fake clock; each is shut down after the test."""
    hubs: list[EventHub] = []

    def make(**options: Any) -> EventHub:
        hub = EventHub(scripted, clock=clock, **{"poll_interval": 0.25, **options})
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        shut_down(hub, scripted)


def test_a_watch_is_true_once_per_wake_and_false_when_its_wait_times_out() -> None:
    watch = Watch(EventHub(fakeredis.FakeRedis()), JOB_ID)
    assert Background(lambda: watch.wait(0.01)).result(5) is False
    watch.wake()
    watch.wake()
    assert watch.wait(0) is True
    assert watch.wait(0) is False  # two wake-ups before a wait are one


def test_stop_before_any_stream_is_harmless_and_the_hub_still_starts(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis
) -> None:
    hub = make_hub()
    hub.stop()
    hub.watch(JOB_ID)
    assert len(scripted.pubsubs) == 1


def test_the_hub_runs_in_a_named_daemon_thread_whoever_opens_the_first_stream(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis
) -> None:
    hub = make_hub()
    opener = threading.Thread(target=hub.watch, args=(JOB_ID,), daemon=False)
    opener.start()
    opener.join(10)
    (pubsub,) = scripted.pubsubs
    # A daemon thread never keeps a stopping web process alive.
    assert (pubsub.opened_by.name, pubsub.opened_by.daemon) == ("plotjobs-events", True)


def test_watch_waits_for_the_confirmed_subscription_which_later_streams_share(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis
) -> None:
    scripted.confirm = False
    hub = make_hub()
    watching = Background(lambda: hub.watch(JOB_ID))
    pubsub = scripted.opened(1)
    wait = pubsub.next_wait()
    assert pubsub.patterns == ["plotjobs:events:*"]
    assert wait.timeout == 0.5  # short waits, so that stop() is noticed while subscribing
    wait.times_out()
    pubsub.next_wait().receives(subscribed_message())
    watching.result(5, what="watch()")
    hub.watch(OTHER_ID)  # the second stream shares the subscription
    assert scripted.pubsubs == [pubsub]
    assert hub.watched() == 2


def test_watch_raises_hub_unavailable_when_no_subscription_is_confirmed_in_time(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis
) -> None:
    scripted.confirm = False
    hub = make_hub(subscribe_timeout=0.05)
    with pytest.raises(HubUnavailable) as raised:
        Background(lambda: hub.watch(JOB_ID)).result(5, what="watch()")
    assert str(raised.value) == "could not subscribe to job events"


def test_an_unconfirmed_subscription_is_dropped_at_the_subscribe_timeout_and_made_again(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis, clock: FakeClock
) -> None:
    scripted.confirm = False
    hub = make_hub(subscribe_timeout=5.0)
    watching = Background(lambda: hub.watch(JOB_ID))
    first = scripted.opened(1)
    for _ in range(10):  # half a second each: the tenth reaches the timeout
        first.next_wait().times_out()
    second = scripted.opened(2)
    assert clock() == 105.0
    assert first.closed.is_set()
    second.next_wait().receives(subscribed_message())
    watching.result(5, what="watch()")


def test_a_message_wakes_the_watches_of_its_job_only_and_they_share_one_read(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis
) -> None:
    hub = make_hub(poll_interval=600)
    first, second, other = hub.watch(JOB_ID), hub.watch(JOB_ID), hub.watch(OTHER_ID)
    (pubsub,) = scripted.pubsubs
    read = CountingRead()
    assert hub.status(JOB_ID, read) == {"read": 1}
    assert hub.status(JOB_ID, read) == {"read": 1}  # nothing happened since: the read is shared
    pubsub.next_wait().receives(published_message(JOB_ID))
    assert first.wait(5) and second.wait(5)
    pubsub.next_wait()  # the hub is done with the message
    assert not other.wait(0)
    assert hub.status(JOB_ID, read) == {"read": 2}
    assert hub.status(JOB_ID, read) == {"read": 2}
    assert hub.status(OTHER_ID, read) == {"read": 3}


def test_a_job_nobody_watches_is_read_each_time(make_hub: Callable[..., EventHub]) -> None:
    hub = make_hub()
    read = CountingRead()
    assert [hub.status(JOB_ID, read), hub.status(JOB_ID, read)] == [{"read": 1}, {"read": 2}]


def test_the_last_watch_of_a_job_to_close_forgets_its_read(make_hub: Callable[..., EventHub]) -> None:
    hub = make_hub()
    first, second = hub.watch(JOB_ID), hub.watch(JOB_ID)
    read = CountingRead()
    assert hub.status(JOB_ID, read) == {"read": 1}
    first.close()
    assert hub.watched() == 1
    assert hub.status(JOB_ID, read) == {"read": 1}  # the other stream still shares it
    with second:
        pass
    assert hub.watched() == 0
    with hub.watch(JOB_ID):
        assert hub.status(JOB_ID, read) == {"read": 2}  # a new stream reads afresh


def test_the_hub_reads_the_watched_states_every_poll_interval_and_wakes_the_changed(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis, clock: FakeClock
) -> None:
    scripted.set_state(JOB_ID, "queued")
    scripted.set_state(OTHER_ID, "queued")
    hub = make_hub(poll_interval=0.25)
    job, other, gone = hub.watch(JOB_ID), hub.watch(OTHER_ID), hub.watch(UNKNOWN_ID)
    (pubsub,) = scripted.pubsubs
    wait = pubsub.next_wait()
    assert wait.timeout == 0.25  # until the first read, a poll interval after subscribing
    wait.times_out()
    wait = pubsub.next_wait()
    assert wait.timeout == 0.25  # the next read is a whole interval later
    # Never read before, so all of them changed, the one with no job too: its stream must learn it is gone.
    assert job.wait(0) and other.wait(0) and gone.wait(0)
    scripted.set_state(JOB_ID, "started")
    wait.times_out()
    pubsub.next_wait()
    assert clock() == 100.5
    assert job.wait(0)
    assert not other.wait(0) and not gone.wait(0)


def test_the_hub_waits_at_most_a_second_and_messages_do_not_put_off_the_read(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis, clock: FakeClock
) -> None:
    scripted.set_state(JOB_ID, "queued")
    hub = make_hub(poll_interval=2.5)
    job = hub.watch(JOB_ID)
    (pubsub,) = scripted.pubsubs
    wait = pubsub.next_wait()
    assert wait.timeout == 1.0
    wait.times_out()
    wait = pubsub.next_wait()
    assert wait.timeout == 1.0
    wait.receives(published_message(OTHER_ID), after=0.75)
    wait = pubsub.next_wait()
    assert wait.timeout == 0.75  # what is left until the read
    assert not job.wait(0)
    wait.times_out()
    pubsub.next_wait()
    assert clock() == 102.5
    assert job.wait(0)


def test_a_lost_subscription_is_logged_wakes_every_stream_and_is_made_again(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis, warnings_logged: WarningsLogged
) -> None:
    hub = make_hub(poll_interval=0.25)
    job, other = hub.watch(JOB_ID), hub.watch(OTHER_ID)
    (first,) = scripted.pubsubs
    first.next_wait().fails(RedisConnectionError("connection reset"))
    # Whatever was published during the outage, the streams re-read.
    assert job.wait(5) and other.wait(5)
    assert warnings_logged.messages() == ["job events subscription lost (connection reset); resubscribing"]
    second = scripted.opened(2)
    assert first.closed.is_set()
    second.next_wait().receives(published_message(JOB_ID))
    assert job.wait(5)
    assert hub.watched() == 2


def test_stop_waits_for_the_thread_at_most_its_timeout(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis
) -> None:
    hub = make_hub()
    hub.watch(JOB_ID)
    (pubsub,) = scripted.pubsubs
    wait = pubsub.next_wait()  # the thread is now blocked until the test answers
    started = time.monotonic()
    Background(lambda: hub.stop(timeout=0.2)).result(5, what="stop()")
    assert time.monotonic() - started >= 0.2
    assert not pubsub.closed.is_set()
    wait.times_out()
    Background(hub.stop).result(5, what="stop()")
    assert pubsub.closed.is_set()


def test_a_stopped_hub_subscribes_again_for_the_next_stream(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis
) -> None:
    hub = make_hub()
    hub.watch(JOB_ID).close()
    shut_down(hub, scripted)
    Background(lambda: hub.watch(JOB_ID)).result(10, what="watch()")
    assert len(scripted.pubsubs) == 2
    assert scripted.pubsubs[0].closed.is_set()


def test_a_forked_process_subscribes_for_itself(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub()
    hub.watch(JOB_ID)
    # The child of a fork has the hub object but not its thread.
    monkeypatch.setattr(events_module, "os", SimpleNamespace(getpid=lambda: os.getpid() + 1))
    hub.watch(JOB_ID)
    assert len(scripted.pubsubs) == 2


def test_a_malformed_id_is_refused_without_subscribing(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis
) -> None:
    hub = make_hub()
    with pytest.raises(JobNotFound, match="'not-a-job'"):
        open_stream(scripted, hub, "not-a-job")
    assert scripted.pubsubs == []


def test_an_unknown_job_has_no_stream_and_leaves_no_watch(make_hub: Callable[..., EventHub]) -> None:
    hub = make_hub()
    with pytest.raises(JobNotFound, match=UNKNOWN_ID):
        open_stream(hub.connection, hub, UNKNOWN_ID)
    assert hub.watched() == 0


def test_a_stream_ends_with_a_warning_when_redis_fails(
    make_hub: Callable[..., EventHub], scripted: ScriptedRedis, warnings_logged: WarningsLogged
) -> None:
    hub = make_hub(poll_interval=600)
    job = jobs.queue(scripted, "default").enqueue("plotjobs.queue.tasks.generate", "chart", {})
    stream = open_stream(scripted, hub, job.id)
    assert status_of(take_one(stream, READ_SECONDS))["state"] == "queued"
    scripted.server.connected = False
    with pytest.raises(RedisConnectionError) as failure:
        scripted.ping()
    scripted.pubsubs[0].next_wait().receives(published_message(job.id))
    assert take(stream, READ_SECONDS) == []
    assert warnings_logged.messages() == [f"ending the event stream of job {job.id}: {failure.value}"]
    assert hub.watched() == 0


# Streams in-process against a real Redis, with a real hub that polls only when the test lets it.


@pytest.fixture
def real_hub(redis_connection: Redis) -> Iterator[EventHub]:
    """A hub on the real Redis that never reads states on its own during a test."""
    hub = EventHub(redis_connection, poll_interval=600)
    yield hub
    hub.stop()


def status_of(block: str) -> dict[str, Any]:
    """The status a stream's ``status`` event carries."""
    event, data, rest = block.split("\n", 2)
    assert (event, rest) == ("event: status", "\n"), block
    assert data.startswith("data: "), block
    parsed: dict[str, Any] = json.loads(data.removeprefix("data: "))
    return parsed


def enqueue(connection: Redis) -> Job:
    return jobs.queue(connection, "default").enqueue("plotjobs.queue.tasks.generate", "chart", {})


def cancel(connection: Redis, job_id: str) -> None:
    """Cancel a job and say so on its channel, as the API does."""
    job = jobs.fetch(connection, job_id)
    job.cancel()
    tasks.announce(job)


@pytest.mark.integration
def test_a_stream_sends_the_status_then_each_change_and_ends_with_the_job(
    redis_connection: Redis, real_hub: EventHub
) -> None:
    job = enqueue(redis_connection)
    stream = open_stream(redis_connection, real_hub, job.id)
    first = take_one(stream, READ_SECONDS)
    assert first == sse_message(status.describe(jobs.fetch(redis_connection, job.id)))
    tasks.report_progress(jobs.fetch(redis_connection, job.id), 0.5, "drawing")
    second = status_of(take_one(stream, READ_SECONDS))
    assert (second["state"], second["progress"], second["stage"]) == ("queued", 0.5, "drawing")
    tasks.announce(jobs.fetch(redis_connection, job.id))  # nothing changed: nothing is sent
    cancel(redis_connection, job.id)
    assert [status_of(block)["state"] for block in take(stream, READ_SECONDS)] == ["canceled"]
    assert real_hub.watched() == 0


@pytest.mark.integration
def test_an_idle_stream_sends_keep_alive_comments_and_goes_on(redis_connection: Redis, real_hub: EventHub) -> None:
    job = enqueue(redis_connection)
    stream = open_stream(redis_connection, real_hub, job.id, keepalive=0.05)
    assert status_of(take_one(stream, READ_SECONDS))["state"] == "queued"
    assert take_one(stream, READ_SECONDS) == KEEP_ALIVE
    cancel(redis_connection, job.id)
    rest = [block for block in take(stream, READ_SECONDS) if block != KEEP_ALIVE]
    assert [status_of(block)["state"] for block in rest] == ["canceled"]


@pytest.mark.integration
def test_a_stream_ends_when_its_job_is_deleted(redis_connection: Redis, real_hub: EventHub) -> None:
    job = enqueue(redis_connection)
    stream = open_stream(redis_connection, real_hub, job.id)
    take_one(stream, READ_SECONDS)
    job.delete()
    redis_connection.publish(keys.events(job.id), "{}")
    assert take(stream, READ_SECONDS) == []
    assert real_hub.watched() == 0
