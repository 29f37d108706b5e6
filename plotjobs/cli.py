"""The ``plotjobs`` command: run the service locally, run a worker, run the AMQP bridge."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

import click

from plotjobs import config as config_module
from plotjobs.config import ConfigError


def _settings() -> config_module.Settings:
    try:
        return config_module.from_env()
    except ConfigError as error:
        raise click.UsageError(str(error)) from None


@click.group()
def main() -> None:
    """plotjobs: charts rendered by background workers."""


def run_worker(name: str | None = None, burst: bool = False) -> None:
    """Run one render worker until it is told to stop."""
    from plotjobs.connections import redis_from_url
    from plotjobs.workers import build_worker

    settings = _settings()
    worker = build_worker(redis_from_url(settings.redis_url), settings, name=name)
    worker.work(burst=burst, logging_level=settings.log_level, with_scheduler=False)


@main.command()
@click.option("--name", help="Worker name shown in rq info and the dashboard.")
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
def worker(name: str | None, burst: bool) -> None:
    """Run a render worker on the configured queues."""
    run_worker(name=name, burst=burst)


@main.command("amqp-bridge")
def amqp_bridge() -> None:
    """Move submissions from RabbitMQ (BROKER_URL, AMQP_QUEUE) into the RQ queue."""
    import logging

    from plotjobs.bridge import Bridge
    from plotjobs.connections import redis_from_url

    settings = _settings()
    if not settings.broker_url:
        raise click.UsageError(
            "BROKER_URL is not set: the bridge needs RabbitMQ (amqp://user:password@host:5672/vhost)"
        )
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pika narrates every socket step at INFO; its warnings and errors are what an operator needs.
    logging.getLogger("pika").setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    bridge = Bridge(settings, redis_from_url(settings.redis_url))

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bridge.run()


def _terminate_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@main.command()
@click.option("--port", type=int, help="Port for the web app (default: $PORT or 8000).")
@click.option("--workers", "worker_count", type=click.IntRange(1, 32), default=1, show_default=True)
def dev(port: int | None, worker_count: int) -> None:
    """Run the web app and workers (and the AMQP bridge with BROKER_URL); start a private Redis without REDIS_URL."""
    from plotjobs.redis_embedded import EmbeddedRedis

    settings = _settings()
    port = port or settings.port
    embedded = None if settings.redis_url else EmbeddedRedis().start()
    env = dict(os.environ, PORT=str(port))
    if embedded is not None:
        env["REDIS_URL"] = embedded.url
        click.echo(f"started a private Redis at {embedded.url} (data in {embedded.data_dir})")
    web = [sys.executable, "-m", "gunicorn", "-c", "python:plotjobs.gunicorn_config",
           "--bind", f"127.0.0.1:{port}", "--workers", "2", "plotjobs:create_app()"]  # fmt: skip
    processes = [subprocess.Popen(web, env=env)]
    for number in range(worker_count):
        command = [sys.executable, "-m", "plotjobs", "worker", "--name", f"dev-{os.getpid()}-{number + 1}"]
        processes.append(subprocess.Popen(command, env=env))
    if settings.broker_url:
        processes.append(subprocess.Popen([sys.executable, "-m", "plotjobs", "amqp-bridge"], env=env))
        click.echo(f"submissions go through RabbitMQ queue {settings.amqp_queue!r}; an amqp-bridge moves them")
    click.echo(f"plotjobs is running: open http://127.0.0.1:{port}/  (Ctrl-C to stop)")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(process.poll() is None for process in processes):
            try:
                processes[0].wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
        click.echo("a process of the service exited; stopping the rest", err=True)
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        _terminate_all(processes)
        if embedded is not None:
            embedded.stop()
    sys.exit(0 if all(process.returncode in (0, -signal.SIGTERM) for process in processes) else 1)
