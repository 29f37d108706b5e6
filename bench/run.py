"""plotjobs benchmark: each performance target, measured against a baseline from the same run.

Run it with ``bench/run.sh`` (see bench/README.md). It starts a private Redis, render
workers, gunicorn and, when Celery is installed, a Celery worker on RabbitMQ (``AMQP_URL``)
or else on the private Redis, and prints one table. The machine is shared and noisy, so
every figure is set beside a baseline measured in the same run, and throughput is the
median of interleaved rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psutil
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plotjobs import keys  # noqa: E402
from plotjobs.cli.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from plotjobs.config import Settings  # noqa: E402
from plotjobs.queue import jobs, tasks  # noqa: E402
from plotjobs.render import chart as charts  # noqa: E402
from plotjobs.spec.chart import ChartSpec  # noqa: E402

SUBMIT_PATH = "/api/jobs"
SEEDED = {"title": "cached", "seed": 42, "start": "2026-01-01"}
LOAD_SPEC = {"title": "load"}
# Every request comes from the bench's one address, and the web-tier load queues thousands of jobs
# on a queue no worker serves: the service's admission limits would refuse most of them with 429.
SERVICE_LIMITS = {"MAX_JOBS_PER_CLIENT": "1000000", "MAX_QUEUE_DEPTH": "1000000"}
# Workers listen so that a job on queue sN is served by exactly N of them.
WORKER_QUEUES = ["s1,s2,s4", "s2,s4", "s4", "s4"]
IDLE_QUEUE = "idle"


class Row:
    """One line of the results table."""

    # A row is its six cells in table order, so the calls below read like the table.
    def __init__(self, target: str, measured: str, baseline: str, ratio: str, goal: str, met: bool | None) -> None:  # noqa: PLR0917
        self.cells = [target, measured, baseline, ratio, goal, {True: "yes", False: "**no**", None: "—"}[met]]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Processes:
    """Child processes of the run, all stopped at the end."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` quietly in the project directory."""
        process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=False
        )
        self.children.append(process)
        return process

    def stop_all(self) -> None:
        """Terminate every child and reap it."""
        for process in self.children:
            if process.poll() is None:
                process.terminate()
        for process in self.children:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def service_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Environment of a service process."""
    env = dict(os.environ, REDIS_URL=redis_url, SECRET_KEY="bench", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def start_gunicorn(processes: Processes, redis_url: str, workers: int, queue: str) -> tuple[str, psutil.Process]:
    """gunicorn with the production settings module; returns host:port and its master."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:plotjobs.web.gunicorn_config",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "wsgi:app"]  # fmt: skip
    process = processes.start(argv, service_env(redis_url, QUEUES=queue, LOG_LEVEL="WARNING", **SERVICE_LIMITS))

    def answers() -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/")
            return connection.getresponse().status == 200
        except OSError:
            return False

    wait_until(answers, 30, "gunicorn")
    return f"127.0.0.1:{port}", psutil.Process(process.pid)


def accepted(status: int, body: bytes) -> dict[str, Any]:
    """The answer to ``POST /api/jobs``; stop the run, with the server's reason, when it was refused."""
    if status not in (200, 202):
        raise RuntimeError(f"POST {SUBMIT_PATH} was refused with {status}: {body.decode(errors='replace')[:500]}")
    answer: dict[str, Any] = json.loads(body)
    return answer


class Client:
    """A keep-alive HTTP/1.1 client for one server."""

    def __init__(self, address: str) -> None:
        host, port = address.split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request and read the whole answer."""
        headers = {"Content-Type": "application/json"} if body else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()


# --- throughput ---------------------------------------------------------------------------


def _render_default(_: int) -> None:
    charts.render(ChartSpec())


def inprocess_round(pool: Any, count: int) -> float:
    """Jobs per second rendering in a pool of preloaded processes: the limit."""
    started = time.perf_counter()
    pool.map(_render_default, range(count), chunksize=1)
    return count / (time.perf_counter() - started)


def rq_round(connection: Redis, redis_url: str, queue: str, count: int) -> float:
    """Jobs per second through plotjobs: enqueue ``count`` at once, until the last result."""
    settings = Settings(redis_url=redis_url, queues=(queue,), secret_key="bench")
    started = time.perf_counter()
    submitted = [jobs.enqueue_render(connection, settings, ChartSpec()) for _ in range(count)]
    for job in submitted:
        if job.latest_result(timeout=120) is None:
            raise RuntimeError(f"job {job.id} gave no result")
    return count / (time.perf_counter() - started)


class CeleryStack:
    """A Celery prefork worker (2 processes) running the same render, if Celery is installed."""

    def __init__(self, processes: Processes, redis_url: str) -> None:
        self.skip_reason: str | None = None
        self.broker_name = ""
        try:
            import celery  # noqa: F401
        except ImportError:
            self.skip_reason = "Celery is not installed (run bench/run.sh, which installs requirements-bench.txt)"
            return
        amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
        self.queue = f"plotjobs-bench-{os.getpid()}-{int(time.time())}"
        if _reachable(amqp_url):
            broker, self.broker_name = amqp_url, "RabbitMQ"
        else:
            broker, self.broker_name = _database(redis_url, 2), "Redis (no RabbitMQ at AMQP_URL)"
        os.environ.update(
            BENCH_CELERY_BROKER=broker,
            BENCH_CELERY_BACKEND=_database(redis_url, 1),
            BENCH_CELERY_QUEUE=self.queue,
            BENCH_STORE_URL=_database(redis_url, 3),
        )
        from bench import celery_app

        self.app = celery_app.app
        self.task = celery_app.render
        argv = [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker", "-P", "prefork", "-c", "2",
                "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"bench-{os.getpid()}@%h"]  # fmt: skip
        processes.start(argv, dict(os.environ))
        self.task.delay(ChartSpec().model_dump(mode="json")).get(timeout=120)

    def round(self, count: int) -> float:
        """Jobs per second through Celery: send ``count`` at once, until the last result."""
        spec = ChartSpec().model_dump(mode="json")
        started = time.perf_counter()
        results = [self.task.delay(spec) for _ in range(count)]
        for result in results:
            result.get(timeout=120)
        return count / (time.perf_counter() - started)

    def close(self) -> None:
        """Delete the run's queue from the shared broker."""
        if self.skip_reason is None:
            with self.app.connection_for_write() as connection:
                connection.default_channel.queue_delete(self.queue)


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=1):
            return True
    except OSError:
        return False


def _database(redis_url: str, number: int) -> str:
    parts = urlsplit(redis_url)
    return f"{parts.scheme}://{parts.netloc}/{number}"


# --- streams ------------------------------------------------------------------------------


class SSEReader:
    """A raw socket reading one event stream; counts ``status`` events as they arrive."""

    def __init__(self, address: str, job_id: str) -> None:
        host, port = address.split(":")
        self.socket = socket.create_connection((host, int(port)), timeout=30)
        request = f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
        self.socket.sendall(request.encode())
        self.buffer = b""

    def events(self) -> int:
        """How many status events have arrived so far."""
        return self.buffer.count(b"event: status")

    def feed(self) -> None:
        """Read what the socket has."""
        chunk = self.socket.recv(65536)
        if not chunk:
            raise RuntimeError("the event stream closed")
        self.buffer += chunk

    def wait_for(self, count: int, timeout: float = 10) -> float:
        """Block until ``count`` events have arrived; the moment it happened."""
        self.socket.settimeout(timeout)
        while self.events() < count:
            self.feed()
        return time.perf_counter()

    def close(self) -> None:
        """Hang up."""
        self.socket.close()


def idle_job(connection: Redis, redis_url: str) -> Any:
    """A job on a queue no worker serves: it stays queued while we publish updates for it."""
    settings = Settings(redis_url=redis_url, queues=(IDLE_QUEUE,), secret_key="bench")
    return jobs.enqueue_render(connection, settings, ChartSpec())


def sse_delay(connection: Redis, redis_url: str, address: str, samples: int) -> tuple[list[float], list[float]]:
    """Delays from a worker's progress update to a bare subscriber (baseline) and to the SSE client."""
    job = idle_job(connection, redis_url)
    subscriber = connection.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(keys.events(job.id))
    reader = SSEReader(address, job.id)
    reader.wait_for(1)
    bare, streamed = [], []
    for number in range(samples):
        started = time.perf_counter()
        tasks.report_progress(job, 0.1 + number / (samples * 2), f"bench {number}")
        while subscriber.get_message(timeout=5) is None:
            pass
        bare.append(time.perf_counter() - started)
        streamed.append(reader.wait_for(number + 2) - started)
    reader.close()
    subscriber.close()
    return bare, streamed


def many_streams(connection: Redis, redis_url: str, address: str, count: int) -> tuple[int, list[float]]:
    """Open ``count`` streams on one process, then publish once per job: streams held, delivery delays."""
    watched = [idle_job(connection, redis_url) for _ in range(10)]
    readers = [SSEReader(address, watched[number % len(watched)].id) for number in range(count)]
    held = _wait_all(readers, 1, timeout=60)
    started = time.perf_counter()
    for job in watched:
        tasks.report_progress(job, 0.5, "fan-out")
    arrivals = _wait_all(readers, 2, timeout=30)
    delays = [moment - started for moment in arrivals.values()]
    for reader in readers:
        reader.close()
    return len(held), delays


def _wait_all(readers: list[SSEReader], count: int, timeout: float) -> dict[int, float]:
    arrived: dict[int, float] = {}
    selector = selectors.DefaultSelector()
    for index, reader in enumerate(readers):
        reader.socket.setblocking(False)
        if reader.events() >= count:
            arrived[index] = time.perf_counter()
        else:
            selector.register(reader.socket, selectors.EVENT_READ, index)
    deadline = time.monotonic() + timeout
    while len(arrived) < len(readers) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            index = key.data
            readers[index].feed()
            if readers[index].events() >= count:
                arrived[index] = time.perf_counter()
                selector.unregister(key.fileobj)
    selector.close()
    return arrived


# --- web tier -----------------------------------------------------------------------------


def wrk(url: str, seconds: int, connections: int, script: str | None = None) -> tuple[float, float, int]:
    """Requests/s, p99 latency (ms) and non-2xx count from wrk."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            argv[1:1] = ["-s", lua.name]
        output = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    failures = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return rate, p99, int(failures.group(1)) if failures else 0


def python_load(
    address: str, method: str, path: str, body: bytes | None, *, seconds: float, threads: int
) -> tuple[float, float, int]:
    """The same figures from keep-alive clients in threads, when wrk is not installed."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        mine, bad = [], 0
        session = Client(address)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status, _ = session.request(method, path, body)
            mine.append(time.perf_counter() - started)
            bad += status >= 300
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(latencies) / (time.perf_counter() - started), percentile(latencies, 0.99) * 1000, failures[0]


def load(
    address: str, method: str, path: str, body: bytes | None, *, seconds: int, connections: int
) -> tuple[float, float, int]:
    """Load ``path`` with wrk if present, else with Python threads."""
    if shutil.which("wrk"):
        script = None
        if method == "POST":
            script = (
                f'wrk.method = "POST"\nwrk.body = {json.dumps((body or b"").decode())}\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
        return wrk(f"http://{address}{path}", seconds, connections, script)
    return python_load(address, method, path, body, seconds=seconds, threads=min(connections, 16))


# --- growth -------------------------------------------------------------------------------


def render_points(x: np.ndarray, y: np.ndarray, downsample: bool) -> float:
    """Seconds to render one line of these points as an 800x500 PNG."""
    started = time.perf_counter()
    if downsample:
        x, y = charts.downsample_line(x, y, 2 * 800)
    figure = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(figure)
    figure.add_subplot().plot(x, y)
    figure.savefig(_Sink(), format="png")
    return time.perf_counter() - started


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)


def worker_rss(pids: list[int]) -> list[float]:
    """Resident memory of each worker, MB."""
    return [psutil.Process(pid).memory_info().rss / 2**20 for pid in pids]


# --- the run ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    parser.add_argument("--samples", type=int, default=30, help="samples per latency figure")
    parser.add_argument("--streams", type=int, default=500, help="event streams held by one process")
    parser.add_argument("--memory-jobs", type=int, default=2000, help="jobs for the worker memory figure")
    parser.add_argument("--load-seconds", type=int, default=8, help="seconds of each web-tier load")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections of the web-tier load")
    parser.add_argument("--output", type=Path, help="also write the table (markdown) here")
    options = parser.parse_args()

    processes = Processes()
    redis_server = EmbeddedRedis().start()
    rows: list[Row] = []
    notes: list[str] = []
    celery: CeleryStack | None = None
    pool = None
    try:
        redis_url = redis_server.url
        connection = Redis.from_url(redis_url)
        log(f"private Redis at {redis_url}")
        workers = [
            processes.start([sys.executable, str(ROOT / "worker.py")], service_env(redis_url, QUEUES=queues))
            for queues in WORKER_QUEUES
        ]
        wait_until(lambda: connection.scard("rq:workers") == len(workers), 60, "the render workers")
        main_web, _ = start_gunicorn(processes, redis_url, 2, "s2")
        stream_web, stream_master = start_gunicorn(processes, redis_url, 1, IDLE_QUEUE)
        load_web, _ = start_gunicorn(processes, redis_url, int(os.environ.get("WEB_CONCURRENCY", "4")), IDLE_QUEUE)
        pool = get_context("fork").Pool(2, initializer=charts.warm_up)
        pool.map(_render_default, range(4))
        charts.warm_up()
        celery = CeleryStack(processes, redis_url)
        if celery.skip_reason:
            log(f"skipping Celery: {celery.skip_reason}")
            notes.append(f"Celery skipped: {celery.skip_reason}.")

        # 1. Throughput, interleaved rounds.
        limit, ours, theirs = [], [], []
        for number in range(options.rounds):
            log(f"throughput round {number + 1}/{options.rounds}")
            limit.append(inprocess_round(pool, options.jobs))
            ours.append(rq_round(connection, redis_url, "s2", options.jobs))
            if celery.skip_reason is None:
                theirs.append(celery.round(options.jobs))
        limit_rate, our_rate = statistics.median(limit), statistics.median(ours)
        rows.append(Row("1. throughput, 2 RQ workers vs render in 2 processes", f"{our_rate:.1f} jobs/s",
                        f"{limit_rate:.1f} jobs/s", f"{our_rate / limit_rate:.2f}", ">= 0.95",
                        our_rate / limit_rate >= 0.95))  # fmt: skip
        if theirs:
            celery_rate = statistics.median(theirs)
            rows.append(Row(f"1. throughput vs Celery prefork -c 2 ({celery.broker_name} + Redis)",
                            f"{our_rate:.1f} jobs/s", f"{celery_rate:.1f} jobs/s", f"{our_rate / celery_rate:.2f}",
                            ">= 1.00", our_rate >= celery_rate))  # fmt: skip
            rows.append(Row("   Celery vs render in 2 processes", f"{celery_rate:.1f} jobs/s",
                            f"{limit_rate:.1f} jobs/s", f"{celery_rate / limit_rate:.2f}", "(reference)",
                            None))  # fmt: skip
        pool.close()
        pool.join()
        pool = None

        # 2. Latency: one job on an idle system, HTTP submit to result stored, against a bare render.
        log("latency")
        client = Client(main_web)
        bare, through, posted, waited, executed = [], [], [], [], []
        for _ in range(options.samples):
            started = time.perf_counter()
            charts.render(ChartSpec())
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            status, body = client.request("POST", SUBMIT_PATH)
            posted.append(time.perf_counter() - started)
            job = jobs.fetch(connection, accepted(status, body)["id"])
            if job.latest_result(timeout=30) is None:
                raise RuntimeError("latency job gave no result")
            through.append(time.perf_counter() - started)
            job.refresh()
            waited.append((job.started_at - job.enqueued_at).total_seconds())
            executed.append((job.ended_at - job.started_at).total_seconds())
        bare_p50, through_p50 = statistics.median(bare) * 1000, statistics.median(through) * 1000
        rows.append(Row("2. latency p50, HTTP submit -> result stored", f"{through_p50:.1f} ms",
                        f"{bare_p50:.1f} ms bare render", f"+{through_p50 - bare_p50:.1f} ms", "<= +15 ms",
                        through_p50 - bare_p50 <= 15))  # fmt: skip
        rows.append(Row("   of which: POST answered / queued -> started / started -> ended, p50",
                        " / ".join(f"{statistics.median(part) * 1000:.1f}" for part in (posted, waited, executed))
                        + " ms", f"{bare_p50:.1f} ms bare render", "—", "(reference)", None))  # fmt: skip

        # 3. Pushed progress: delivery delay and streams held by one process.
        log("event stream delay")
        direct, streamed = sse_delay(connection, redis_url, main_web, options.samples)
        direct_p50, sse_p50 = statistics.median(direct) * 1000, statistics.median(streamed) * 1000
        sse_p99 = percentile(streamed, 0.99) * 1000
        rows.append(Row("3. progress update -> SSE client, p50 (p99)", f"{sse_p50:.1f} ms ({sse_p99:.1f} ms)",
                        f"{direct_p50:.2f} ms bare Redis subscriber", f"+{sse_p50 - direct_p50:.1f} ms", "<= 20 ms",
                        sse_p50 <= 20))  # fmt: skip
        log(f"{options.streams} streams on one process")
        held, delays = many_streams(connection, redis_url, stream_web, options.streams)
        web_processes = len(stream_master.children())
        rows.append(Row(f"3. open streams held by {web_processes} web process", f"{held}",
                        f"{options.streams} opened", f"{held / options.streams:.2f}", f">= {options.streams}",
                        held >= options.streams and web_processes == 1))  # fmt: skip
        if delays:
            rows.append(Row(f"3. one update fanned out to {len(delays)} streams, p50 / max",
                            f"{statistics.median(delays) * 1000:.0f} / {max(delays) * 1000:.0f} ms", "—", "—",
                            "(reference)", None))  # fmt: skip

        # 4. No work twice: a repeated reproducible spec against a render.
        log("cache hits")
        seeded = json.dumps(SEEDED).encode()
        status, body = client.request("POST", SUBMIT_PATH, seeded)
        first = accepted(status, body)
        jobs.fetch(connection, first["id"]).latest_result(timeout=30)
        answers, hits = [], []
        for _ in range(options.samples):
            started = time.perf_counter()
            status, body = client.request("POST", SUBMIT_PATH, seeded)
            answered = time.perf_counter()
            answer = accepted(status, body)
            result_status, data = client.request("GET", answer.get("file_url", answer["result_url"]))
            answers.append(answered - started)
            hits.append(time.perf_counter() - started)
            if status != 200 or not answer["reused"] or result_status != 200 or not data:
                raise RuntimeError(f"a repeated spec was not answered from the stored result: {status} {answer}")
        answer_p50, hit_p50 = statistics.median(answers) * 1000, statistics.median(hits) * 1000
        rows.append(Row("4. repeated seeded spec: POST + GET file, p50", f"{hit_p50:.2f} ms",
                        f"{bare_p50:.1f} ms bare render", f"{bare_p50 / hit_p50:.0f}x faster", ">= 50x",
                        bare_p50 / hit_p50 >= 50))  # fmt: skip
        rows.append(Row("4. repeated seeded spec: POST answered 200 with the file's URL, p50", f"{answer_p50:.2f} ms",
                        f"{bare_p50:.1f} ms bare render", f"{bare_p50 / answer_p50:.0f}x faster", ">= 50x",
                        bare_p50 / answer_p50 >= 50))  # fmt: skip

        # 5. Web tier, render workers idle.
        log("web tier load")
        status_path = first["status_url"]
        for connections in (options.connections, options.connections * 4):
            rate, p99, failures = load(
                load_web, "GET", status_path, None, seconds=options.load_seconds, connections=connections
            )
            rows.append(Row(f"5. GET status, {connections} connections: req/s (p99)", f"{rate:.0f} ({p99:.1f} ms)",
                            "1500 req/s, 25 ms", f"{rate / 1500:.2f} ({p99 / 25:.2f})", ">= 1.00 (< 1.00)",
                            rate >= 1500 and p99 < 25 and failures == 0))  # fmt: skip
        post_body = json.dumps(LOAD_SPEC).encode()
        accepted(*Client(load_web).request("POST", SUBMIT_PATH, post_body))
        rate, p99, failures = load(
            load_web, "POST", SUBMIT_PATH, post_body, seconds=options.load_seconds, connections=options.connections
        )
        rows.append(Row("5. POST /api/jobs: jobs/s (p99)", f"{rate:.0f} ({p99:.0f} ms)", "500 target",
                        f"{rate / 500:.2f}", ">= 1.00", rate >= 500 and failures == 0))  # fmt: skip
        connection.delete(jobs.queue(connection, IDLE_QUEUE).key)

        # 6. Growth: render time against points per series, with and without downsampling.
        log("growth")
        rng = np.random.default_rng(0)
        base_time: dict[bool, float] = {}
        for exponent in range(2, 7):
            count = 10**exponent
            x = np.arange(count, dtype=float)
            y = np.cumsum(rng.standard_normal(count))
            cells = []
            for downsample in (True, False):
                repeats = 3 if count <= 10**5 else 1
                seconds = statistics.median(render_points(x, y, downsample) for _ in range(repeats))
                base_time.setdefault(downsample, seconds)
                cells.append(f"{seconds * 1000:.0f} ms ({seconds / base_time[downsample]:.1f}x)")
            rows.append(Row(f"6. render 10^{exponent} points: downsampled (plain)", cells[0], cells[1],
                            f"data {count // 100}x", "growth <= data", None))  # fmt: skip

        log("scaling with 1, 2, 4 workers")
        scaling = {queue: rq_round(connection, redis_url, queue, 60) for queue in ("s1", "s2", "s4")}
        rows.append(Row("6. throughput with 1 / 2 / 4 workers on 2 cores",
                        " / ".join(f"{scaling[q]:.1f}" for q in ("s1", "s2", "s4")) + " jobs/s",
                        f"{scaling['s1']:.1f} jobs/s (1 worker)",
                        " / ".join(f"{scaling[q] / scaling['s1']:.2f}" for q in ("s1", "s2", "s4")),
                        "4 >= 0.9 x 2", scaling["s4"] >= 0.9 * scaling["s2"]))  # fmt: skip

        log(f"worker memory over {options.memory_jobs} jobs")
        pids = [workers[0].pid, workers[1].pid]
        samples = [max(worker_rss(pids))]
        done = 0
        while done < options.memory_jobs:
            batch = min(250, options.memory_jobs - done)
            rq_round(connection, redis_url, "s2", batch)
            done += batch
            samples.append(max(worker_rss(pids)))
        settled = samples[min(2, len(samples) - 1)]
        rows.append(Row(f"6. worker RSS over {done} jobs: start / after 500 / end (peak)",
                        f"{samples[0]:.0f} / {settled:.0f} / {samples[-1]:.0f} ({max(samples):.0f}) MB",
                        f"{settled:.0f} MB after 500 jobs", f"{samples[-1] / settled:.2f}", "<= 1.05",
                        samples[-1] / settled <= 1.05))  # fmt: skip
    finally:
        if pool is not None:
            pool.terminate()
        if celery is not None:
            celery.close()
        processes.stop_all()
        redis_server.stop()

    header = ["target", "measured", "baseline (same run)", "ratio", "goal", "met"]
    lines = [
        f"plotjobs benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}: {psutil.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, {'wrk' if shutil.which('wrk') else 'Python threads'} for web load",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row.cells) + " |" for row in rows),
        *(["", *notes] if notes else []),
    ]
    table = "\n".join(lines)
    print(table)
    if options.output:
        options.output.write_text(table + "\n")


if __name__ == "__main__":
    main()
