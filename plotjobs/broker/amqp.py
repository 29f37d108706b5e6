"""The optional RabbitMQ adapter: the submission message format, the queue topology, the publisher.

pika is imported only inside functions, so nothing here needs RabbitMQ unless BROKER_URL is set.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from redis import Redis
from redis.exceptions import RedisError

from plotjobs import generators
from plotjobs.config import DEFAULT_GENERATOR
from plotjobs.errors import BrokerUnavailable, UnknownGeneratorError
from plotjobs.queue import accepted
from plotjobs.spec.base import GeneratorSpec, violations, violations_text

if TYPE_CHECKING:
    import pika
    from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
MESSAGE_TYPE = "plotjobs.render"
APP_ID = "plotjobs"
ERROR_HEADER = "x-plotjobs-error"
FAILED_AT_HEADER = "x-plotjobs-failed-at"
QUEUE_HEADER = "x-plotjobs-queue"
# Job ids derived from a producer's message_id live in their own namespace.
MESSAGE_ID_NAMESPACE = uuid.UUID("4f1b2c63-3a0e-5d55-9b1e-2f7c0c6d8a41")
# Fail fast: a web request must not hang on a broker that does not answer.
_PUBLISHER_DEFAULTS = {
    "connection_attempts": 1,
    "socket_timeout": 5.0,
    "stack_timeout": 10.0,
    "blocked_connection_timeout": 10.0,
}


class InvalidMessage(ValueError):
    """A message on the submissions queue that cannot become a render job; the text says why."""


def dead_letter_queue(queue_name: str) -> str:
    """The queue that keeps messages of ``queue_name`` that could not be processed."""
    return f"{queue_name}.dead"


def dead_letter_exchange(queue_name: str) -> str:
    """The exchange RabbitMQ dead-letters rejected messages of ``queue_name`` to."""
    return f"{queue_name}.dlx"


def canonical_job_id(value: str) -> str:
    """``value`` as the lower-case hyphenated UUID form that job ids have; ValueError otherwise."""
    return str(uuid.UUID(value))


class SubmitMessage(BaseModel):
    """The JSON body of a submission; unknown fields are refused so typos are not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generator: str = Field(default=DEFAULT_GENERATOR, description="The generator; it must be in GENERATORS.")
    spec: dict[str, Any] = Field(default_factory=dict, description="The generator's spec, validated by its model.")
    priority: Literal["high", "default", "low"] | None = Field(default=None, description="Queue; default when absent.")
    job_id: str | None = Field(default=None, description="A UUID; the job keeps it. Derived or random when absent.")
    reply_to: str | None = Field(default=None, min_length=1, max_length=255)
    correlation_id: str | None = Field(default=None, max_length=255)

    @field_validator("job_id")
    @classmethod
    def _job_id_is_a_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return canonical_job_id(value)
        except ValueError:
            raise ValueError("job_id must be a UUID such as 0b6c7a1e-3f2d-4c8e-9a5b-1d2e3f4a5b6c") from None


@dataclass(frozen=True)
class Submission:
    """A valid message, its job id settled and where (if anywhere) to reply."""

    spec: GeneratorSpec
    job_id: str
    priority: str | None
    reply_to: str | None
    correlation_id: str | None


def encode_submission(spec: GeneratorSpec, job_id: str, priority: str | None = None) -> bytes:
    """The message body the web app publishes for ``spec`` under ``job_id``."""
    document = {"generator": spec.generator_name, "spec": spec.model_dump(mode="json")}
    return json.dumps({**document, "job_id": job_id, "priority": priority}).encode()


def parse_message(
    body: bytes,
    *,
    message_id: str | None = None,
    reply_to: str | None = None,
    correlation_id: str | None = None,
    allowed: Iterable[str] | None = None,
) -> Submission:
    """Validate a message body (with its AMQP properties as fallbacks); InvalidMessage says what is wrong.

    The spec is validated by the model of the generator the message names, which must be in ``allowed``.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidMessage(f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidMessage("the body must be a JSON object with a 'spec' field")
    try:
        message = SubmitMessage.model_validate(document)
    except ValidationError as error:
        raise InvalidMessage(f"invalid message: {violations_text(error)}") from None
    try:
        spec = generators.get(message.generator, allowed).spec_model.model_validate(message.spec)
        if allowed is not None:
            generators.check_served(spec, allowed)
    except UnknownGeneratorError as error:
        field = "generator" if error.field == "generator" else f"spec.{error.field}"
        raise InvalidMessage(f"invalid message: {field}: {error.message}") from None
    except ValidationError as error:
        found = "; ".join(f"spec.{field}: {text}" for field, text in violations(error))
        raise InvalidMessage(f"invalid message: {found}") from None
    except Exception as error:  # noqa: BLE001  # a spec the model cannot judge must not stop the bridge: refuse it
        raise InvalidMessage(f"invalid message: spec: {type(error).__name__}: {error}") from None
    if message.job_id is not None:
        job_id = message.job_id
    elif message_id:
        # A redelivered message keeps its message_id, so it maps to the same job: no duplicate render.
        job_id = str(uuid.uuid5(MESSAGE_ID_NAMESPACE, message_id))
    else:
        job_id = str(uuid.uuid4())
    return Submission(
        spec=spec,
        job_id=job_id,
        priority=message.priority,
        reply_to=message.reply_to or reply_to or None,
        correlation_id=message.correlation_id or correlation_id or None,
    )


def reply_addresses(body: bytes, reply_to: str | None, correlation_id: str | None) -> tuple[str | None, str | None]:
    """Where to answer a message that failed validation: its body's fields if readable, else its properties."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        document = None
    if isinstance(document, dict):
        body_reply, body_correlation = document.get("reply_to"), document.get("correlation_id")
        if isinstance(body_reply, str) and body_reply:
            reply_to = body_reply
        if isinstance(body_correlation, str) and body_correlation:
            correlation_id = body_correlation
    return reply_to or None, correlation_id or None


def connection_parameters(url: str, name: str, defaults: Mapping[str, float] | None = None) -> pika.URLParameters:
    """pika parameters for ``url``, named in RabbitMQ's connection list; the URL's own options win."""
    import pika

    parameters = pika.URLParameters(url)
    given = parse_qs(urlsplit(url).query)
    for option, value in (defaults or {}).items():
        if option not in given:
            setattr(parameters, option, value)
    parameters.client_properties = {"connection_name": f"{name} (pid {os.getpid()})"}
    return parameters


def declare_topology(channel: BlockingChannel, queue_name: str) -> None:
    """Declare the durable submissions queue, its dead-letter exchange and dead-letter queue (idempotent)."""
    exchange = dead_letter_exchange(queue_name)
    dead = dead_letter_queue(queue_name)
    channel.exchange_declare(exchange=exchange, exchange_type="direct", durable=True)
    channel.queue_declare(queue=dead, durable=True)
    channel.queue_bind(queue=dead, exchange=exchange, routing_key=queue_name)
    channel.queue_declare(
        queue=queue_name,
        durable=True,
        arguments={"x-dead-letter-exchange": exchange, "x-dead-letter-routing-key": queue_name},
    )


def message_properties(
    job_id: str | None = None, *, content_type: str | None = CONTENT_TYPE, **extra: Any
) -> pika.BasicProperties:
    """Properties of a persistent message from plotjobs (JSON unless told otherwise)."""
    import pika

    return pika.BasicProperties(
        content_type=content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=job_id,
        app_id=APP_ID,
        timestamp=int(dt.datetime.now(dt.UTC).timestamp()),
        **extra,
    )


class _Link:
    """One connection and one confirming channel, used by one request at a time."""

    def __init__(self, parameters: pika.URLParameters, queue_name: str) -> None:
        import pika

        self.connection: BlockingConnection = pika.BlockingConnection(parameters)
        try:
            self.channel: BlockingChannel = self.connection.channel()
            self.channel.confirm_delivery()
            declare_topology(self.channel, queue_name)
        except BaseException:
            self.close()
            raise

    def publish(self, queue_name: str, body: bytes, job_id: str) -> None:
        # Serve heartbeats first: an idle link the broker dropped fails here, before the publish.
        self.connection.process_data_events(time_limit=0)
        self.channel.basic_publish(
            exchange="",
            routing_key=queue_name,
            body=body,
            properties=message_properties(job_id, type=MESSAGE_TYPE),
            mandatory=True,
        )

    def close(self) -> None:
        import pika.exceptions

        if self.connection.is_open:
            try:
                self.connection.close()
            except pika.exceptions.AMQPError:
                log.debug("closing a broken RabbitMQ connection failed", exc_info=True)


class Publisher:
    """Publishes submissions with publisher confirms over a small pool of connections (one per busy thread)."""

    def __init__(self, url: str, queue_name: str) -> None:
        self._parameters = connection_parameters(url, "plotjobs web", _PUBLISHER_DEFAULTS)
        self._queue_name = queue_name
        self._idle: list[_Link] = []
        self._lock = threading.Lock()

    def _take(self) -> tuple[_Link, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return _Link(self._parameters, self._queue_name), False

    def publish(self, body: bytes, job_id: str) -> None:
        """Publish ``body`` persistently; returns once RabbitMQ confirmed it, else BrokerUnavailable."""
        import pika.exceptions

        while True:
            try:
                link, reused = self._take()
            except (pika.exceptions.AMQPError, OSError) as error:
                log.warning("cannot connect to RabbitMQ: %s: %s", type(error).__name__, error)
                raise BrokerUnavailable(f"the message broker is unavailable: {error.__class__.__name__}") from None
            try:
                link.publish(self._queue_name, body, job_id)
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as error:
                link.close()
                log.warning("RabbitMQ refused job %s: %s", job_id, type(error).__name__)
                raise BrokerUnavailable(f"the message broker refused the job: {error.__class__.__name__}") from None
            except (pika.exceptions.AMQPError, OSError) as error:
                link.close()
                if reused:
                    # A pooled link may have gone stale while idle; a fresh one decides.
                    continue
                log.warning("publishing job %s to RabbitMQ failed: %s: %s", job_id, type(error).__name__, error)
                raise BrokerUnavailable(f"the message broker is unavailable: {error.__class__.__name__}") from None
            with self._lock:
                self._idle.append(link)
            return

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            links, self._idle = self._idle, []
        for link in links:
            link.close()


def submit_render(
    connection: Redis,
    publisher: Publisher,
    spec: GeneratorSpec,
    priority: str | None = None,
    *,
    job_id: str | None = None,
) -> str:
    """Publish a render of ``spec`` to RabbitMQ and return the job id it will keep (``job_id`` if given)."""
    job_id = job_id or str(uuid.uuid4())
    try:
        accepted.record(connection, job_id)
    except RedisError as error:
        # RabbitMQ keeps the job until Redis is back; only its early status is lost meanwhile.
        log.warning("could not record accepted job %s in Redis: %s", job_id, error)
    try:
        publisher.publish(encode_submission(spec, job_id, priority), job_id)
    except BrokerUnavailable:
        try:
            accepted.forget(connection, job_id)
        except RedisError:
            log.warning("could not drop the marker of refused job %s", job_id)
        raise
    return job_id
