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

from rq.job import JobStatus  # noqa: E402

from plotjobs import keys  # noqa: E402
from plotjobs.cli.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from plotjobs.config import Settings  # noqa: E402
from plotjobs.queue import jobs, tasks  # noqa: E402
from plotjobs.render import chart as charts  # noqa: E402
from plotjobs.spec.chart import ChartSpec  # noqa: E402

SUBMIT_PATH = "/api/jobs"
TABLE_HEADER = ["target", "measured", "baseline (same run)", "ratio", "goal", "met"]
SEEDED = {"title": "cached", "seed": 42, "start": "2026-01-01"}
LOAD_SPEC = {"title": "load"}
# Every request comes from the bench's one address, and the web-tier load queues thousands of jobs
# on a queue no worker serves: the service's admission limits would refuse most of them with 429.
SERVICE_LIMITS = {"MAX_JOBS_PER_CLIENT": "1000000", "MAX_QUEUE_DEPTH": "1000000"}
# Workers listen so that a job on queue sN is served by exactly N of them.
WORKER_QUEUES = ["s1,s2,s4", "s2,s4", "s4", "s4"]
IDLE_QUEUE = "idle"
# No-op render workers for the scale figures: a job on queue nN is served by exactly N of them.
NOOP_WORKER_COUNTS = (1, 2, 4, 8)
NOOP_WORKER_QUEUES = [
    ",".join(f"n{count}" for count in NOOP_WORKER_COUNTS if index < count) for index in range(max(NOOP_WORKER_COUNTS))
]
# The CPU-heavier chart of the throughput figures: a scatter of this many points, where Redis' share matters less.
SCATTER_POINTS = 20_000
# Status reads are compared with a naive Flask + RQ endpoint at these connection counts.
STATUS_CONNECTIONS = (8, 32)


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

    def stop(self, children: list[subprocess.Popen[bytes]]) -> None:
        """Terminate these children and reap them."""
        for process in children:
            if process.poll() is None:
                process.terminate()
        for process in children:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        """Terminate every child and reap it."""
        self.stop(self.children)


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
    # The chart service alone: the figures compare it with a plain Flask + RQ (or Celery) chart service.
    env = dict(os.environ, REDIS_URL=redis_url, SECRET_KEY="bench", PYTHONUNBUFFERED="1", GENERATORS="chart")
    env.update(extra)
    return env


def start_gunicorn(
    processes: Processes, redis_url: str, workers: int, queue: str, app: str = "wsgi:app", **extra: str
) -> tuple[str, psutil.Process]:
    """gunicorn serving ``app`` with plotjobs' production settings module; returns host:port and its master."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:plotjobs.web.gunicorn_config",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), app]  # fmt: skip
    environment = service_env(redis_url, QUEUES=queue, LOG_LEVEL="WARNING", **SERVICE_LIMITS, **extra)
    process = processes.start(argv, environment)

    def answers() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status < 500
        except OSError:
            return False
        finally:
            connection.close()

    wait_until(answers, 30, f"gunicorn serving {app}")
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

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request and read the whole answer."""
        headers = {**({"Content-Type": "application/json"} if body else {}), **(headers or {})}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        """Hang up."""
        self.connection.close()


# --- throughput ---------------------------------------------------------------------------


def scatter_spec() -> ChartSpec:
    """A scatter of SCATTER_POINTS points given inline: a chart whose render costs several times the default's."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(SCATTER_POINTS).round(4).tolist()
    y = (rng.standard_normal(SCATTER_POINTS) + np.asarray(x)).round(4).tolist()
    return ChartSpec.model_validate({"kind": "scatter", "title": "scatter", "series": [{"name": "xy", "x": x, "y": y}]})


# The charts of the throughput rounds, by name; set before the pool forks, so its processes have them.
THROUGHPUT_SPECS: dict[str, ChartSpec] = {}


def _render_named(name: str) -> None:
    charts.render(THROUGHPUT_SPECS[name])


def inprocess_round(pool: Any, count: int, name: str) -> float:
    """Jobs per second rendering the chart ``name`` in a pool of preloaded processes: the limit."""
    started = time.perf_counter()
    pool.map(_render_named, [name] * count, chunksize=1)
    return count / (time.perf_counter() - started)


def rq_round(connection: Redis, redis_url: str, queue: str, count: int, spec: ChartSpec | None = None) -> float:
    """Jobs per second through plotjobs: enqueue ``count`` at once, until the last result."""
    settings = Settings(redis_url=redis_url, queues=(queue,), secret_key="bench")
    chart = spec or ChartSpec()
    started = time.perf_counter()
    submitted = [jobs.enqueue_render(connection, settings, chart) for _ in range(count)]
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

    def round(self, count: int, chart: ChartSpec) -> float:
        """Jobs per second through Celery: send ``count`` at once, until the last result."""
        spec = chart.model_dump(mode="json")
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


def client_address(number: int) -> str:
    """The address of the ``number``-th client of a load, as a proxy in front of the app would forward it."""
    return f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"


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
            status, _ = session.request(method, path, body, {"X-Forwarded-For": client_address(len(mine))})
            mine.append(time.perf_counter() - started)
            bad += status >= 300
        session.close()
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
    """Load ``path`` with wrk if present, else with Python threads.

    Each request says it comes from another client address (``X-Forwarded-For``, which only an app
    with PROXY_HOPS set believes): submissions come from many users, as in production, and a
    client's limit (MAX_JOBS_PER_CLIENT, checked against every job the client holds) stays small.
    """
    if shutil.which("wrk"):
        script = None
        if method == "POST":
            script = (
                f'wrk.method = "POST"\nwrk.body = {json.dumps((body or b"").decode())}\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                "local submitted = 0\n"
                "request = function()\n"
                "  submitted = submitted + 1\n"
                '  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(submitted / 65536) % 256,'
                " math.floor(submitted / 256) % 256, submitted % 256)\n"
                "  return wrk.format()\n"
                "end\n"
            )
        return wrk(f"http://{address}{path}", seconds, connections, script)
    return python_load(address, method, path, body, seconds=seconds, threads=min(connections, 16))


# --- status reads against a naive endpoint -------------------------------------------------


def running_job(connection: Redis, redis_url: str) -> str:
    """A job in the state a worker leaves it in mid-render: started, with progress in its meta.

    Made afresh for each load, which is shorter than WORKER_LIVENESS_TIMEOUT: the workers' sweep
    recovers a started job that no worker holds only once it has seen it that long.
    """
    job = idle_job(connection, redis_url)
    jobs.queue(connection, IDLE_QUEUE).remove(job.id)
    job.started_at = dt.datetime.now(dt.UTC)
    job.set_status(JobStatus.STARTED)
    job.meta = tasks.progress_meta(0.5, "drawing")
    job.save()
    return job.id


def compare_status_reads(
    connection: Redis, redis_url: str, ours: str, naive: str, finished_id: str, *, seconds: int, rounds: int
) -> list[Row]:
    """GET status of a finished and a running job on plotjobs and on the naive endpoint, interleaved rounds."""
    rows = []
    for state in ("finished", "running"):
        for connections in STATUS_CONNECTIONS:
            figures: dict[str, list[tuple[float, float]]] = {"ours": [], "naive": []}
            for _ in range(rounds):
                for side, address in (("ours", ours), ("naive", naive)):
                    job_id = finished_id if state == "finished" else running_job(connection, redis_url)
                    rate, p99, failures = load(
                        address, "GET", f"/api/jobs/{job_id}", None, seconds=seconds, connections=connections
                    )
                    if failures:
                        raise RuntimeError(f"{failures} status reads of the {state} job failed on {side}")
                    figures[side].append((rate, p99))
            (our_rate, our_p99), (naive_rate, naive_p99) = (
                (statistics.median(rate for rate, _ in runs), statistics.median(p99 for _, p99 in runs))
                for runs in (figures["ours"], figures["naive"])
            )
            rows.append(Row(f"status read, {state} job, {connections} connections: req/s (p99)",
                            f"{our_rate:.0f} ({our_p99:.1f} ms)", f"{naive_rate:.0f} ({naive_p99:.1f} ms) naive",
                            f"{our_rate / naive_rate:.2f} ({our_p99 / naive_p99:.2f})", ">= 1.50 (< 1.00)",
                            our_rate >= 1.5 * naive_rate and our_p99 < naive_p99))  # fmt: skip
    return rows


# --- scale headroom -----------------------------------------------------------------------


def redis_cpu_seconds(connection: Redis) -> float:
    """CPU time the Redis server has used so far (user and system)."""
    cpu = connection.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def redis_idle_cpu(connection: Redis, seconds: float = 2.0) -> float:
    """Redis' CPU seconds per second with every worker idle: its own timers, heartbeats, the sweep."""
    cpu_before, started = redis_cpu_seconds(connection), time.perf_counter()
    time.sleep(seconds)  # a measurement interval, not a wait for anything
    return (redis_cpu_seconds(connection) - cpu_before) / (time.perf_counter() - started)


def noop_scaling(connection: Redis, redis_url: str, count: int) -> list[Row]:
    """Jobs/s of no-op renders with 1, 2, 4 and 8 workers, and the Redis CPU each job takes.

    The CPU per job is all Redis used during the round divided by its jobs: an upper bound, since
    what Redis uses idle (reported beside it) is in it too.
    """
    idle = redis_idle_cpu(connection)
    rates, cpu_per_job = {}, {}
    for workers in NOOP_WORKER_COUNTS:
        rq_round(connection, redis_url, f"n{workers}", max(4, workers))  # every worker has had a job
        cpu_before = redis_cpu_seconds(connection)
        rates[workers] = rq_round(connection, redis_url, f"n{workers}", count)
        cpu_per_job[workers] = (redis_cpu_seconds(connection) - cpu_before) / count
    peak = max(rates, key=rates.__getitem__)
    saturation = 1 / cpu_per_job[peak]
    counts = " / ".join(str(workers) for workers in NOOP_WORKER_COUNTS)
    return [
        Row(f"scale: no-op renders, {counts} workers", " / ".join(f"{rates[w]:.0f}" for w in NOOP_WORKER_COUNTS)
            + " jobs/s", f"{rates[1]:.0f} jobs/s (1 worker)",
            " / ".join(f"{rates[w] / rates[1]:.2f}" for w in NOOP_WORKER_COUNTS), "(reference)", None),
        Row(f"scale: Redis CPU per job, {counts} workers",
            " / ".join(f"{cpu_per_job[w] * 1000:.3f}" for w in NOOP_WORKER_COUNTS) + " ms",
            f"idle: {idle * 1000:.1f} ms of CPU per second", "—", "(reference)", None),
        Row("scale: jobs/s one Redis core serves at that cost (1 s / CPU per job)", f"{saturation:.0f} jobs/s",
            f"{rates[peak]:.0f} jobs/s reached here ({peak} workers)", f"{rates[peak] / saturation:.2f} of it",
            "(reference)", None),
    ]  # fmt: skip


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


def main(argv: list[str] | None = None) -> str:
    """Measure every target, print the table and return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    parser.add_argument("--samples", type=int, default=30, help="samples per latency figure")
    parser.add_argument("--streams", type=int, default=500, help="event streams held by one process")
    parser.add_argument("--memory-jobs", type=int, default=2000, help="jobs for the worker memory figure")
    parser.add_argument("--load-seconds", type=int, default=5, help="seconds of each web-tier load")
    parser.add_argument("--status-rounds", type=int, default=2, help="interleaved rounds of each status-read load")
    parser.add_argument("--noop-jobs", type=int, default=400, help="no-op jobs per scale figure")
    parser.add_argument("--scaling-jobs", type=int, default=60, help="jobs per figure of throughput by workers")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections of the web-tier load")
    parser.add_argument("--output", type=Path, help="also write the table (markdown) here")
    options = parser.parse_args(argv)

    processes = Processes()
    redis_server = EmbeddedRedis().start()
    rows: list[Row] = []
    notes: list[str] = []
    celery: CeleryStack | None = None
    pool = None
    redis_url = redis_server.url
    connection = Redis.from_url(redis_url)
    try:
        log(f"private Redis at {redis_url}")
        workers = [
            processes.start([sys.executable, str(ROOT / "worker.py")], service_env(redis_url, QUEUES=queues))
            for queues in WORKER_QUEUES
        ]
        wait_until(lambda: connection.scard("rq:workers") == len(workers), 60, "the render workers")
        main_web, _ = start_gunicorn(processes, redis_url, 2, "s2")
        stream_web, stream_master = start_gunicorn(processes, redis_url, 1, IDLE_QUEUE)
        web_processes = int(os.environ.get("WEB_CONCURRENCY", "4"))
        # Behind one trusted proxy: the submissions under load come from many client addresses (see load).
        load_web, _ = start_gunicorn(processes, redis_url, web_processes, IDLE_QUEUE, PROXY_HOPS="1")
        naive_web, _ = start_gunicorn(
            processes, redis_url, web_processes, IDLE_QUEUE, "bench.naive_status:create_app()"
        )
        THROUGHPUT_SPECS.update(default=ChartSpec(), scatter=scatter_spec())
        pool = get_context("fork").Pool(2, initializer=charts.warm_up)
        pool.map(_render_named, ["default", "default", "scatter", "scatter"])
        charts.warm_up()
        celery = CeleryStack(processes, redis_url)
        if celery.skip_reason:
            log(f"skipping Celery: {celery.skip_reason}")
            notes.append(f"Celery skipped: {celery.skip_reason}.")

        # 1. Throughput, interleaved rounds, for the default chart and for a CPU-heavier one.
        for name, label in (("default", "default chart"), ("scatter", f"{SCATTER_POINTS:,}-point scatter")):
            limit, ours, theirs = [], [], []
            for number in range(options.rounds):
                log(f"throughput round {number + 1}/{options.rounds}, {label}")
                limit.append(inprocess_round(pool, options.jobs, name))
                ours.append(rq_round(connection, redis_url, "s2", options.jobs, THROUGHPUT_SPECS[name]))
                if celery.skip_reason is None:
                    theirs.append(celery.round(options.jobs, THROUGHPUT_SPECS[name]))
            limit_rate, our_rate = statistics.median(limit), statistics.median(ours)
            rows.append(Row(f"1. throughput, {label}: 2 RQ workers vs render in 2 processes",
                            f"{our_rate:.1f} jobs/s", f"{limit_rate:.1f} jobs/s", f"{our_rate / limit_rate:.2f}",
                            ">= 0.95", our_rate / limit_rate >= 0.95))  # fmt: skip
            if theirs:
                celery_rate = statistics.median(theirs)
                rows.append(Row(f"1. throughput, {label}: vs Celery prefork -c 2 ({celery.broker_name} + Redis)",
                                f"{our_rate:.1f} jobs/s", f"{celery_rate:.1f} jobs/s",
                                f"{our_rate / celery_rate:.2f}", ">= 1.00", our_rate >= celery_rate))  # fmt: skip
                rows.append(Row(f"   {label}: Celery vs render in 2 processes", f"{celery_rate:.1f} jobs/s",
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
        stream_processes = len(stream_master.children())
        rows.append(Row(f"3. open streams held by {stream_processes} web process", f"{held}",
                        f"{options.streams} opened", f"{held / options.streams:.2f}", f">= {options.streams}",
                        held >= options.streams and stream_processes == 1))  # fmt: skip
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
        client.close()

        # 5. Web tier, render workers idle: status reads against a naive Flask + RQ endpoint, then submissions.
        log("status reads: plotjobs and a naive Flask + RQ endpoint")
        rows.extend(
            compare_status_reads(connection, redis_url, load_web, naive_web, first["id"],
                                 seconds=options.load_seconds, rounds=options.status_rounds)
        )  # fmt: skip
        log("submissions under load")
        post_body = json.dumps(LOAD_SPEC).encode()
        warm_up = Client(load_web)
        accepted(*warm_up.request("POST", SUBMIT_PATH, post_body))
        warm_up.close()
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
        scaling = {queue: rq_round(connection, redis_url, queue, options.scaling_jobs) for queue in ("s1", "s2", "s4")}
        rows.append(Row("6. throughput with 1 / 2 / 4 workers on 2 cores",
                        " / ".join(f"{scaling[q]:.1f}" for q in ("s1", "s2", "s4")) + " jobs/s",
                        f"{scaling['s1']:.1f} jobs/s (1 worker)",
                        " / ".join(f"{scaling[q] / scaling['s1']:.2f}" for q in ("s1", "s2", "s4")),
                        "4 >= 0.9 x 2", scaling["s4"] >= 0.9 * scaling["s2"]))  # fmt: skip

        log(f"scale: no-op renders on {', '.join(map(str, NOOP_WORKER_COUNTS))} workers")
        noop_workers = [
            processes.start([sys.executable, "-m", "bench.noop_worker"], service_env(redis_url, QUEUES=queues))
            for queues in NOOP_WORKER_QUEUES
        ]
        wait_until(lambda: connection.scard("rq:workers") == len(workers) + len(noop_workers), 60, "no-op workers")
        rows.extend(noop_scaling(connection, redis_url, options.noop_jobs))
        processes.stop(noop_workers)

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
        connection.close()
        redis_server.stop()

    header = TABLE_HEADER
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
    return table


if __name__ == "__main__":
    main()
