"""Through a real RabbitMQ: the API publishes, the bridge enqueues, real workers render."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import matplotlib.image
import pika
import pytest
import requests
from flask.testing import FlaskClient
from redis import Redis

from plotjobs import keys
from plotjobs.broker import amqp as broker_amqp
from plotjobs.cli.embedded_redis import EmbeddedRedis, free_port
from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app
from tests.support.amqp import (
    amqp_channel,
    in_rq,
    publish,
    queue_state,
    running_bridge,
    start_bridge,
    take_all,
    via_port,
)
from tests.support.processes import post_when_ready, running_dev, running_gunicorn, running_worker, stop, stop_dev
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_for
from tests.system.test_integration import wait_for_end

pytestmark = pytest.mark.integration


@pytest.fixture
def amqp_client(amqp_settings: Settings, redis_connection: Redis) -> Iterator[FlaskClient]:
    """A test client of the app configured with BROKER_URL; its RabbitMQ connections closed after."""
    app = create_app(amqp_settings, redis=redis_connection)
    app.testing = True
    try:
        yield app.test_client()
    finally:
        app.extensions["plotjobs"]["publisher"].close()


def test_api_submission_goes_through_rabbitmq_to_a_finished_png(
    amqp_client: FlaskClient, redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path
) -> None:
    response = amqp_client.post("/api/jobs", json={"title": "via RabbitMQ", "width": 640, "height": 480})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    job_id = body["id"]
    with amqp_channel(amqp_url) as channel:
        assert queue_state(channel, amqp_queue) == (1, 0)
    # Accepted but not yet in RQ: the id already answers, and keeps answering after.
    early = amqp_client.get(body["status_url"]).get_json()
    assert (early["id"], early["state"], early["stage"]) == (job_id, "queued", "submitted")
    assert amqp_client.get(body["result_url"]).status_code == 409

    updates = redis_connection.pubsub()
    updates.subscribe(keys.events(job_id))
    wait_for(lambda: updates.get_message(timeout=0.1), what="the subscription")
    with (
        running_worker(redis_url, redis_connection),
        running_bridge(redis_url, amqp_url, amqp_queue, tmp_path / "bridge.log"),
    ):
        status = wait_for_end(amqp_client, body["status_url"])

    assert status["state"] == "finished", status
    assert status["id"] == job_id
    seen = []
    while (message := updates.get_message(timeout=0.5)) is not None:
        seen.append(json.loads(message["data"])["progress"])
    updates.close()
    assert any(0 < fraction < 1 for fraction in seen), seen
    assert seen == sorted(seen) and seen[-1] == 1.0
    result = amqp_client.get(body["result_url"])
    assert result.status_code == 200 and result.mimetype == "image/png"
    assert matplotlib.image.imread(io.BytesIO(result.data), format="png").shape[:2] == (480, 640)
    assert not redis_connection.exists(keys.accepted(job_id))
    with amqp_channel(amqp_url) as channel:
        assert queue_state(channel, amqp_queue)[0] == 0


def test_with_redis_down_the_web_app_still_accepts_into_rabbitmq(
    amqp_settings: Settings, amqp_url: str, amqp_queue: str
) -> None:
    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=2)
    app = create_app(amqp_settings, redis=unreachable)
    client = app.test_client()
    try:
        response = client.post("/api/jobs", json={"title": "kept by RabbitMQ"})
        status = client.get(response.get_json()["status_url"])
    finally:
        app.extensions["plotjobs"]["publisher"].close()
        unreachable.close()
    assert response.status_code == 202
    assert status.status_code == 503  # Redis is where status lives; the job itself is safe:
    with amqp_channel(amqp_url) as channel:
        [(properties, body)] = take_all(channel, amqp_queue)
    submission = broker_amqp.parse_message(body)
    assert submission.job_id == properties.message_id == response.get_json()["id"]
    assert submission.spec.title == "kept by RabbitMQ"


def test_the_tutorial_page_submits_through_rabbitmq_too(
    amqp_client: FlaskClient, amqp_url: str, amqp_queue: str
) -> None:
    page = amqp_client.get("/image_page").get_data(as_text=True)
    job_id = page.split('data-status-url="/api/jobs/')[1].split('"')[0]
    with amqp_channel(amqp_url) as channel:
        [(properties, body)] = take_all(channel, amqp_queue)
    assert properties.message_id == job_id and properties.delivery_mode == 2
    assert broker_amqp.parse_message(body).job_id == job_id
    assert amqp_client.get(f"/progress?jobid={job_id}").get_json()["state"] == "PENDING"


def test_an_outside_producer_gets_its_chart_and_a_reply(
    client: FlaskClient, redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path
) -> None:
    job_id = str(uuid.uuid4())
    with amqp_channel(amqp_url) as channel:
        broker_amqp.declare_topology(channel, amqp_queue)
        replies = channel.queue_declare(queue="", exclusive=True).method.queue
        message = {"spec": {"title": "from elsewhere", "format": "svg", "seed": 1}, "job_id": job_id}
        publish(channel, amqp_queue, message, reply_to=replies, correlation_id="request-7")
        with (
            running_worker(redis_url, redis_connection),
            running_bridge(redis_url, amqp_url, amqp_queue, tmp_path / "bridge.log"),
        ):
            # The reply says the job is in RQ; before it, the web app does not know an outside job.
            _, properties, reply = wait_for(lambda: (got := channel.basic_get(replies, auto_ack=True))[0] and got)
            status = wait_for_end(client, f"/api/jobs/{job_id}")

    assert status["state"] == "finished", status
    assert properties.correlation_id == "request-7"
    assert json.loads(reply) == {"id": job_id, "state": "queued", "status_path": f"/api/jobs/{job_id}"}
    result = client.get(f"/api/jobs/{job_id}/result")
    assert result.mimetype == "image/svg+xml" and b"from elsewhere" in result.data


def test_invalid_messages_land_in_the_dead_letter_queue_with_the_reason(
    redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path
) -> None:
    invalid = [
        (b"{not json", "the body is not JSON"),
        (b'{"spec": {"width": 5}}', "spec.width: Input should be greater than or equal to 100"),
        (b'{"spce": {}}', "spce: Extra inputs are not permitted"),
        (b'{"job_id": "42"}', "job_id must be a UUID"),
        (
            b'{"generator": "sparkline"}',
            "generator: no generator 'sparkline' is served here (served: chart, vega-lite, report)",
        ),
    ]
    good_id = str(uuid.uuid4())
    dead_queue = broker_amqp.dead_letter_queue(amqp_queue)
    with amqp_channel(amqp_url) as channel:
        broker_amqp.declare_topology(channel, amqp_queue)
        replies = channel.queue_declare(queue="", exclusive=True).method.queue
        for body, _ in invalid:
            publish(channel, amqp_queue, body, reply_to=replies, headers={"x-sender": "test"})
        publish(channel, amqp_queue, {"job_id": good_id})
        with running_bridge(redis_url, amqp_url, amqp_queue, tmp_path / "bridge.log"):
            wait_for(lambda: in_rq(redis_connection, good_id), what="the valid message's job")
            wait_for(lambda: queue_state(channel, dead_queue)[0] == len(invalid), what="the dead letters")
        dead = take_all(channel, dead_queue)
        answers = wait_for(lambda: len(got := take_all(channel, replies)) == len(invalid) and got)
        assert queue_state(channel, amqp_queue)[0] == 0

    assert [body for _, body in dead] == [body for body, _ in invalid]
    for (properties, _), (_, reason) in zip(dead, invalid, strict=True):
        assert reason in properties.headers[broker_amqp.ERROR_HEADER]
        assert properties.headers[broker_amqp.QUEUE_HEADER] == amqp_queue
        assert properties.headers["x-sender"] == "test"
        assert properties.delivery_mode == 2
    assert all(json.loads(body)["error"] == "invalid_message" for _, body in answers)
    assert jobs.queue(redis_connection, "default").job_ids == [good_id]


def test_stopping_and_restarting_the_bridge_loses_and_duplicates_nothing(
    settings: Settings, redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(40)]
    # Already in RQ (as if a bridge enqueued it and died before its ack): it must not be queued again.
    jobs.enqueue_render(redis_connection, settings, ChartSpec(), job_id=ids[0])
    by_message_id = broker_amqp.parse_message(b"{}", message_id="order-1").job_id
    with amqp_channel(amqp_url) as channel:
        broker_amqp.declare_topology(channel, amqp_queue)
        for job_id in ids + ids[:5]:
            publish(channel, amqp_queue, {"spec": {"seed": 1}, "job_id": job_id})
        for _ in range(2):
            publish(channel, amqp_queue, {"spec": {}}, message_id="order-1")
        rq_queue = jobs.queue(redis_connection, "default")

        log = tmp_path / "bridge.log"
        first = start_bridge(redis_url, amqp_url, amqp_queue, log)
        try:
            wait_for(lambda: len(rq_queue.job_ids) >= 3, what="the first bridge to enqueue some")
        finally:
            stop(first)
        assert first.returncode == 0, log.read_text()
        assert "bridge stopped" in log.read_text()
        left_behind = queue_state(channel, amqp_queue)[0]

        with running_bridge(redis_url, amqp_url, amqp_queue, log):
            wait_for(lambda: queue_state(channel, amqp_queue)[0] == 0 and len(rq_queue.job_ids) == len(ids) + 1,
                     what="every message to be enqueued")  # fmt: skip
        assert queue_state(channel, amqp_queue)[0] == 0

    enqueued = rq_queue.job_ids
    assert sorted(enqueued) == sorted([*ids, by_message_id]), f"{left_behind} were left for the second bridge"
    assert len(set(enqueued)) == len(enqueued)


def test_messages_wait_while_redis_is_down_and_complete_after(amqp_url: str, amqp_queue: str, tmp_path: Path) -> None:
    data_dir, port = tmp_path / "redis", free_port()
    data_dir.mkdir()
    server = EmbeddedRedis(data_dir=data_dir, port=port).start()
    log = tmp_path / "bridge.log"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    connection = Redis.from_url(server.url)
    app = create_app(Settings(redis_url=server.url, secret_key="x"), redis=connection)
    client = app.test_client()
    try:
        with running_bridge(server.url, amqp_url, amqp_queue, log), amqp_channel(amqp_url) as channel:
            server.stop()
            for job_id in ids:
                publish(channel, amqp_queue, {"spec": {"title": "after the outage"}, "job_id": job_id})
            wait_for(lambda: log.read_text().count("Redis is unavailable") >= 2, what="the bridge to retry")
            # Nothing was acknowledged: every message is still RabbitMQ's (ready, or back in hand for a retry).
            assert queue_state(channel, amqp_queue)[0] >= len(ids) - 1
            server = EmbeddedRedis(data_dir=data_dir, port=port).start()
            with running_worker(server.url, connection):
                wait_for(lambda: all(in_rq(connection, job_id) for job_id in ids), timeout=60, what="the enqueues")
                statuses: list[dict[str, Any]] = [wait_for_end(client, f"/api/jobs/{job_id}") for job_id in ids]
    finally:
        connection.close()
        server.stop()

    assert [status["state"] for status in statuses] == ["finished"] * len(ids)
    assert "enqueued job" in log.read_text()


def test_the_bridge_reconnects_after_the_connection_drops_and_during_an_outage(
    redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path
) -> None:
    broker = pika.URLParameters(amqp_url)
    log = tmp_path / "bridge.log"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    proxy = TcpProxy(broker.host, broker.port)
    bridge_url = via_port(amqp_url, proxy.port)
    with proxy, amqp_channel(amqp_url) as channel, running_bridge(redis_url, amqp_url, amqp_queue, log, bridge_url):
        publish(channel, amqp_queue, {"job_id": ids[0]})
        wait_for(lambda: in_rq(redis_connection, ids[0]), what="the first job")
        proxy.cut()
        publish(channel, amqp_queue, {"job_id": ids[1]})
        wait_for(lambda: in_rq(redis_connection, ids[1]), what="the job after the cut")
        proxy.stop()
        publish(channel, amqp_queue, {"job_id": ids[2]})
        wait_for(lambda: log.read_text().count("reconnecting in") >= 3, what="failed reconnection attempts")
        assert not in_rq(redis_connection, ids[2])
        proxy.start()
        wait_for(lambda: in_rq(redis_connection, ids[2]), timeout=30, what="the job after the outage")
    assert jobs.queue(redis_connection, "default").job_ids == ids


def test_the_web_app_replaces_a_dropped_connection_and_answers_503_while_rabbitmq_is_down(
    amqp_settings: Settings, redis_connection: Redis, amqp_url: str, amqp_queue: str
) -> None:
    broker = pika.URLParameters(amqp_url)
    with TcpProxy(broker.host, broker.port) as proxy:
        app = create_app(amqp_settings.replace(broker_url=via_port(amqp_url, proxy.port)), redis=redis_connection)
        client = app.test_client()
        try:
            assert client.post("/api/jobs").status_code == 202
            proxy.cut()  # the pooled connection is now dead
            assert client.post("/api/jobs").status_code == 202
            proxy.stop()
            refused = client.post("/api/jobs", json={"title": "not now"})
            proxy.start()
            assert client.post("/api/jobs").status_code == 202
        finally:
            app.extensions["plotjobs"]["publisher"].close()
    assert refused.status_code == 503 and refused.get_json()["error"] == "broker_unavailable"
    with amqp_channel(amqp_url) as channel:
        delivered = take_all(channel, amqp_queue)
    markers = {key.decode().rpartition(":")[2] for key in redis_connection.scan_iter("plotjobs:accepted:*")}
    assert {properties.message_id for properties, _ in delivered} == markers
    assert len(delivered) == 3


def test_gunicorn_serves_concurrent_submissions_through_rabbitmq(
    redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path
) -> None:
    env = {"BROKER_URL": amqp_url, "AMQP_QUEUE": amqp_queue, "GUNICORN_THREADS": "4"}
    with running_gunicorn(redis_url, **env) as base_url, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda n: requests.post(f"{base_url}/api/jobs", json={"seed": n}, timeout=20), range(16))
        )
        assert [answer.status_code for answer in answers] == [202] * 16
        ids = {answer.json()["id"] for answer in answers}
        with (
            running_worker(redis_url, redis_connection),
            running_bridge(redis_url, amqp_url, amqp_queue, tmp_path / "bridge.log"),
        ):
            for job_id in ids:
                wait_for(
                    lambda job_id=job_id: (
                        requests.get(f"{base_url}/api/jobs/{job_id}", timeout=5).json()["state"] == "finished"
                    ),
                    timeout=60,
                    what=f"job {job_id} to finish",
                )
    assert len(ids) == 16


def test_plotjobs_dev_runs_a_bridge_when_a_broker_is_configured(amqp_url: str, amqp_queue: str) -> None:
    with running_dev(BROKER_URL=amqp_url, AMQP_QUEUE=amqp_queue) as (process, base_url, lines):
        assert any(amqp_queue in line for line in lines), lines
        response = post_when_ready(base_url, {"seed": 7})
        assert response.status_code == 202
        with amqp_channel(amqp_url) as channel:
            wait_for(lambda: queue_state(channel, amqp_queue)[1] > 0, timeout=30, what="the bridge to consume")
        status_url = base_url + response.json()["status_url"]
        wait_for(lambda: requests.get(status_url, timeout=5).json()["state"] == "finished", timeout=60, what="the job")
        assert stop_dev(process, lines) == 0, lines[-20:]


def test_several_bridges_on_one_queue_enqueue_each_message_exactly_once(
    redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(60)]
    rq_queue = jobs.queue(redis_connection, "default")
    with (
        running_bridge(redis_url, amqp_url, amqp_queue, tmp_path / "first.log"),
        running_bridge(redis_url, amqp_url, amqp_queue, tmp_path / "second.log"),
        amqp_channel(amqp_url) as channel,
    ):
        wait_for(lambda: queue_state(channel, amqp_queue)[1] == 2, what="both bridges to consume")
        # Every message twice (a producer's retry): whichever bridge takes a copy, the job is queued once.
        for job_id in ids + ids:
            publish(channel, amqp_queue, {"spec": {"seed": 1}, "job_id": job_id})
        wait_for(lambda: queue_state(channel, amqp_queue)[0] == 0 and len(rq_queue.job_ids) >= len(ids),
                 what="every message to be enqueued")  # fmt: skip
        assert queue_state(channel, amqp_queue)[1] == 2, "both bridges still consume"
    enqueued = rq_queue.job_ids
    assert sorted(enqueued) == sorted(ids)


def test_with_min_replicas_unmet_the_bridge_keeps_the_message_and_retries(
    redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """REDIS_MIN_REPLICAS=1 on a Redis without replicas: never acknowledged, never dead-lettered, retried."""
    monkeypatch.setenv("REDIS_MIN_REPLICAS", "1")
    monkeypatch.setenv("REDIS_MIN_REPLICAS_TIMEOUT_MS", "50")
    job_id = str(uuid.uuid4())
    log = tmp_path / "bridge.log"
    with running_bridge(redis_url, amqp_url, amqp_queue, log), amqp_channel(amqp_url) as channel:
        publish(channel, amqp_queue, {"spec": {"title": "unconfirmed"}, "job_id": job_id})
        wait_for(lambda: log.read_text().count("not confirmed the job on REDIS_MIN_REPLICAS=1") >= 2,
                 what="the bridge to retry the unconfirmed job")  # fmt: skip
        # Written to the master, but not acknowledged to RabbitMQ: the message stays RabbitMQ's.
        assert in_rq(redis_connection, job_id)
        assert queue_state(channel, broker_amqp.dead_letter_queue(amqp_queue))[0] == 0
    with amqp_channel(amqp_url) as channel:
        assert queue_state(channel, amqp_queue)[0] == 1
