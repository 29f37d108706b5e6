"""A Redis failover under load: the master is killed during a run of a hundred submissions.

A master, a replica and three sentinels on five hosts, the web app and a worker (both finding
the master through the sentinels: REDIS_SENTINELS) on two more, and the client on an eighth
(tests/support/netns.py). Ten submissions before the kill the master loses its route to the
replica (the sentinels still reach both): what it acknowledges from then on is on the master
only. That is the window in which asynchronous replication loses acknowledged writes, widened
from the sub-millisecond of a quiet switch so that a run of a hundred jobs can see it. Then the
master is killed and the sentinels promote the replica. The worker starts once the failover
is done and renders every job the new master has.

Measured and reported for both modes (docs/deployment.md, "Redis high availability"):
jobs accepted (202) then lost, jobs failed, and the time from the kill until the API accepts
again. With REDIS_MIN_REPLICAS=1 no accepted job may be lost.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

from plotjobs.cli.embedded_redis import redis_server_binary
from tests.support import netns
from tests.support.processes import PROJECT_ROOT
from tests.support.waiting import wait_for
from tests.system.test_many_hosts import BIN, TERMINAL, Client, _env, _require_namespaces, stop_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MASTER_NAME = "plotjobs"
SUBMISSIONS = 100
CUT_AT = 50  # the submission before which the master stops reaching the replica
KILL_AT = 60  # the submission before which the master is killed
PACE_SECONDS = 0.02
WAIT_TIMEOUT_MS = 300
DOWN_AFTER_MS = 1000
# A failover takes DOWN_AFTER_MS to notice, then an election and a promotion: a few seconds.
ACCEPTS_AGAIN_WITHIN = 20.0
SENTINEL_PORT = 26379
SMALL = {"width": 200, "height": 150, "dpi": 50}  # quick renders: the worker drains the run fast


@dataclass
class Setup:
    network: netns.Network
    hosts: dict[str, netns.Host]
    master: subprocess.Popen[bytes]
    replica: Redis
    sentinels: list[Redis]
    client: Client
    logs: Path
    min_replicas: int
    worker_env: dict[str, str]
    master_argv: list[str]

    def failed_over(self) -> bool:
        """Whether every sentinel names the replica as the master now (only then may the old one come back)."""
        replica = self.hosts["redis-r"].address
        named = [
            sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME) for sentinel in self.sentinels
        ]
        return all(address and address[0] == replica for address in named)

    def restart_old_master(self) -> None:
        """The dead master's host is back (empty: no persistence here); the sentinels make it a replica."""
        self.network.unblock(self.hosts["redis-m"], self.hosts["redis-r"])
        self.hosts["redis-m"].start(self.master_argv, self.logs / "redis-m.log", dict(os.environ), self.logs)

    def start_worker(self) -> None:
        self.hosts["worker-c"].start([str(BIN / "plotjobs"), "worker"], self.logs / "worker-c.log", self.worker_env,
                                     PROJECT_ROOT)  # fmt: skip


def _sentinel_conf(path: Path, host: netns.Host, master: netns.Host, password: str, socket: Path) -> None:
    path.write_text(
        f"port {SENTINEL_PORT}\nbind {host.address}\nprotected-mode no\ndir {path.parent}\n"
        f"unixsocket {socket}\nunixsocketperm 700\n"
        f"sentinel monitor {MASTER_NAME} {master.address} 6379 2\n"
        f"sentinel auth-pass {MASTER_NAME} {password}\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER_NAME} 5000\n"
        f"sentinel parallel-syncs {MASTER_NAME} 1\n"
    )


def _redis_argv(host: netns.Host, password: str, socket: Path, data: Path) -> list[str]:
    """A Redis with a directory of its own; no file is written (no RDB, no AOF, diskless replication)."""
    data.mkdir(exist_ok=True)
    return [redis_server_binary(), "--bind", host.address, "--port", "6379", "--requirepass", password,
            "--masterauth", password, "--unixsocket", str(socket), "--unixsocketperm", "700", "--save", "",
            "--appendonly", "no", "--dir", str(data), "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0", "--repl-diskless-load", "on-empty-db"]  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    _require_namespaces()
    min_replicas: int = request.param
    sockets = Path(tempfile.mkdtemp(prefix="pj-"))
    network = netns.Network()
    clients: list[Redis] = []
    client_process: subprocess.Popen[str] | None = None
    try:
        names = ("redis-m", "redis-r", "sentinel-1", "sentinel-2", "sentinel-3", "web-b", "worker-c", "client-e")
        hosts = {name: network.add_host(name) for name in names}
        master_host, replica_host = hosts["redis-m"], hosts["redis-r"]
        password = secrets.token_hex(16)
        master_argv = _redis_argv(master_host, password, sockets / "m.sock", tmp_path / "redis-m")
        master = master_host.start(master_argv, tmp_path / "redis-m.log", dict(os.environ), tmp_path)
        replica_host.start([*_redis_argv(replica_host, password, sockets / "r.sock", tmp_path / "redis-r"),
                            "--replicaof", master_host.address, "6379"],
                           tmp_path / "redis-r.log", dict(os.environ), tmp_path)  # fmt: skip
        wait_for((sockets / "r.sock").exists, timeout=20, what="the replica to start")
        replica = Redis(unix_socket_path=str(sockets / "r.sock"), password=password, decode_responses=True)
        clients.append(replica)
        wait_for(lambda: replica.info("replication").get("master_link_status") == "up", timeout=20,
                 what="the replica to sync")  # fmt: skip
        sentinels = []
        for index in (1, 2, 3):
            host = hosts[f"sentinel-{index}"]
            conf = tmp_path / f"sentinel-{index}.conf"
            _sentinel_conf(conf, host, master_host, password, sockets / f"s{index}.sock")
            host.start([redis_server_binary(), str(conf), "--sentinel"], tmp_path / f"sentinel-{index}.log",
                       dict(os.environ), tmp_path)  # fmt: skip
        for index in (1, 2, 3):
            wait_for(lambda index=index: (sockets / f"s{index}.sock").exists(), timeout=20, what="a sentinel")
            sentinel = Redis(unix_socket_path=str(sockets / f"s{index}.sock"), decode_responses=True)
            clients.append(sentinel)
            sentinels.append(sentinel)
        for sentinel in sentinels:
            wait_for(lambda sentinel=sentinel: len(sentinel.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)) == 1
                     and len(sentinel.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)) == 2,
                     timeout=30, interval=0.2, what="each sentinel to know the replica and the other two")  # fmt: skip
        addresses = ",".join(f"{hosts[f'sentinel-{index}'].address}:{SENTINEL_PORT}" for index in (1, 2, 3))
        sentinel_env = {
            "REDIS_SENTINELS": addresses,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_MIN_REPLICAS": str(min_replicas),
            "REDIS_MIN_REPLICAS_TIMEOUT_MS": str(WAIT_TIMEOUT_MS),
        }
        redis_url = f"redis://:{password}@sentinel-master/0"  # the host is not used: the sentinels name it
        web = hosts["web-b"]
        web_env = _env(redis_url, GUNICORN_BIND=f"{web.address}:8000", WEB_CONCURRENCY="1", MAX_JOBS_PER_CLIENT="1000",
                       **sentinel_env)  # fmt: skip
        web.start([str(BIN / "gunicorn"), "-c", "python:plotjobs.web.gunicorn_config", "wsgi:app"],
                  tmp_path / "web-b.log", web_env, PROJECT_ROOT)  # fmt: skip
        # The default liveness: a loaded machine must not make this test about lost workers.
        worker_env = _env(redis_url, WORKER_PROCESSES="2", WORKER_LIVENESS_TIMEOUT="15", SWEEP_INTERVAL="5",
                          **sentinel_env)  # fmt: skip
        with (tmp_path / "client-e.log").open("w") as client_log:
            client_process = subprocess.Popen(
                hosts["client-e"].command([sys.executable, "-m", "tests.support.host_client"]), cwd=PROJECT_ROOT,
                text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=client_log,
            )  # fmt: skip
        client = Client(client_process, f"http://{web.address}:8000")

        def ready() -> bool:
            answer = client.call("GET", "/readyz")
            return answer.get("status") == 200

        wait_for(ready, timeout=60, interval=0.5, what="the web app to answer")
        yield Setup(network, hosts, master, replica, sentinels, client, tmp_path, min_replicas, worker_env, master_argv)
    finally:
        stop_client(client_process, network)
        for connection in clients:
            connection.close()
        shutil.rmtree(sockets, ignore_errors=True)


def _final_state(client: Client, job_id: str) -> str:
    answer = client.call("GET", f"/api/jobs/{job_id}")
    if answer.get("status") == 404:
        return "lost"
    if answer.get("status") != 200:
        return "unknown"
    return str(answer["body"]["state"])


@pytest.mark.parametrize("setup", [0, 1], ids=["REDIS_MIN_REPLICAS=0", "REDIS_MIN_REPLICAS=1"], indirect=True)
def test_a_master_killed_mid_run_loses_accepted_jobs_only_without_min_replicas(setup: Setup) -> None:
    client = setup.client
    killed_at: float | None = None
    accepted_again_at: float | None = None
    restarted_at: float | None = None
    refused = 0
    attempt = 0
    while attempt < SUBMISSIONS or accepted_again_at is None:
        if attempt == CUT_AT:
            # The master can no longer send the replica anything: what it acknowledges from now on
            # exists only on the master, as in the replication lag of a busy or distant replica.
            setup.network.block(setup.hosts["redis-m"], setup.hosts["redis-r"])
        if attempt == KILL_AT:
            setup.master.kill()
            killed_at = time.monotonic()
        if killed_at is not None and restarted_at is None and setup.failed_over():
            setup.restart_old_master()  # the same moment in both modes
            restarted_at = time.monotonic()
            setup.start_worker()  # through the sentinels, to the new master
        answer = client.submit(SMALL | {"title": f"failover {attempt}"})
        if answer.get("status") != 202:
            refused += 1
        elif killed_at is not None and accepted_again_at is None:
            accepted_again_at = time.monotonic()
        attempt += 1
        assert killed_at is None or time.monotonic() - killed_at < ACCEPTS_AGAIN_WITHIN, "the API did not accept again"
        time.sleep(PACE_SECONDS)  # sleep-ok: the pace of the client's submissions
    assert killed_at is not None and accepted_again_at is not None
    promoted = setup.replica.info("replication")["role"]
    if restarted_at is None:
        setup.start_worker()

    def settled() -> dict[str, str] | None:
        states = {job_id: _final_state(client, job_id) for job_id in client.accepted}
        return states if all(state in TERMINAL | {"lost"} for state in states.values()) else None

    states = wait_for(settled, timeout=90, interval=1, what="every accepted job to end or be found lost")
    lost = sum(state == "lost" for state in states.values())
    failed = sum(state == "failed" for state in states.values())
    figures = {
        "REDIS_MIN_REPLICAS": setup.min_replicas,
        "submissions": attempt,
        "accepted": len(client.accepted),
        "refused (503)": refused,
        "accepted then lost": lost,
        "failed": failed,
        "finished": sum(state == "finished" for state in states.values()),
        "API accepts again after": round(accepted_again_at - killed_at, 2),
        "failed over (all sentinels agree), old master restarted after": round(
            (restarted_at or killed_at) - killed_at, 2
        ),
        "replica now": promoted,
    }
    print("failover:", json.dumps(figures))
    assert promoted == "master"
    if setup.min_replicas:
        assert lost == 0, figures
    assert failed == 0, figures
