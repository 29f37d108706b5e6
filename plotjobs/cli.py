"""The ``plotjobs`` command: run the service locally, run a worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
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


def run_single_worker(name: str | None = None, burst: bool = False) -> None:
    """Run one render worker in this process until it is told to stop or has done WORKER_MAX_JOBS jobs."""
    from plotjobs.connections import redis_from_url
    from plotjobs.workers import build_worker

    settings = _settings()
    worker = build_worker(redis_from_url(settings.redis_url), settings, name=name)
    worker.work(burst=burst, logging_level=settings.log_level, with_scheduler=False, max_jobs=settings.worker_max_jobs)


def run_worker(name: str | None = None, burst: bool = False, processes: int | None = None) -> None:
    """Run the supervisor, which keeps WORKER_PROCESSES render workers alive, until it is told to stop."""
    from plotjobs.connections import redis_from_url
    from plotjobs.supervisor import Supervisor

    settings = _settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    supervisor = Supervisor(
        settings, redis_from_url(settings.redis_url), processes=processes, burst=burst, name_prefix=name
    )
    sys.exit(supervisor.run())


@main.command()
@click.option("--name", help="Worker name (with --single) or prefix of the workers' names, shown in rq info.")
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
@click.option("--processes", type=click.IntRange(1, 64), help="Worker processes (default: $WORKER_PROCESSES).")
@click.option("--single", is_flag=True, help="Run one worker in this process, without the supervisor.")
def worker(name: str | None, burst: bool, processes: int | None, single: bool) -> None:
    """Run render workers on the configured queues, supervised (or one, with --single)."""
    if single:
        run_single_worker(name=name, burst=burst)
    else:
        run_worker(name=name, burst=burst, processes=processes)


@main.command()
@click.option("--once", is_flag=True, help="Sweep once, print what was recovered, and exit.")
def sweeper(once: bool) -> None:
    """Recover jobs whose worker died or that no queue holds; runs every SWEEP_INTERVAL seconds."""
    from redis.exceptions import RedisError

    from plotjobs import recovery
    from plotjobs.connections import redis_from_url

    settings = _settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    connection = redis_from_url(settings.redis_url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopped.set())
    while True:
        try:
            report = recovery.sweep(connection, settings, force=once)
        except RedisError as error:
            if once:
                raise click.ClickException(f"Redis is unreachable: {error}") from None
            logging.getLogger(__name__).warning("sweep skipped, Redis unreachable: %s", error)
            report = None
        if once:
            assert report is not None
            click.echo(f"requeued {len(report.requeued)} job(s), failed {len(report.failed)} job(s)")
            return
        if report and (report.requeued or report.failed):
            logging.getLogger(__name__).info("requeued %s, failed %s", report.requeued, report.failed)
        if stopped.wait(settings.sweep_interval):
            return


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
    """Run the web app and workers; start a private Redis when REDIS_URL is not set."""
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
    command = [sys.executable, "-m", "plotjobs", "worker", "--name", f"dev-{os.getpid()}", "--processes",
               str(worker_count)]  # fmt: skip
    processes.append(subprocess.Popen(command, env=env))
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
