"""RabbitMQ helpers for tests: reach the test broker, publish as an outside producer, run the bridge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from redis import Redis

from plotjobs.broker import amqp as broker_amqp
from plotjobs.errors import JobNotFound
from plotjobs.queue import jobs
from tests.support.processes import PROJECT_ROOT, service_env, stop
from tests.support.waiting import wait_for

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def in_rq(connection: Redis, job_id: str) -> bool:
    """Whether RQ has a job with ``job_id`` (the bridge has enqueued it)."""
    try:
        jobs.fetch(connection, job_id)
    except JobNotFound:
        return False
    return True


def amqp_url_from_env() -> str:
    """The broker the tests use: AMQP_URL, else the local RabbitMQ with the guest account."""
    return os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


def unreachable_reason(url: str) -> str | None:
    """Why RabbitMQ at ``url`` cannot be used, or None when it answers."""
    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = 3
    parameters.stack_timeout = 5
    try:
        connection = pika.BlockingConnection(parameters)
    except (pika.exceptions.AMQPError, OSError) as error:
        return (
            f"RabbitMQ is not reachable at {parameters.host}:{parameters.port} ({type(error).__name__}); set AMQP_URL"
        )
    connection.close()
    return None


@contextmanager
def amqp_channel(url: str) -> Iterator[BlockingChannel]:
    """A confirming channel on its own connection, closed afterwards."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        yield channel
    finally:
        if connection.is_open:
            connection.close()


def publish(channel: BlockingChannel, queue_name: str, body: bytes | dict[str, Any], **properties: Any) -> None:
    """Publish as an outside producer would: the documented JSON, persistent, to the default exchange."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    channel.basic_publish(
        exchange="",
        routing_key=queue_name,
        body=data,
        properties=pika.BasicProperties(content_type="application/json", delivery_mode=2, **properties),
        mandatory=True,
    )


def queue_state(channel: BlockingChannel, queue_name: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue that exists."""
    method = channel.queue_declare(queue=queue_name, passive=True).method
    return method.message_count, method.consumer_count


def take_all(channel: BlockingChannel, queue_name: str) -> list[tuple[pika.BasicProperties, bytes]]:
    """Every ready message of ``queue_name``, acknowledged."""
    taken: list[tuple[pika.BasicProperties, bytes]] = []
    while True:
        method, properties, body = channel.basic_get(queue=queue_name, auto_ack=True)
        if method is None:
            return taken
        taken.append((properties, body))


def declare(url: str, queue_name: str) -> None:
    """Declare the submissions topology, as the web app and bridge do."""
    with amqp_channel(url) as channel:
        broker_amqp.declare_topology(channel, queue_name)


def delete_topology(url: str, queue_name: str) -> None:
    """Remove a test's queues and exchange."""
    with amqp_channel(url) as channel:
        channel.queue_delete(queue=queue_name)
        channel.queue_delete(queue=broker_amqp.dead_letter_queue(queue_name))
        channel.exchange_delete(exchange=broker_amqp.dead_letter_exchange(queue_name))


def via_port(url: str, port: int) -> str:
    """``url`` pointed at 127.0.0.1:``port`` (a proxy), keeping its credentials and virtual host."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"))


def start_bridge(
    redis_url: str,
    amqp_url: str,
    queue_name: str,
    log_path: Path,
    bridge_url: str | None = None,
    *,
    python: str = sys.executable,
    **settings: str,
) -> subprocess.Popen[bytes]:
    """Start ``plotjobs amqp-bridge`` (on ``bridge_url`` if given) and return once it consumes from ``queue_name``.

    ``python`` runs it (another environment's, say); ``settings`` are added to its environment.
    """
    env = service_env(redis_url, BROKER_URL=bridge_url or amqp_url, AMQP_QUEUE=queue_name, LOG_LEVEL="INFO", **settings)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [python, "-m", "plotjobs", "amqp-bridge"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        with amqp_channel(amqp_url) as channel:
            broker_amqp.declare_topology(channel, queue_name)  # so the passive look-up can find it
            wait_for(
                lambda: process.poll() is not None or queue_state(channel, queue_name)[1] > 0,
                timeout=30,
                what="the bridge to consume",
            )
        assert process.poll() is None, f"the bridge exited with {process.returncode}: {log_path.read_text()}"
    except BaseException:
        stop(process)
        raise
    return process


@contextmanager
def running_bridge(
    redis_url: str,
    amqp_url: str,
    queue_name: str,
    log_path: Path,
    bridge_url: str | None = None,
    *,
    python: str = sys.executable,
    **settings: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """The bridge as a subprocess for the duration of the block; its log goes to ``log_path``."""
    process = start_bridge(redis_url, amqp_url, queue_name, log_path, bridge_url, python=python, **settings)
    try:
        yield process
    finally:
        stop(process)
