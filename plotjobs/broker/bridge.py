"""The AMQP bridge: consume submissions from RabbitMQ, validate them and enqueue them into RQ.

A message is acknowledged only once Redis holds its job (or it went to the dead-letter queue),
so a crash at any point leaves it in RabbitMQ; enqueueing is idempotent on the job id, so a
redelivery never renders twice.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import RedisError

from plotjobs.backoff import Backoff
from plotjobs.broker import amqp as broker_amqp
from plotjobs.config import Settings
from plotjobs.errors import InvalidPriority, NotReplicated
from plotjobs.queue import accepted, jobs

if TYPE_CHECKING:
    import pika
    from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
    from pika.spec import Basic

log = logging.getLogger(__name__)

# Seconds between checks for a stop request while idle; also the longest a stop waits.
POLL_SECONDS = 1.0
_REASON_LIMIT = 1000


def _delivery_tag(method: Basic.Deliver) -> int:
    """The tag RabbitMQ gave a delivery (always set on a Basic.Deliver; pika's types allow None)."""
    if method.delivery_tag is None:
        raise ValueError("a delivery without a delivery tag")
    return int(method.delivery_tag)


class Bridge:
    """Moves submissions from the RabbitMQ queue into RQ until ``stop()`` is called."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        if not settings.broker_url:
            raise ValueError("the bridge needs BROKER_URL")
        self._settings = settings
        self._redis = redis
        self._queue = settings.amqp_queue
        # Under a RabbitMQ resource alarm, give up on a blocked connection and reconnect rather than hang.
        self._parameters = broker_amqp.connection_parameters(
            settings.broker_url, "plotjobs amqp-bridge", {"blocked_connection_timeout": 60.0}
        )
        self._broker_backoff = Backoff()
        self._redis_backoff = Backoff()
        self._stopping = False

    def stop(self) -> None:
        """Ask the bridge to finish the message in hand and return from ``run`` (safe in a signal handler)."""
        self._stopping = True

    def run(self) -> None:
        """Consume until stopped, reconnecting to RabbitMQ with backoff whenever the connection fails."""
        import pika.exceptions

        while not self._stopping:
            try:
                self._consume()
                problem = "RabbitMQ cancelled the consumer (was the queue deleted?)"
            except (pika.exceptions.AMQPError, OSError) as error:
                problem = f"RabbitMQ connection failed ({type(error).__name__}: {error})"
            if self._stopping:
                break
            delay = self._broker_backoff.next()
            log.warning("%s; reconnecting in %.1fs", problem, delay)
            self._pause(delay)
        log.info("bridge stopped")

    def _consume(self) -> None:
        import pika

        connection = pika.BlockingConnection(self._parameters)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            broker_amqp.declare_topology(channel, self._queue)
            # One message in hand at a time: a stop or crash leaves the rest in the queue.
            channel.basic_qos(prefetch_count=1)
            log.info("consuming from RabbitMQ queue %r", self._queue)
            self._broker_backoff.reset()
            for method, properties, body in channel.consume(self._queue, inactivity_timeout=POLL_SECONDS):
                # pika yields (None, None, None) when the inactivity timeout passes with no message.
                if method is not None and properties is not None and body is not None:
                    self._handle(connection, channel, method, properties, body)
                if self._stopping:
                    break
            if channel.is_open:
                channel.cancel()
        finally:
            if connection.is_open:
                connection.close()

    def _pause(self, seconds: float, connection: BlockingConnection | None = None) -> None:
        """Wait ``seconds`` or until stopped, keeping ``connection``'s heartbeats served."""
        deadline = time.monotonic() + seconds
        while not self._stopping and (remaining := deadline - time.monotonic()) > 0:
            step = min(remaining, 0.2)
            if connection is not None:
                connection.sleep(step)
            else:
                time.sleep(step)

    def _handle(
        self,
        connection: BlockingConnection,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        try:
            submission = broker_amqp.parse_message(
                body,
                message_id=properties.message_id,
                reply_to=properties.reply_to,
                correlation_id=properties.correlation_id,
                allowed=self._settings.generators,
            )
        except broker_amqp.InvalidMessage as error:
            self._dead_letter(channel, method, properties, body, str(error))
            return
        try:
            queue_name = jobs.queue_for_priority(self._settings, submission.priority)
            created = jobs.enqueue_render_once(
                self._redis, self._settings, submission.spec, submission.job_id, queue_name
            )
            accepted.forget(self._redis, submission.job_id)
        except InvalidPriority as error:
            self._dead_letter(channel, method, properties, body, error.message)
            return
        except (RedisError, NotReplicated) as error:
            delay = self._redis_backoff.next()
            log.warning(
                "Redis is unavailable (%s); job %s waits in RabbitMQ, retry in %.1fs", error, submission.job_id, delay
            )
            channel.basic_nack(_delivery_tag(method), requeue=True)
            self._pause(delay, connection)
            return
        except Exception as error:
            # A message that breaks enqueueing in an unforeseen way would be redelivered forever:
            # park it in the dead-letter queue with the reason and keep serving the others.
            log.exception("enqueueing job %s failed", submission.job_id)
            self._dead_letter(channel, method, properties, body, f"enqueue failed: {type(error).__name__}: {error}")
            return
        self._redis_backoff.reset()
        log.info("%s job %s", "enqueued" if created else "already had", submission.job_id)
        if submission.reply_to:
            reply = {"id": submission.job_id, "state": "queued", "status_path": f"/api/jobs/{submission.job_id}"}
            self._reply(channel, submission.reply_to, submission.correlation_id, reply)
        channel.basic_ack(_delivery_tag(method))

    def _dead_letter(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
        reason: str,
    ) -> None:
        """Park the message, unchanged, in the dead-letter queue with the reason in its headers; then ack it."""
        import pika

        reason = reason[:_REASON_LIMIT]
        log.warning("dead-lettering message %s: %s", properties.message_id or method.delivery_tag, reason)
        headers: dict[str, Any] = dict(properties.headers or {})
        headers.update(
            {
                broker_amqp.ERROR_HEADER: reason,
                broker_amqp.FAILED_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(),
                broker_amqp.QUEUE_HEADER: self._queue,
            }
        )
        kept = copy.copy(properties)
        kept.headers = headers
        kept.delivery_mode = pika.DeliveryMode.Persistent.value
        kept.expiration = None  # a dead letter waits for a person, not for a TTL
        channel.basic_publish(
            exchange="",
            routing_key=broker_amqp.dead_letter_queue(self._queue),
            body=body,
            properties=kept,
            mandatory=True,
        )
        reply_to, correlation_id = broker_amqp.reply_addresses(body, properties.reply_to, properties.correlation_id)
        if reply_to:
            self._reply(channel, reply_to, correlation_id, {"error": "invalid_message", "message": reason})
        channel.basic_ack(_delivery_tag(method))

    def _reply(self, channel: BlockingChannel, reply_to: str, correlation_id: str | None, body: dict[str, Any]) -> None:
        """Answer the producer on its reply queue (a missing queue just drops the answer)."""
        channel.basic_publish(
            exchange="",
            routing_key=reply_to,
            body=json.dumps(body).encode(),
            properties=broker_amqp.message_properties(correlation_id=correlation_id),
        )
