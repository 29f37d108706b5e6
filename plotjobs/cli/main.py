"""The ``plotjobs`` command: run the service, workers and the AMQP bridge; submit charts and follow them."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from plotjobs import config as config_module
from plotjobs.cli import client
from plotjobs.config import ConfigError

if TYPE_CHECKING:
    from plotjobs.generators import Generator


def _settings() -> config_module.Settings:
    from plotjobs import generators
    from plotjobs.errors import GeneratorDeclarationError, UnknownGeneratorError

    try:
        settings = config_module.from_env()
        generators.served(settings.generators)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    except (UnknownGeneratorError, GeneratorDeclarationError) as error:
        raise click.UsageError(error.message) from None
    return settings


@click.group()
def main() -> None:
    """plotjobs: charts rendered by background workers."""


def run_single_worker(name: str | None = None, burst: bool = False) -> None:
    """Run one render worker in this process until it is told to stop or has done WORKER_MAX_JOBS jobs."""
    from plotjobs.connection import redis_from_settings
    from plotjobs.logs import add_filter, configure
    from plotjobs.worker.job_log import CurrentJobFilter
    from plotjobs.worker.render_worker import build_worker

    settings = _settings()
    # Before work(): RQ then finds our JSON handler on its loggers and adds none of its own.
    configure(settings.log_level)
    add_filter(CurrentJobFilter())
    worker = build_worker(redis_from_settings(settings), settings, name=name)
    worker.work(burst=burst, logging_level=settings.log_level, with_scheduler=False, max_jobs=settings.worker_max_jobs)


def run_worker(name: str | None = None, burst: bool = False, processes: int | None = None) -> None:
    """Run the supervisor, which keeps WORKER_PROCESSES render workers alive, until it is told to stop."""
    from plotjobs.connection import redis_from_settings
    from plotjobs.logs import configure
    from plotjobs.worker.supervisor import Supervisor

    settings = _settings()
    configure(settings.log_level)
    supervisor = Supervisor(settings, redis_from_settings(settings), processes=processes, burst=burst, name_prefix=name)
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

    from plotjobs.connection import redis_from_settings
    from plotjobs.logs import configure
    from plotjobs.worker import recovery

    settings = _settings()
    configure(settings.log_level)
    connection = redis_from_settings(settings)
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the workers as JSON.")
@click.option("--this-host", is_flag=True, help="Only workers running on this host.")
@click.option("--check", is_flag=True, help="Exit 1 unless at least one (matching) worker is alive.")
def workers(as_json: bool, this_host: bool, check: bool) -> None:
    """List the live RQ workers: name, host, state, queues and seconds since their last heartbeat."""
    from redis.exceptions import RedisError

    from plotjobs.connection import redis_from_settings
    from plotjobs.queue.jobs import worker_heartbeats

    settings = _settings()
    try:
        found = worker_heartbeats(redis_from_settings(settings))
    except RedisError as error:
        click.echo(f"cannot read workers: Redis is unreachable ({error.__class__.__name__}: {error})", err=True)
        sys.exit(2)
    if this_host:
        found = [worker for worker in found if worker["hostname"] == socket.gethostname()]
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        for worker in found:
            queues = ",".join(worker["queues"])
            click.echo(
                f"{worker['name']}  host={worker['hostname']} pid={worker['pid']} state={worker['state']} "
                f"queues={queues} heartbeat={worker['seconds_since_heartbeat']}s ago "
                f"job={worker['current_job'] or '-'}"
            )
        click.echo(f"{len(found)} worker(s) alive")
    if check and not found:
        sys.exit(1)


def _idle_until_stopped(reason: str) -> None:
    click.echo(f"{reason}; idle until stopped", err=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


@main.command("amqp-bridge")
@click.option(
    "--idle-without-broker",
    is_flag=True,
    help="Without BROKER_URL, wait idle instead of exiting (lets one Procfile serve both set-ups).",
)
def amqp_bridge(idle_without_broker: bool) -> None:
    """Move submissions from RabbitMQ (BROKER_URL, AMQP_QUEUE) into the RQ queue."""
    import logging

    from plotjobs.broker.bridge import Bridge
    from plotjobs.connection import redis_from_settings
    from plotjobs.logs import attach, configure

    settings = _settings()
    if not settings.broker_url and idle_without_broker:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        _idle_until_stopped("BROKER_URL is not set: no RabbitMQ to bridge")
        return
    if not settings.broker_url:
        raise click.UsageError(
            "BROKER_URL is not set: the bridge needs RabbitMQ (amqp://user:password@host:5672/vhost)"
        )
    configure(settings.log_level)
    # pika narrates every socket step at INFO; its warnings and errors are what an operator needs.
    attach("pika", max(logging.WARNING, logging.getLevelName(settings.log_level)))
    bridge = Bridge(settings, redis_from_settings(settings))

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bridge.run()


STOP_GRACE_SECONDS = 15.0


def _terminate_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask every process to stop, give them one shared grace period, then kill the stragglers."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            args = process.args
            name = " ".join(str(part) for part in args[1:4]) if isinstance(args, list | tuple) else str(args)
            click.echo(f"{name} did not stop within {STOP_GRACE_SECONDS:.0f} s; killed", err=True)
            process.kill()
            process.wait()


@main.command()
@click.option("--port", type=int, help="Port for the web app (default: $PORT or 8000).")
@click.option("--workers", "worker_count", type=click.IntRange(1, 32), default=1, show_default=True)
def dev(port: int | None, worker_count: int) -> None:
    """Run the web app and workers (and the AMQP bridge with BROKER_URL); start a private Redis without REDIS_URL."""
    from plotjobs.cli.embedded_redis import EmbeddedRedis, EmbeddedRedisError

    settings = _settings()
    port = port or settings.port
    try:
        embedded = None if settings.redis_url else EmbeddedRedis().start()
    except EmbeddedRedisError as error:
        raise click.ClickException(f"REDIS_URL is not set and {error}; or set REDIS_URL to a running Redis") from None
    env = dict(os.environ, PORT=str(port))
    if embedded is not None:
        env["REDIS_URL"] = embedded.url
        click.echo(f"started a private Redis at {embedded.url} (data in {embedded.data_dir})")
    web = [sys.executable, "-m", "gunicorn", "-c", "python:plotjobs.web.gunicorn_config",
           "--bind", f"127.0.0.1:{port}", "--workers", "2", "plotjobs.web:create_app()"]  # fmt: skip
    processes = [subprocess.Popen(web, env=env)]
    command = [sys.executable, "-m", "plotjobs", "worker", "--name", f"dev-{os.getpid()}", "--processes",
               str(worker_count)]  # fmt: skip
    processes.append(subprocess.Popen(command, env=env))
    if settings.broker_url:
        processes.append(subprocess.Popen([sys.executable, "-m", "plotjobs", "amqp-bridge"], env=env))
        click.echo(f"submissions go through RabbitMQ queue {settings.amqp_queue!r}; an amqp-bridge moves them")
    click.echo(f"plotjobs is running: open http://127.0.0.1:{port}/  (Ctrl-C to stop)")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Set SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    signal.signal(signal.SIGINT, stop)
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


DEFAULT_SERVER = "http://127.0.0.1:8000"
server_option = click.option(
    "--server", default=DEFAULT_SERVER, show_default=True, metavar="URL", help="Base URL of the plotjobs web app."
)


def _read_spec(spec_file: BinaryIO) -> bytes:
    """The spec file's bytes, refused here already when they are not a JSON object."""
    data = spec_file.read()
    try:
        document = json.loads(data) if data.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise click.BadParameter(f"not valid JSON: {error}", param_hint="SPEC") from None
    if not isinstance(document, dict):
        raise click.BadParameter("the spec must be a JSON object", param_hint="SPEC")
    return json.dumps(document).encode()


def _describe(status: dict[str, Any]) -> str:
    line = f"{status.get('id')}: {status.get('state')} {round(100 * float(status.get('progress') or 0))}%"
    if status.get("stage"):
        line += f" ({status['stage']})"
    if status.get("position") is not None:
        line += f", {status['position']} ahead in the queue"
    if status.get("error"):
        line += f"\n  error: {status['error']}"
    return line


def _wait_with_progress(api: client.Client, status_url: str, timeout: float) -> dict[str, Any]:
    """Follow the job: a progress bar on a terminal, one line per new stage elsewhere (logs, pipes)."""
    on_terminal = sys.stderr.isatty()
    seen: list[str] = []
    with click.progressbar(
        length=100,
        label="rendering",
        show_percent=True,
        show_eta=False,
        item_show_func=lambda stage: stage,
        file=sys.stderr,
        hidden=not on_terminal,
    ) as bar:

        def show(status: dict[str, Any]) -> None:
            done = round(100 * float(status.get("progress") or 0))
            stage = str(status.get("stage") or status.get("state") or "")
            bar.update(max(0, done - bar.pos), current_item=stage)
            if not on_terminal and (not seen or seen[-1] != stage):
                seen.append(stage)
                click.echo(f"{done:3d}% {stage}", err=True)

        return api.wait(status_url, show, timeout=timeout)


@main.command()
@click.argument("spec_file", metavar="SPEC", type=click.File("rb"))
@click.option("--csv", "csv_file", type=click.File("rb"), help="CSV file whose columns the spec's series name.")
@server_option
@click.option("--wait", is_flag=True, help="Follow the job with a progress bar and download the chart.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Where to write the chart (implies --wait)."
)
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True, help="Seconds to wait.")
@click.option(
    "--generator",
    metavar="NAME",
    help="The generator to render with (default: the spec's, else chart); see generators.",
)
def submit(
    *,
    spec_file: BinaryIO,
    csv_file: BinaryIO | None,
    server: str,
    wait: bool,
    output: str | None,
    timeout: float,
    generator: str | None,
) -> None:
    """Submit the spec in SPEC (a JSON file, - for standard input) to a generator (the chart by default)."""
    spec = _read_spec(spec_file)
    csv_data = csv_file.read() if csv_file is not None else None
    try:
        api = client.Client(server)
        submitted = api.submit(spec, csv_data, generator)
        if not (wait or output):
            click.echo(submitted["id"])
            return
        status = _wait_with_progress(api, submitted["status_url"], timeout)
        if status.get("state") != "finished":
            reason = status.get("error") or "it has no result"
            raise click.ClickException(f"job {submitted['id']} ended {status.get('state')}: {reason}")
        result = api.result(submitted["result_url"])
    except client.ClientError as error:
        raise click.ClickException(str(error)) from None
    target = Path(output) if output else Path(Path(result.filename or f"chart-{submitted['id']}").name)
    try:
        target.write_bytes(result.data)
    except OSError as error:
        raise click.ClickException(f"cannot write {target}: {error.strerror or error}") from None
    click.echo(f"wrote {target} ({len(result.data)} bytes, {result.content_type})")


@main.command("generators")
@server_option
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer (with each spec's JSON Schema).")
def generator_list(server: str, as_json: bool) -> None:
    """List the generators the server serves: name, formats and title."""
    try:
        served = client.Client(server).generators()
    except client.ClientError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(served, indent=2))
        return
    for item in served:
        formats = ",".join(item.get("formats") or {})
        click.echo(f"{item.get('name')}\t{formats}\t{item.get('title')}")


@main.command()
@click.argument("job_id", metavar="ID")
@server_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(job_id: str, server: str, as_json: bool) -> None:
    """Show a job's state and progress; exit 1 if it failed, was stopped or canceled."""
    try:
        current = client.Client(server).status(job_id)
    except client.ClientError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(current, indent=2) if as_json else _describe(current))
    if current.get("state") in {"failed", "stopped", "canceled"}:
        sys.exit(1)


def _url_spec(
    settings: config_module.Settings,
    document: dict[str, Any],
    file_format: str | None,
    width: int | None,
    height: int | None,
) -> tuple[Generator, dict[str, Any], str]:
    """The generator a URL's spec names, the spec with the options applied, and its format; checked as the server will.

    BadParameter for a generator not served, a format it does not render, a size its spec has not, a bad spec,
    or one that is not reproducible.
    """
    from plotjobs import generators
    from plotjobs.config import DEFAULT_GENERATOR
    from plotjobs.errors import InvalidSpecError, UnknownGeneratorError
    from plotjobs.generators import GENERATOR_FIELD

    try:
        chosen = generators.get(str(document.get(GENERATOR_FIELD, DEFAULT_GENERATOR)), settings.generators)
    except UnknownGeneratorError as error:
        raise click.BadParameter(error.message, param_hint="--generator") from None
    fields = chosen.spec_model.model_fields
    sized = {key: value for key, value in document.items() if key != GENERATOR_FIELD}
    for option, field, value in (("--width", "width", width), ("--height", "height", height)):
        if value is not None:
            if field not in fields:
                raise click.BadParameter(f"a {chosen.name} spec has no {field} to override", param_hint=option)
            sized[field] = value
    if file_format is not None:
        if file_format not in chosen.content_types:
            formats = ", ".join(chosen.content_types)
            raise click.BadParameter(f"the {chosen.name} generator renders {formats}", param_hint="--format")
        if "format" in fields:
            sized["format"] = file_format
    try:
        spec = chosen.validate(sized)
    except InvalidSpecError as error:
        raise click.BadParameter(error.message, param_hint="SPEC") from None
    if not spec.is_reproducible():
        _, reason = spec.irreproducibility()
        raise click.BadParameter(f"a chart URL must draw the same picture every time: {reason}", param_hint="SPEC")
    return chosen, sized, spec.output_format


@main.command()
@click.argument("spec_file", metavar="SPEC", type=click.File("rb"))
@server_option
@click.option("--format", "file_format", help="One of the generator's formats (default: the spec's).")
@click.option("--width", type=click.IntRange(1), help="Override the width (the URL's w), for specs that have one.")
@click.option("--height", type=click.IntRange(1), help="Override the height (the URL's h), for specs that have one.")
@click.option("--json", "as_json", is_flag=True, help="Put the spec in the URL as JSON instead of base64url.")
@click.option("--short", is_flag=True, help="Store the spec on the server (POST /api/charts); print its short URL.")
@click.option(
    "--generator",
    metavar="NAME",
    help="The generator to render with (default: the spec's, else chart); see generators.",
)
def url(
    *,
    spec_file: BinaryIO,
    server: str,
    file_format: str | None,
    width: int | None,
    height: int | None,
    as_json: bool,
    short: bool,
    generator: str | None,
) -> None:
    """Print the URL that is the picture in SPEC: GET it, or put it in an <img>; signed when CHART_URL_SECRET is set."""
    from plotjobs import chart_urls
    from plotjobs.config import DEFAULT_GENERATOR
    from plotjobs.generators import GENERATOR_FIELD

    settings = _settings()
    document = json.loads(_read_spec(spec_file))
    if generator is not None:
        document[GENERATOR_FIELD] = generator
    chosen, sized, file_format = _url_spec(settings, document, file_format, width, height)
    secret = settings.chart_url_secret
    base = server.rstrip("/")
    if short:
        upload = {GENERATOR_FIELD: chosen.name, **sized} if chosen.name != DEFAULT_GENERATOR else sized
        body = json.dumps(upload).encode()
        signature = chart_urls.store_signature(secret, body) if secret else None
        try:
            stored = client.Client(server).store_chart(body, signature)
        except client.ClientError as error:
            raise click.ClickException(str(error)) from None
        click.echo(base + str(stored.get("path") or f"/c/{stored['id']}.{file_format}"))
        return
    path = chart_urls.chart_path(document, file_format, secret=secret, width=width, height=height, as_json=as_json)
    if len(path.encode()) > settings.chart_url_max_bytes:
        raise click.ClickException(
            f"the URL would be {len(path.encode())} bytes, over CHART_URL_MAX_BYTES "
            f"({settings.chart_url_max_bytes}): use --short to store the spec on the server"
        )
    click.echo(base + path)
