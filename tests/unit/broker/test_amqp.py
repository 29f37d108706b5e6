"""The RabbitMQ adapter without RabbitMQ: settings, the message format, refusals, and lazy loading."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from redis import Redis

from plotjobs.broker import amqp as broker_amqp
from plotjobs.broker.bridge import Bridge
from plotjobs.cli.embedded_redis import free_port
from plotjobs.cli.main import main
from plotjobs.config import ConfigError, Settings, from_env
from plotjobs.queue import accepted, jobs
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app
from tests.support.processes import PROJECT_ROOT


def test_broker_settings_default_to_direct_rq() -> None:
    settings = from_env({})
    assert settings.broker_url is None
    assert settings.amqp_queue == "plotjobs.render"


def test_broker_settings_are_read_and_the_password_stays_out_of_repr() -> None:
    settings = from_env({"BROKER_URL": "amqps://user:s3cret@mq:5671/prod", "AMQP_QUEUE": "charts.render-v2"})
    assert settings.broker_url == "amqps://user:s3cret@mq:5671/prod"
    assert settings.amqp_queue == "charts.render-v2"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("BROKER_URL", "redis://localhost:6379/0", "amqp://"),
        ("BROKER_URL", "rabbit:5672", "amqp://"),
        ("AMQP_QUEUE", "has space", "letters, digits"),
        ("AMQP_QUEUE", "x" * 201, "200"),
        ("AMQP_QUEUE", "amq.mine", "reserves"),
    ],
)
def test_bad_broker_settings_are_refused(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({name: value})
    assert name in str(caught.value) and words in str(caught.value)


def test_a_message_is_a_spec_with_optional_id_and_reply_fields() -> None:
    job_id = str(uuid.uuid4())
    body = json.dumps({"spec": {"title": "t", "seed": 3}, "job_id": job_id.upper(), "reply_to": "answers"})
    submission = broker_amqp.parse_message(body.encode(), correlation_id="c-1", reply_to="ignored")
    assert submission.spec == ChartSpec(title="t", seed=3)
    assert submission.job_id == job_id
    assert (submission.reply_to, submission.correlation_id) == ("answers", "c-1")


def test_the_empty_message_is_the_default_chart_with_a_fresh_id() -> None:
    first, second = broker_amqp.parse_message(b"{}"), broker_amqp.parse_message(b"{}")
    assert first.spec == ChartSpec()
    assert first.job_id != second.job_id
    assert str(uuid.UUID(first.job_id)) == first.job_id


def test_a_message_id_gives_the_same_job_id_on_every_delivery() -> None:
    first = broker_amqp.parse_message(b'{"spec": {}}', message_id="order-17")
    again = broker_amqp.parse_message(b'{"spec": {}}', message_id="order-17")
    other = broker_amqp.parse_message(b'{"spec": {}}', message_id="order-18")
    assert first.job_id == again.job_id != other.job_id


def test_the_web_apps_message_round_trips() -> None:
    job_id = str(uuid.uuid4())
    spec = ChartSpec(title="round trip", format="pdf")
    submission = broker_amqp.parse_message(broker_amqp.encode_submission(spec, job_id))
    assert (submission.spec, submission.job_id) == (spec, job_id)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"{nope", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"spec": {"width": 5}}', "spec.width: Input should be greater than or equal to 100"),
        (b'{"spec": "big"}', "spec:"),
        (b'{"spce": {}}', "spce: Extra inputs are not permitted"),
        (b'{"job_id": "42"}', "job_id: Value error, job_id must be a UUID"),
        (b'{"reply_to": ""}', "reply_to"),
    ],
)
def test_invalid_messages_say_why(body: bytes, words: str) -> None:
    with pytest.raises(broker_amqp.InvalidMessage) as caught:
        broker_amqp.parse_message(body)
    assert words in str(caught.value)


def test_reply_addresses_of_an_invalid_message() -> None:
    assert broker_amqp.reply_addresses(b'{"reply_to": "q", "spec": 1}', None, "c") == ("q", "c")
    assert broker_amqp.reply_addresses(b"{nope", "props-q", None) == ("props-q", None)
    assert broker_amqp.reply_addresses(b'{"reply_to": 5}', None, None) == (None, None)


def test_enqueue_with_a_job_id_happens_once(fake_redis: Redis) -> None:
    settings = Settings(redis_url="redis://fake", secret_key="x")
    job_id = str(uuid.uuid4())
    assert jobs.enqueue_render_once(fake_redis, settings, ChartSpec(title="once"), job_id) is True
    assert jobs.enqueue_render_once(fake_redis, settings, ChartSpec(title="twice"), job_id) is False
    queued = jobs.queue(fake_redis, settings.default_queue)
    assert queued.job_ids == [job_id]
    assert jobs.fetch(fake_redis, job_id).args[1]["title"] == "once"


class RecordingChannel:
    """Just enough of a pika channel for the bridge's message handling: it records what was sent."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.published: list[tuple[str, bytes, Any]] = []

    def basic_ack(self, delivery_tag: int) -> None:
        self.acked.append(delivery_tag)

    def basic_publish(self, exchange: str, routing_key: str, body: bytes, properties: Any, **_: Any) -> None:
        self.published.append((routing_key, body, properties))


def handle(bridge: Bridge, body: dict[str, Any]) -> RecordingChannel:
    import pika

    channel = RecordingChannel()
    delivery: Any = SimpleNamespace(delivery_tag=1)
    bridge._handle(None, channel, delivery, pika.BasicProperties(), json.dumps(body).encode())  # type: ignore[arg-type]
    assert channel.acked == [1]
    return channel


def test_the_bridge_maps_a_priority_to_its_own_queues_once(fake_redis: Redis) -> None:
    settings = Settings(redis_url="redis://fake", broker_url="amqp://guest:guest@127.0.0.1:1/%2F", queues=("charts",))
    bridge = Bridge(settings, fake_redis)
    plain, default = str(uuid.uuid4()), str(uuid.uuid4())
    assert handle(bridge, {"job_id": plain}).published == []
    assert handle(bridge, {"job_id": default, "priority": "default"}).published == []
    assert jobs.queue(fake_redis, "charts").job_ids == [plain, default]
    [(routing_key, _, properties)] = handle(bridge, {"priority": "high"}).published
    assert routing_key == broker_amqp.dead_letter_queue(settings.amqp_queue)
    assert "no workers serve priority 'high'" in properties.headers[broker_amqp.ERROR_HEADER]


def test_the_bridge_dead_letters_a_date_past_the_calendar_and_goes_on(fake_redis: Redis) -> None:
    settings = Settings(redis_url="redis://fake", broker_url="amqp://guest:guest@127.0.0.1:1/%2F")
    bridge = Bridge(settings, fake_redis)
    bad = {"spec": {"series": [{"x": ["9999-12-31T23:59:59-01:00"], "y": [1]}]}}
    [(routing_key, _, properties)] = handle(bridge, bad).published
    assert routing_key == broker_amqp.dead_letter_queue(settings.amqp_queue)
    assert "outside the years" in properties.headers[broker_amqp.ERROR_HEADER]
    good = str(uuid.uuid4())
    assert handle(bridge, {"job_id": good}).published == []
    assert jobs.queue(fake_redis, settings.default_queue).job_ids == [good]


def test_unreachable_rabbitmq_is_a_503_and_nothing_is_accepted(fake_redis: Redis) -> None:
    settings = Settings(
        redis_url="redis://fake",
        secret_key="x",
        broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
        amqp_queue="plotjobs-unreachable",
    )
    app = create_app(settings, redis=fake_redis)
    client = app.test_client()
    response = client.post("/api/jobs", json={"title": "lost?"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "broker_unavailable"
    assert "message broker is unavailable" in response.get_json()["message"]
    assert response.headers["Retry-After"]
    assert list(fake_redis.scan_iter("plotjobs:accepted:*")) == []
    assert jobs.queue(fake_redis, "default").job_ids == []
    page = client.get("/image_page")
    assert page.status_code == 503 and page.get_json()["error"] == "broker_unavailable"


def test_the_bridge_command_refuses_to_start_without_a_broker_url() -> None:
    result = CliRunner().invoke(main, ["amqp-bridge"], env={"BROKER_URL": ""})
    assert result.exit_code == 2
    assert "BROKER_URL is not set" in result.output


def test_without_a_broker_url_pika_is_never_imported() -> None:
    code = """
import sys
import fakeredis
from plotjobs.web import create_app
from plotjobs.config import Settings
import plotjobs.broker.bridge, plotjobs.broker.amqp, plotjobs.cli.main
app = create_app(Settings(redis_url="redis://fake", secret_key="x", log_level="WARNING"), redis=fakeredis.FakeRedis())
status = app.test_client().post("/api/jobs", json={}).status_code
print(status, "pika" in sys.modules)
settings = Settings(redis_url="redis://fake", secret_key="x", log_level="WARNING", broker_url="amqp://mq")
create_app(settings, redis=fakeredis.FakeRedis())
print("pika" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["202", "False", "True"]


def test_routes_answer_for_an_accepted_job_that_rq_does_not_have_yet(
    fake_client: FlaskClient, fake_redis: Redis
) -> None:
    job_id = str(uuid.uuid4())
    accepted.record(fake_redis, job_id)
    status = fake_client.get(f"/api/jobs/{job_id}").get_json()
    assert (status["state"], status["stage"], status["position"]) == ("queued", "submitted", None)
    result = fake_client.get(f"/api/jobs/{job_id}/result")
    assert result.status_code == 409 and result.get_json()["state"] == "queued"
    assert fake_client.get(f"/progress?jobid={job_id}").get_json() == {
        "state": "PENDING",
        "progress": 0.0,
        "error": None,
    }
    assert fake_client.get(f"/result.png?jobid={job_id}").status_code == 409

    accepted.forget(fake_redis, job_id)
    assert fake_client.get(f"/api/jobs/{job_id}").status_code == 404
    assert fake_client.get(f"/api/jobs/{job_id}/result").status_code == 404
    assert fake_client.get(f"/progress?jobid={job_id}").status_code == 404


@pytest.mark.parametrize(("required", "outcome"), [("", "1 skipped"), ("1", "1 error")])
def test_rabbitmq_tests_skip_without_a_broker_unless_ci_requires_it(required: str, outcome: str) -> None:
    env = dict(os.environ, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F", PLOTJOBS_REQUIRE_AMQP=required)
    test = "tests/system/test_amqp_bridge.py::test_the_tutorial_page_submits_through_rabbitmq_too"
    command = [sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", test]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, check=False, timeout=60)
    assert outcome in result.stdout, result.stdout
    assert "RabbitMQ is not reachable" in result.stdout
    assert result.returncode == (1 if required else 0)


def test_large_data_travels_through_rabbitmq_inline_and_arrives_as_arrays() -> None:
    y = [float(value) for value in range(30_000)]
    spec = ChartSpec.model_validate({"kind": "scatter", "series": [{"y": y}]})
    body = broker_amqp.encode_submission(spec, str(uuid.uuid4()))
    assert json.loads(body)["spec"]["series"][0]["y"] == y
    arrived = broker_amqp.parse_message(body).spec
    assert arrived.series is not None and arrived.series[0].y is not None
    assert list(arrived.series[0].y[-2:]) == [29_998.0, 29_999.0] and type(arrived.series[0].y).__name__ == "ndarray"


def test_a_message_names_its_generator_which_must_be_allow_listed() -> None:
    spec = ChartSpec(title="named")
    body = broker_amqp.encode_submission(spec, str(uuid.uuid4()))
    assert json.loads(body)["generator"] == "chart"
    assert broker_amqp.parse_message(body, allowed=("chart",)).spec == spec
    for document, allowed, words in [
        ({"generator": "sparkline"}, None, "generator: no generator 'sparkline' is served here"),
        ({"generator": "chart"}, ("vega-lite",), "generator: no generator 'chart' is served here (served: vega-lite)"),
        ({"generator": 3}, None, "generator: Input should be a valid string"),
    ]:
        with pytest.raises(broker_amqp.InvalidMessage, match=re.escape(words)):
            broker_amqp.parse_message(json.dumps(document).encode(), allowed=allowed)


def test_a_date_offset_past_the_calendar_is_an_invalid_message() -> None:
    body = json.dumps({"spec": {"series": [{"x": ["0001-01-01T00:00:00+01:00"], "y": [1]}]}}).encode()
    with pytest.raises(broker_amqp.InvalidMessage) as caught:
        broker_amqp.parse_message(body, allowed=("chart",))
    assert "spec.series.0.x.0" in str(caught.value) and "outside the years" in str(caught.value)


def test_an_unforeseen_error_in_spec_validation_is_an_invalid_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(cls: type, document: object) -> object:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(ChartSpec, "model_validate", classmethod(explode))
    with pytest.raises(broker_amqp.InvalidMessage) as caught:
        broker_amqp.parse_message(b'{"spec": {}}', allowed=("chart",))
    assert "OverflowError" in str(caught.value)


def test_a_report_part_of_a_generator_not_allowed_is_an_invalid_message() -> None:
    part = {"generator": "vega-lite", "spec": {"vega_lite": {"mark": "point", "data": {"values": [{"a": 1}]}}}}
    body = json.dumps({"generator": "report", "spec": {"parts": [part]}}).encode()
    with pytest.raises(broker_amqp.InvalidMessage) as caught:
        broker_amqp.parse_message(body, allowed=("chart", "report"))
    assert "spec.parts.0.generator: no generator 'vega-lite' is served here" in str(caught.value)
