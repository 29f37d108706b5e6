"""plotjobs on separate network hosts: Redis on A, the web app on B, workers on C and D, a client on E.

Each host is a network namespace on a private switch (tests/support/netns.py); each role is
started with the commands docs/deployment.md gives an operator, pointed at host A's address:
``gunicorn -c python:plotjobs.web.gunicorn_config wsgi:app`` on B, ``plotjobs worker`` on C and
D, and on D also a stock ``rq worker`` (with ``-w`` RenderWorker, so that it beats). The client
on E speaks only HTTP to B. The test itself watches Redis through a unix socket, which needs
no network.

Faults, each against the bound docs/design.md states (plus MARGIN_SECONDS):
C's cable is pulled mid-render (no process killed) and its job is recovered by D; when C is
back its late outcome is discarded and C takes jobs again; D loses power (every process
killed at once) and its jobs are recovered; B loses its route to Redis and answers 503,
then recovers by itself. At the end every job E was given an id for has finished.

Needs root to create namespaces: under CI (PLOTJOBS_REQUIRE_NETNS=1, set by .ci/run) it fails
without them, elsewhere it skips with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from plotjobs.cli.embedded_redis import redis_server_binary
from plotjobs.queue import jobs
from plotjobs.queue.status import describe
from tests.support import netns
from tests.support.processes import PROJECT_ROOT
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FAST = {"WORKER_LIVENESS_TIMEOUT": "3", "SWEEP_INTERVAL": "1"}
RECOVERY_BOUND = 3 + 1  # WORKER_LIVENESS_TIMEOUT + SWEEP_INTERVAL
MARGIN_SECONDS = 3.0
# Redis refused is answered at once; the web app is back at the first request after the route is.
WEB_RECOVERY_SECONDS = 5.0
BIN = Path(sys.executable).parent
REDIS_PORT = 6379
WEB_PORT = 8000
TERMINAL = {"finished", "failed", "canceled", "stopped"}


def big(seed: int) -> dict[str, Any]:
    """The largest chart the spec allows: about half a second of rendering, time to act in."""
    return {"width": 4000, "height": 4000, "dpi": 300, "seed": seed}


def host_of(worker_name: str | None) -> str:
    """The host a worker runs on: its name starts with the hostname."""
    return (worker_name or "").split(".")[0]


class Client:
    """The HTTP client process on host E (tests/support/host_client.py); it tracks every id it was given."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.accepted: list[str] = []
        self.answers: list[int | str] = []

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request: dict[str, Any] = {"method": method, "url": self.base_url + path}
        if body is not None:
            request["json"] = body
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the client on host E exited"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        answer = self.call("POST", "/api/jobs", spec)
        self.answers.append(answer.get("status", answer.get("error", "?")))
        if answer.get("status") == 202:
            self.accepted.append(answer["body"]["id"])
        return answer

    def submit_accepted(self, spec: dict[str, Any]) -> str:
        answer = self.submit(spec)
        assert answer.get("status") == 202, answer
        job_id: str = answer["body"]["id"]
        return job_id

    def status(self, job_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/api/jobs/{job_id}")
        assert answer.get("status") == 200, answer
        body: dict[str, Any] = answer["body"]
        return body


class Events:
    """Every job event published while the test runs, with when the test saw it."""

    def __init__(self, connection: Redis) -> None:
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self._pubsub = connection.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe("plotjobs:events:*")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="events", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message is not None:
                self.seen.append((time.monotonic(), json.loads(message["data"])))

    def first(self, job_id: str, stage_prefix: str, after: float) -> float | None:
        for seen_at, event in list(self.seen):
            if seen_at >= after and event.get("id") == job_id and str(event.get("stage", "")).startswith(stage_prefix):
                return seen_at
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()


@dataclass
class Cluster:
    network: netns.Network
    hosts: dict[str, netns.Host]
    redis: Redis
    client: Client
    events: Events
    logs: Path
    figures: dict[str, Any] = field(default_factory=dict)

    def job(self, job_id: str) -> jobs.PlotJob:
        return jobs.fetch(self.redis, job_id)

    def state(self, job_id: str) -> str:
        return str(describe(self.job(job_id))["state"])

    def wait_ended(self, job_ids: list[str], timeout: float = 60) -> None:
        wait_for(lambda: all(self.state(job_id) in TERMINAL for job_id in job_ids), timeout=timeout, interval=0.1,
                 what=f"jobs {job_ids} to end")  # fmt: skip

    def log(self, host: str) -> str:
        return (self.logs / f"{host}.log").read_text(errors="replace")


def stop_client(process: subprocess.Popen[str] | None, network: netns.Network) -> None:
    """End the client host's process: its input closed, every host torn down, then reaped."""
    if process is not None and process.stdin is not None:
        process.stdin.close()
    network.close()
    if process is not None:
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _require_namespaces() -> None:
    reason = netns.unavailable_reason()
    if reason is None:
        return
    if os.environ.get("PLOTJOBS_REQUIRE_NETNS") == "1":
        pytest.fail(f"{reason} (PLOTJOBS_REQUIRE_NETNS=1 makes the multi-host tests required)")
    pytest.skip(reason)


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REDIS_", "DASHBOARD_", "BROKER"))}
    env.update(REDIS_URL=redis_url, PYTHONUNBUFFERED="1", PATH=f"{BIN}:{env.get('PATH', '')}")
    env.update({**FAST, **extra})
    return env


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    _require_namespaces()
    socket_dir = Path(tempfile.mkdtemp(prefix="pj-"))  # a unix socket path must be short
    network = netns.Network()
    redis: Redis | None = None
    events: Events | None = None
    client_process: subprocess.Popen[str] | None = None
    try:
        hosts = {name: network.add_host(name) for name in ("redis-a", "web-b", "worker-c", "worker-d", "client-e")}
        a, b, c, d, e = hosts.values()
        password = secrets.token_hex(16)
        socket_path = socket_dir / "redis.sock"
        a.start([redis_server_binary(), "--bind", a.address, "--port", str(REDIS_PORT), "--requirepass", password,
                 "--unixsocket", str(socket_path), "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp_path)], tmp_path / "redis-a.log", dict(os.environ), tmp_path)  # fmt: skip
        redis = Redis(unix_socket_path=str(socket_path), password=password)
        wait_for(lambda: socket_path.exists() and redis.ping(), timeout=20, what="Redis on host A")
        redis_url = f"redis://:{password}@{a.address}:{REDIS_PORT}/0"
        web_env = _env(redis_url, GUNICORN_BIND=f"{b.address}:{WEB_PORT}", WEB_CONCURRENCY="1",
                       MAX_JOBS_PER_CLIENT="1000")  # fmt: skip
        b.start([str(BIN / "gunicorn"), "-c", "python:plotjobs.web.gunicorn_config", "wsgi:app"],
                tmp_path / "web-b.log", web_env, PROJECT_ROOT)  # fmt: skip
        c.start([str(BIN / "plotjobs"), "worker"], tmp_path / "worker-c.log", _env(redis_url), PROJECT_ROOT)
        d.start([str(BIN / "plotjobs"), "worker"], tmp_path / "worker-d.log", _env(redis_url), PROJECT_ROOT)
        d.start([str(BIN / "rq"), "worker", "-u", redis_url, "-S", "json", "-j", "plotjobs.queue.jobs.PlotJob",
                 "-w", "plotjobs.worker.render_worker.RenderWorker", "--name", "worker-d.rq", "high", "default", "low"],
                tmp_path / "worker-d-rq.log", _env(redis_url), PROJECT_ROOT)  # fmt: skip
        with (tmp_path / "client-e.log").open("w") as client_log:
            client_process = subprocess.Popen(
                e.command([sys.executable, "-m", "tests.support.host_client"]), cwd=PROJECT_ROOT, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=client_log,
            )  # fmt: skip
        client = Client(client_process, f"http://{b.address}:{WEB_PORT}")
        events = Events(redis)

        def ready() -> bool:
            answer = client.call("GET", "/readyz")
            return answer.get("status") == 200 and answer["body"]["workers"] == 3

        wait_for(ready, timeout=60, interval=0.5, what="the web app on B to see three workers on C and D")
        yield Cluster(network, hosts, redis, client, events, tmp_path)
    finally:
        if events is not None:
            events.close()
        stop_client(client_process, network)
        if redis is not None:
            redis.close()
        shutil.rmtree(socket_dir, ignore_errors=True)


def _spread(cluster: Cluster) -> None:
    """Three jobs at once on three idle workers: both worker hosts render."""
    ids = [cluster.client.submit_accepted(big(seed)) for seed in (1, 2, 3)]
    cluster.wait_ended(ids)
    assert {cluster.state(job_id) for job_id in ids} == {"finished"}
    hosts = {host_of(cluster.job(job_id).worker_name) for job_id in ids}
    assert hosts == {"worker-c", "worker-d"}, hosts


def _cut_c_mid_render(cluster: Cluster) -> tuple[str, float]:
    """Pull C's cable while it renders a job; the job and the time of the cut."""
    c = cluster.hosts["worker-c"]
    for attempt in range(5):
        ids = [cluster.client.submit_accepted(big(100 + 3 * attempt + index)) for index in range(3)]

        def started_on_c(ids: list[str] = ids) -> str | None:
            for job_id in ids:
                job = cluster.job(job_id)
                if job.get_status(refresh=False) == "started" and host_of(job.worker_name) == "worker-c":
                    return job_id
            return None

        job_id = wait_for(started_on_c, timeout=30, interval=0.005, what="a render on host C")
        cluster.network.cut(c)
        cut_at = time.monotonic()
        if cluster.state(job_id) == "started":
            return job_id, cut_at
        cluster.network.restore(c)  # C was quicker than the cut: try again
        cluster.wait_ended(ids)
    raise AssertionError("C finished every render before its cable could be pulled")


def _snapshot(cluster: Cluster, job_id: str) -> dict[str, Any]:
    job = cluster.job(job_id)
    result = job.latest_result()
    return {
        "status": cluster.client.status(job_id),
        "worker": job.worker_name,
        "file": result.return_value if result is not None else None,
        "results": cluster.redis.xlen(f"rq:results:{job_id}"),
    }


def _partition_of_c(cluster: Cluster) -> None:
    c = cluster.hosts["worker-c"]
    job_id, cut_at = _cut_c_mid_render(cluster)
    requeued_at = wait_for(lambda: cluster.events.first(job_id, "requeued: worker lost", cut_at),
                           timeout=RECOVERY_BOUND + MARGIN_SECONDS, what="C's job to be requeued")  # fmt: skip
    cluster.wait_ended([job_id], timeout=30)
    ended_at = time.monotonic()
    before = _snapshot(cluster, job_id)
    assert before["status"]["state"] == "finished", before
    assert host_of(before["worker"]) == "worker-d", before
    cluster.network.restore(c)
    restored_at = time.monotonic()
    # C's render goes on where it was when the cable came back; its outcome must change nothing.
    wait_for(lambda: "this outcome is discarded" in cluster.log("worker-c") or _snapshot(cluster, job_id) != before,
             timeout=60, interval=0.2, what="C, back on the network, to come to the end of its render")  # fmt: skip
    discarded_after = time.monotonic() - restored_at
    assert _snapshot(cluster, job_id) == before
    assert "this outcome is discarded" in cluster.log("worker-c")
    # C carries on: three jobs on three idle workers, one of them C's.
    wait_for(lambda: cluster.client.call("GET", "/readyz")["body"]["workers"] == 3, timeout=30, interval=0.2,
             what="C's worker to be registered again")  # fmt: skip
    ids = [cluster.client.submit_accepted(big(200 + index)) for index in range(3)]
    cluster.wait_ended(ids)
    assert {cluster.state(job_id) for job_id in ids} == {"finished"}
    assert "worker-c" in {host_of(cluster.job(job_id).worker_name) for job_id in ids}
    cluster.figures["C cut: requeued after"] = round(requeued_at - cut_at, 2)
    cluster.figures["C cut: finished by D after"] = round(ended_at - cut_at, 2)
    cluster.figures["C back: late outcome discarded after"] = round(discarded_after, 2)


def _power_loss_of_d(cluster: Cluster) -> None:
    d = cluster.hosts["worker-d"]
    ids = [cluster.client.submit_accepted(big(300 + index)) for index in range(5)]

    def held_by_d() -> list[str]:
        held = []
        for job_id in ids:
            job = cluster.job(job_id)
            if job.get_status(refresh=False) == "started" and host_of(job.worker_name) == "worker-d":
                held.append(job_id)
        return held

    held = wait_for(lambda: len(held_by_d()) == 2 and held_by_d(), timeout=30, interval=0.005,
                    what="both of D's workers to render")  # fmt: skip
    killed = d.kill_everything()
    killed_at = time.monotonic()
    assert killed >= 3  # the supervisor, its render worker, the stock rq worker
    held = [job_id for job_id in held if cluster.state(job_id) != "finished"]
    for job_id in held:
        requeued_at = wait_for(
            lambda job_id=job_id: cluster.events.first(job_id, "requeued: worker lost", killed_at),
            timeout=RECOVERY_BOUND + MARGIN_SECONDS, what=f"D's job {job_id} to be requeued",
        )  # fmt: skip
        cluster.figures.setdefault("D killed: requeued after", []).append(round(requeued_at - killed_at, 2))
    cluster.wait_ended(ids, timeout=60)
    assert {cluster.state(job_id) for job_id in ids} == {"finished"}
    assert {host_of(cluster.job(job_id).worker_name) for job_id in held} <= {"worker-c"}
    cluster.figures["D killed: jobs it held"] = len(held)


def _web_loses_redis(cluster: Cluster) -> None:
    web, redis_host = cluster.hosts["web-b"], cluster.hosts["redis-a"]
    cluster.network.block(web, redis_host)
    blocked_at = time.monotonic()
    refused = cluster.client.submit({"seed": 400})
    answered_in = time.monotonic() - blocked_at
    assert refused.get("status") == 503, refused
    assert refused["headers"].get("Retry-After"), refused
    assert refused["body"]["error"], refused
    assert cluster.client.call("GET", "/readyz")["status"] == 503
    cluster.network.unblock(web, redis_host)
    unblocked_at = time.monotonic()

    def accepted() -> bool:
        return cluster.client.submit({"seed": 401}).get("status") == 202

    wait_for(accepted, timeout=WEB_RECOVERY_SECONDS, interval=0.1, what="the web app to accept jobs again")
    cluster.figures["B without Redis: 503 after"] = round(answered_in, 2)
    cluster.figures["B with Redis again: 202 after"] = round(time.monotonic() - unblocked_at, 2)


def test_jobs_survive_a_partitioned_worker_host_a_dead_worker_host_and_a_web_host_cut_from_redis(
    cluster: Cluster,
) -> None:
    started = time.monotonic()
    _spread(cluster)
    _partition_of_c(cluster)
    _power_loss_of_d(cluster)
    _web_loses_redis(cluster)

    # Every job E was given an id for reaches an end state, as E sees it: all of them finished.
    def all_ended() -> bool:
        return all(cluster.client.status(job_id)["state"] in TERMINAL for job_id in cluster.client.accepted)

    wait_for(all_ended, timeout=60, interval=0.5, what="every accepted job to end")
    states = {job_id: cluster.client.status(job_id)["state"] for job_id in cluster.client.accepted}
    assert set(states.values()) == {"finished"}, states
    cluster.figures["jobs accepted"] = len(cluster.client.accepted)
    cluster.figures["jobs finished"] = sum(state == "finished" for state in states.values())
    cluster.figures["test seconds"] = round(time.monotonic() - started, 1)
    print("many hosts:", json.dumps(cluster.figures))
