"""Real processes for tests: render workers and gunicorn, started and always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests
from redis import Redis

from plotjobs.cli.embedded_redis import free_port
from tests.support.waiting import wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def service_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a child process of the service under test."""
    env = dict(os.environ, REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` and reap it, killing it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _registered_workers(connection: Redis) -> set[bytes]:
    members: set[bytes] = connection.smembers("rq:workers")
    return members


@contextmanager
def running_worker(
    redis_url: str, connection: Redis, command: Sequence[str] | None = None, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker subprocess (``python worker.py`` by default), ready once it has registered."""
    before = _registered_workers(connection)
    argv = list(command) if command else [sys.executable, str(PROJECT_ROOT / "worker.py")]
    process = subprocess.Popen(argv, env=service_env(redis_url, **env), cwd=PROJECT_ROOT)
    try:
        wait_for(
            lambda: process.poll() is not None or len(_registered_workers(connection) - before) > 0,
            timeout=30,
            what="the worker to register",
        )
        assert process.poll() is None, f"worker exited with {process.returncode}"
        yield process
    finally:
        stop(process)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def running_gunicorn(
    redis_url: str,
    workers: int = 2,
    log_path: Path | None = None,
    *,
    gunicorn: Sequence[str] = (sys.executable, "-m", "gunicorn"),
    app: str = "wsgi:app",
    cwd: Path = PROJECT_ROOT,
    **env: str,
) -> Iterator[str]:
    """A real gunicorn serving the app on a free port (its output into ``log_path`` if given); yields its base URL.

    ``gunicorn`` is the command that starts it (another environment's ``bin/gunicorn``, say), run in ``cwd``.
    """
    port = free_port()
    command = [*gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", str(workers), app]
    log_file = log_path.open("ab") if log_path else None
    try:
        process = subprocess.Popen(
            command, env=service_env(redis_url, **env), cwd=cwd, stdout=log_file, stderr=log_file
        )
    finally:
        if log_file is not None:
            log_file.close()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _answers(base_url + "/"), timeout=30, what="gunicorn to serve")
        assert process.poll() is None, f"gunicorn exited with {process.returncode}"
        yield base_url
    finally:
        stop(process)


DEV_BANNER = "plotjobs is running"


@contextmanager
def running_dev(**env: str) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """``plotjobs dev`` on a free port without REDIS_URL; yields the process, its URL and its output so far.

    Its output is drained all along: the service logs a line per request and per job, and an
    unread pipe would fill up and stall every process writing to it.
    """
    port = free_port()
    child_env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    child_env.update(PORT=str(port), **env)
    process = subprocess.Popen(
        [sys.executable, "-m", "plotjobs", "dev"], env=child_env, cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    banner = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if DEV_BANNER in line:
                banner.set()
        banner.set()

    reader = threading.Thread(target=drain, name="plotjobs-dev-output", daemon=True)
    reader.start()
    try:
        assert banner.wait(timeout=60), lines
        assert process.poll() is None, lines
        yield process, f"http://127.0.0.1:{port}", lines
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def stop_dev(process: subprocess.Popen[str], lines: list[str]) -> int:
    """Ctrl-C ``plotjobs dev`` and return its exit code; its last output explains a slow stop."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError("plotjobs dev did not stop within 120 s:\n" + "".join(lines[-30:])) from None


def post_when_ready(base_url: str, spec: dict[str, object]) -> requests.Response:
    """POST a spec once the server answers: gunicorn listens before its workers have booted."""

    def answered() -> requests.Response | None:
        try:
            return requests.post(base_url + "/api/jobs", json=spec, timeout=10)
        except (requests.ConnectionError, requests.Timeout):
            return None

    return wait_for(answered, timeout=60, what="the dev server to accept a job")
