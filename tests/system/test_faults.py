"""Faults with real Redis, real worker processes and real signals: every accepted job reaches an end."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from redis import Redis

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.queue.status import describe
from plotjobs.spec.chart import ChartSpec
from plotjobs.worker import recovery
from tests.support.processes import PROJECT_ROOT, running_worker, service_env
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PROC = Path("/proc")
TERMINAL = {"finished", "failed", "canceled", "stopped"}
# Short liveness and sweep periods keep the tests quick; the bound they prove is the same formula.
FAST = {"WORKER_LIVENESS_TIMEOUT": "3", "SWEEP_INTERVAL": "1"}
FAST_SETTINGS = Settings(worker_liveness_timeout=3, sweep_interval=1)
# The largest chart the spec allows: about half a second of rendering, a wide window to act in.
BIG = ChartSpec(width=4000, height=4000, dpi=300, seed=1)


def state_of(connection: Redis, job_id: str) -> dict[str, Any]:
    return describe(jobs.fetch(connection, job_id))


def wait_for_end(connection: Redis, job_id: str, timeout: float = 30) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        status = state_of(connection, job_id)
        return status if status["state"] in TERMINAL else None

    return wait_for(ended, timeout=timeout, what=f"job {job_id} to end")


@contextmanager
def watching(connection: Redis, job_id: str) -> Iterator[Any]:
    """A subscription to the job's progress events, open before the job is queued."""
    pubsub = connection.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"plotjobs:events:{job_id}")
    try:
        yield pubsub
    finally:
        pubsub.close()


def wait_until_started(pubsub: Any) -> None:
    def started() -> bool:
        message = pubsub.get_message(timeout=0.5)
        return bool(message and json.loads(message["data"]).get("stage") == "started")

    wait_for(started, timeout=30, what="the render to start")


def enqueue(connection: Redis, spec: ChartSpec = BIG, **changes: Any) -> str:
    job_id = jobs.new_job_id()
    jobs.enqueue_render(connection, Settings().replace(**changes), spec, job_id=job_id)
    return job_id


def worker_processes(supervisor: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The supervisor's live worker children (one may be exiting while we look)."""
    live = []
    for child in psutil.Process(supervisor.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                live.append(child)
        except psutil.NoSuchProcess:
            continue
    return live


def freeze(process: psutil.Process) -> None:
    """Stop ``process`` and return once it is stopped (a signal sent later stays pending)."""
    process.send_signal(signal.SIGSTOP)
    wait_for(lambda: process.status() == psutil.STATUS_STOPPED, what=f"process {process.pid} to stop")


def has_pending(process: psutil.Process, signum: int) -> bool:
    """Whether ``signum`` waits, undelivered, for the (frozen) process."""
    status = (PROC / str(process.pid) / "status").read_text()
    masks = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask & (1 << (signum - 1)) for mask in masks)


def single_worker_command(name: str) -> list[str]:
    return [sys.executable, "-m", "plotjobs", "worker", "--single", "--name", name]


def test_sigkilled_worker_job_is_retried_within_the_bound_and_finished_by_another(
    redis_url: str, redis_connection: Redis
) -> None:
    job_id = jobs.new_job_id()
    rescuer_command = single_worker_command("rescuer")
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, command=single_worker_command("doomed"), **FAST) as doomed,
    ):
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        doomed.send_signal(signal.SIGSTOP)  # frozen mid-render: it cannot finish before the kill
        assert state_of(redis_connection, job_id)["state"] == "started"
        with running_worker(redis_url, redis_connection, command=rescuer_command, **FAST):
            doomed.kill()
            doomed.wait(timeout=15)
            died_at = time.monotonic()
            wait_for(lambda: state_of(redis_connection, job_id)["stage"].startswith("requeued: worker lost")
                         or state_of(redis_connection, job_id)["state"] != "started",
                         timeout=FAST_SETTINGS.recovery_bound + 30, what="the job to be recovered")  # fmt: skip
            recovered_after = time.monotonic() - died_at
            status = wait_for_end(redis_connection, job_id)
            finished_after = time.monotonic() - died_at
    assert status["state"] == "finished", status
    assert jobs.fetch(redis_connection, job_id).worker_name == "rescuer"
    print(f"SIGKILL: job requeued after {recovered_after:.1f} s (bound {FAST_SETTINGS.recovery_bound} s), "
          f"finished by another worker after {finished_after:.1f} s")  # fmt: skip


def test_supervisor_restarts_a_killed_worker_and_requeues_its_job_at_once(
    redis_url: str, redis_connection: Redis
) -> None:
    job_id = jobs.new_job_id()
    with watching(redis_connection, job_id) as events, running_worker(redis_url, redis_connection, **FAST) as sup:
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        [child] = worker_processes(sup)
        child.send_signal(signal.SIGSTOP)
        child.kill()
        status = wait_for_end(redis_connection, job_id)
        assert status["state"] == "finished", status
        wait_for(lambda: len(worker_processes(sup)) == 1, what="the replacement worker")
        assert worker_processes(sup)[0].pid != child.pid
        assert sup.poll() is None


def test_a_job_whose_workers_keep_dying_fails_with_worker_lost(redis_url: str, redis_connection: Redis) -> None:
    job_id = jobs.new_job_id()
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, LOST_JOB_RETRIES="0", **FAST) as supervisor,
    ):
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        [child] = worker_processes(supervisor)
        child.send_signal(signal.SIGSTOP)
        child.kill()
        status = wait_for_end(redis_connection, job_id)
    assert status["state"] == "failed"
    assert "worker lost" in status["error"] and status["error"].startswith("WorkerLostError")


def test_sigterm_lets_the_current_job_finish(redis_url: str, redis_connection: Redis) -> None:
    job_id = jobs.new_job_id()
    with watching(redis_connection, job_id) as events, running_worker(redis_url, redis_connection, **FAST) as sup:
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        [child] = worker_processes(sup)
        freeze(child)
        sup.send_signal(signal.SIGTERM)  # forwarded: it waits, pending, until the worker runs again
        wait_for(lambda: has_pending(child, signal.SIGTERM), what="the supervisor to forward SIGTERM")
        child.send_signal(signal.SIGCONT)
        assert sup.wait(timeout=30) == 0
    assert state_of(redis_connection, job_id)["state"] == "finished"


def test_a_second_sigterm_kills_the_worker_and_its_job_goes_back_to_the_queue(
    redis_url: str, redis_connection: Redis
) -> None:
    job_id = jobs.new_job_id()
    with watching(redis_connection, job_id) as events, running_worker(redis_url, redis_connection, **FAST) as sup:
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        [child] = worker_processes(sup)
        freeze(child)
        sup.send_signal(signal.SIGTERM)
        # Signals do not queue: the second must come after the supervisor has acted on the first.
        wait_for(lambda: has_pending(child, signal.SIGTERM), what="the supervisor to forward SIGTERM")
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=30) == 1
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    status = state_of(redis_connection, job_id)
    assert status["state"] == "queued" and status["stage"].startswith("requeued: worker lost"), status
    with running_worker(redis_url, redis_connection, **FAST):
        assert wait_for_end(redis_connection, job_id)["state"] == "finished"


def test_a_render_over_its_timeout_fails_as_timed_out_and_the_worker_carries_on(
    redis_url: str, redis_connection: Redis
) -> None:
    """The render stalls on its storage: Redis pauses every client for 3 s, past JOB_TIMEOUT=1."""
    slow_id = jobs.new_job_id()
    with (
        watching(redis_connection, slow_id) as events,
        running_worker(redis_url, redis_connection, command=single_worker_command("timed"), **FAST) as worker,
    ):
        jobs.enqueue_render(redis_connection, Settings(job_timeout=1), BIG, job_id=slow_id)
        wait_until_started(events)
        redis_connection.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
        status = wait_for_end(redis_connection, slow_id)
        assert status["state"] == "failed"
        assert "timed out" in status["error"], status
        next_id = enqueue(redis_connection, ChartSpec())
        assert wait_for_end(redis_connection, next_id)["state"] == "finished"
        assert worker.poll() is None
    assert jobs.fetch(redis_connection, next_id).worker_name == "timed"


def test_stock_rq_worker_with_our_worker_class_beats_and_sweeps(redis_url: str, redis_connection: Redis) -> None:
    rq_command = str(Path(sys.executable).parent / "rq")
    command = [
        rq_command,
        "worker",
        "-u",
        redis_url,
        "-w",
        "plotjobs.worker.render_worker.RenderWorker",
        "-S",
        "json",
        "-n",
        "stock",
        "default",
    ]
    job_id = enqueue(redis_connection, ChartSpec())
    with running_worker(redis_url, redis_connection, command=command, **FAST):
        assert wait_for_end(redis_connection, job_id)["state"] == "finished"
        assert recovery.is_beating(redis_connection, "stock")
        wait_for(lambda: redis_connection.exists(keys.SWEEP_LOCK), what="a sweep by the worker")
    assert not recovery.is_beating(redis_connection, "stock")


def test_plotjobs_sweeper_once_reports(redis_url: str, redis_connection: Redis) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "plotjobs", "sweeper", "--once"],
        env=service_env(redis_url), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "requeued 0 job(s), failed 0 job(s)" in result.stdout


def test_supervisor_recycles_a_worker_after_worker_max_jobs(redis_url: str, redis_connection: Redis) -> None:
    with running_worker(redis_url, redis_connection, WORKER_MAX_JOBS="2", **FAST) as supervisor:
        first = worker_processes(supervisor)[0].pid
        ids = [enqueue(redis_connection, ChartSpec()) for _ in range(3)]
        for job_id in ids:
            assert wait_for_end(redis_connection, job_id)["state"] == "finished"
        names = {jobs.fetch(redis_connection, job_id).worker_name for job_id in ids}
        assert len(names) == 2, names  # the third job ran in the replacement worker
        assert all(process.pid != first for process in worker_processes(supervisor))


def test_supervisor_recycles_a_worker_above_worker_max_memory_mb(redis_url: str, redis_connection: Redis) -> None:
    # Every worker holds matplotlib (far above 1 MB), so each is replaced once it is idle.
    with running_worker(redis_url, redis_connection, WORKER_MAX_MEMORY_MB="1", **FAST) as supervisor:
        first = worker_processes(supervisor)[0]
        name = f"{socket.gethostname()}.{supervisor.pid}.1.1"  # the supervisor's name for its first worker
        first.wait(timeout=30)
        # A warm stop: the worker removed its own heartbeat; it was not declared dead.
        assert not recovery.is_beating(redis_connection, name)
        wait_for(lambda: worker_processes(supervisor), what="the replacement worker")
        assert supervisor.poll() is None


@pytest.mark.timeout(900)  # its own deadlines (60 s per kill, 120 s to the end) speak first
def test_churn_every_job_ends_none_stuck_none_lost(redis_url: str, redis_connection: Redis) -> None:
    """200 jobs while workers are SIGKILLed at random; the supervisor restarts them, the sweeper recovers.

    Exactly ``planned_kills`` kills happen (they come 5 to 20 ended jobs apart, so 200 jobs outlast
    them), and LOST_JOB_RETRIES equals that number, so no job can run out of retries: the only outcome
    allowed is every job finished, none failed, none stuck, none lost.
    """
    planned_kills = 8
    rng = random.Random(6)
    ids = [enqueue(redis_connection, ChartSpec(seed=number, width=400, height=300)) for number in range(200)]

    def states() -> list[str]:
        with redis_connection.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(f"rq:job:{job_id}", "status")
            return [(status or b"lost").decode() for status in pipe.execute()]

    def ended() -> int:
        return sum(state in TERMINAL for state in states())

    kills = 0
    started_at = time.monotonic()
    with running_worker(
        redis_url, redis_connection, WORKER_PROCESSES="2", LOST_JOB_RETRIES=str(planned_kills), **FAST
    ) as supervisor:
        while kills < planned_kills:
            target = min(len(ids), ended() + rng.randint(5, 20))
            wait_for(
                lambda target=target: ended() >= target and worker_processes(supervisor), timeout=60, what="progress"
            )
            if target >= len(ids):
                break
            victim = rng.choice(worker_processes(supervisor))
            victim.kill()
            kills += 1
        wait_for(lambda: ended() == len(ids), timeout=120, what="every job to end")
    elapsed = time.monotonic() - started_at
    final = states()
    counts = {state: final.count(state) for state in sorted(set(final))}
    failed = [job_id for job_id, state in zip(ids, final, strict=True) if state == "failed"]
    reasons = {job_id: state_of(redis_connection, job_id)["error"] for job_id in failed}
    retried = sum(1 for job_id in ids if redis_connection.exists(keys.lost_count(job_id)))
    print(f"churn: {len(ids)} jobs, {kills} workers SIGKILLed, {retried} jobs retried, {elapsed:.0f} s: {counts}")
    assert kills == planned_kills
    assert counts == {"finished": len(ids)}, (counts, reasons)
