"""The bounds of docs/design.md "Guarantees under faults", one test per row, each failing when its bound is broken.

Every deadline is the stated bound plus MARGIN_SECONDS, the slack a 2-core machine shared with
other work needs, and is measured from the fault (the kill, the signal, the stranding), not
from the start of the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis import Redis

from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.spec.chart import ChartSpec
from tests.support.processes import PROJECT_ROOT, running_worker, service_env, stop
from tests.support.waiting import DeadlineExceeded, wait_for
from tests.system.test_faults import (
    BIG,
    FAST,
    FAST_SETTINGS,
    enqueue,
    freeze,
    has_pending,
    single_worker_command,
    state_of,
    wait_for_end,
    wait_until_started,
    watching,
    worker_processes,
)

pytestmark = pytest.mark.integration

MARGIN_SECONDS = 3.0
# A sweep interval no test outlives: only the supervisor's immediate recovery can act in time.
NO_PERIODIC_SWEEP = {"WORKER_LIVENESS_TIMEOUT": "3", "SWEEP_INTERVAL": "600"}


def wait_for_stage(pubsub: Any, prefix: str, timeout: float) -> float:
    """The monotonic time when the job's events announce a stage starting with ``prefix``; fail at the deadline."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while (remaining := deadline - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=min(remaining, 0.5))
        if message is None:
            continue
        event = json.loads(message["data"])
        seen.append(event)
        if str(event.get("stage", "")).startswith(prefix):
            return time.monotonic()
    raise DeadlineExceeded(f"no stage {prefix!r} within {timeout:.1f} s; events seen: {seen}")


def kill_mid_render(process_id: int) -> float:
    """SIGSTOP then SIGKILL the worker (it stops beating and cannot finish the render); the time of the fault."""
    os.kill(process_id, signal.SIGSTOP)
    killed_at = time.monotonic()
    os.kill(process_id, signal.SIGKILL)
    return killed_at


@contextmanager
def running_sweeper(redis_url: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """``plotjobs sweeper``: the process that recovers jobs when no supervisor runs, and takes none itself."""
    process = subprocess.Popen(
        [sys.executable, "-m", "plotjobs", "sweeper"], env=service_env(redis_url, **env), cwd=PROJECT_ROOT
    )
    try:
        yield process
    finally:
        stop(process)


def test_a_sigkilled_unsupervised_worker_has_its_job_requeued_within_liveness_plus_sweep(
    redis_url: str, redis_connection: Redis
) -> None:
    bound = FAST_SETTINGS.worker_liveness_timeout + FAST_SETTINGS.sweep_interval  # 3 s + 1 s
    job_id = jobs.new_job_id()
    with (
        watching(redis_connection, job_id) as events,
        running_sweeper(redis_url, **FAST) as sweeper,
        running_worker(redis_url, redis_connection, command=single_worker_command("doomed"), **FAST) as doomed,
    ):
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        killed_at = kill_mid_render(doomed.pid)
        requeued_at = wait_for_stage(events, "requeued: worker lost", timeout=bound + MARGIN_SECONDS)
        assert sweeper.poll() is None
    print(f"unsupervised SIGKILL: requeued {requeued_at - killed_at:.2f} s after the kill "
          f"(bound {bound} s + {MARGIN_SECONDS} s margin)")  # fmt: skip
    status = state_of(redis_connection, job_id)
    assert status["state"] == "queued", status
    assert jobs.queue(redis_connection, "default").get_job_ids() == [job_id]


def test_under_the_supervisor_a_killed_workers_job_is_requeued_at_once_at_the_front_of_its_queue(
    redis_url: str, redis_connection: Redis
) -> None:
    """Bound < 1 s + 3 s margin; with SWEEP_INTERVAL=600 only the supervisor's own recovery can meet it."""
    bound = 1.0
    job_id = jobs.new_job_id()
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, **NO_PERIODIC_SWEEP) as supervisor,
    ):
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        waiting_id = enqueue(redis_connection, ChartSpec())  # queued behind the job that renders
        [child] = worker_processes(supervisor)
        killed_at = kill_mid_render(child.pid)
        requeued_at = wait_for_stage(events, "requeued: worker lost", timeout=bound + MARGIN_SECONDS)
        print(f"supervised SIGKILL: requeued {requeued_at - killed_at:.2f} s after the kill "
              f"(bound {bound} s + {MARGIN_SECONDS} s margin)")  # fmt: skip
        assert wait_for_end(redis_connection, job_id, timeout=60)["state"] == "finished"
        assert wait_for_end(redis_connection, waiting_id, timeout=60)["state"] == "finished"
    # One worker renders in queue order: the requeued job, at the front, started before the one that waited.
    requeued, waited = jobs.fetch(redis_connection, job_id), jobs.fetch(redis_connection, waiting_id)
    assert requeued.started_at is not None and waited.started_at is not None
    assert requeued.started_at < waited.started_at, (requeued.started_at, waited.started_at)


def test_a_second_sigterm_stops_the_supervisor_and_requeues_the_job_within_a_second(
    redis_url: str, redis_connection: Redis
) -> None:
    """Bound < 1 s + 3 s margin, from the second SIGTERM; no periodic sweep can help."""
    bound = 1.0
    job_id = jobs.new_job_id()
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, **NO_PERIODIC_SWEEP) as supervisor,
    ):
        jobs.enqueue_render(redis_connection, Settings(), BIG, job_id=job_id)
        wait_until_started(events)
        [child] = worker_processes(supervisor)
        freeze(child)  # the warm stop cannot finish the job
        supervisor.send_signal(signal.SIGTERM)
        wait_for(lambda: has_pending(child, signal.SIGTERM), what="the supervisor to forward SIGTERM")
        supervisor.send_signal(signal.SIGTERM)
        signaled_at = time.monotonic()
        requeued_at = wait_for_stage(events, "requeued: worker lost", timeout=bound + MARGIN_SECONDS)
        assert supervisor.wait(timeout=bound + MARGIN_SECONDS) == 1
        stopped_at = time.monotonic()
    print(f"second SIGTERM: job requeued after {requeued_at - signaled_at:.2f} s, supervisor gone after "
          f"{stopped_at - signaled_at:.2f} s (bound {bound} s + {MARGIN_SECONDS} s margin)")  # fmt: skip
    assert stopped_at - signaled_at <= bound + MARGIN_SECONDS
    assert state_of(redis_connection, job_id)["state"] == "queued"


@pytest.mark.parametrize("where", ["intermediate queue", "no list"])
def test_a_stranded_job_is_back_on_its_queue_within_liveness_plus_two_sweeps(
    redis_url: str, redis_connection: Redis, where: str
) -> None:
    bound = FAST_SETTINGS.worker_liveness_timeout + 2 * FAST_SETTINGS.sweep_interval  # 3 s + 2 x 1 s
    with running_sweeper(redis_url, **FAST):
        job_id = enqueue(redis_connection, ChartSpec())
        queue = jobs.queue(redis_connection, "default")
        with watching(redis_connection, job_id) as events:
            if where == "intermediate queue":  # a worker dequeued it, then vanished
                redis_connection.lmove(queue.key, queue.intermediate_queue_key)
            else:  # popped by BLPOP (a worker on several queues), then the worker vanished
                redis_connection.lpop(queue.key)
            stranded_at = time.monotonic()
            requeued_at = wait_for_stage(events, "requeued: ", timeout=bound + MARGIN_SECONDS)
    print(f"stranded in {where}: back on its queue after {requeued_at - stranded_at:.2f} s "
          f"(bound {bound} s + {MARGIN_SECONDS} s margin)")  # fmt: skip
    assert queue.get_job_ids() == [job_id]
    assert redis_connection.llen(queue.intermediate_queue_key) == 0


def test_a_render_past_job_timeout_fails_as_timed_out_within_job_timeout(
    redis_url: str, redis_connection: Redis
) -> None:
    """JOB_TIMEOUT=1 s + 3 s margin, from the render's start; Redis pauses writes for 1.5 s so it cannot finish."""
    job_timeout = 1
    job_id = jobs.new_job_id()
    with (
        watching(redis_connection, job_id) as events,
        running_worker(redis_url, redis_connection, command=single_worker_command("timed"), **FAST),
    ):
        jobs.enqueue_render(redis_connection, Settings(job_timeout=job_timeout), BIG, job_id=job_id)
        wait_until_started(events)
        started_at = time.monotonic()
        redis_connection.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
        status = wait_for_end(redis_connection, job_id, timeout=job_timeout + MARGIN_SECONDS)
        ended_after = time.monotonic() - started_at
    print(f"JOB_TIMEOUT: ended {status['state']} {ended_after:.2f} s after the start "
          f"(bound {job_timeout} s + {MARGIN_SECONDS} s margin)")  # fmt: skip
    assert status["state"] == "failed", status
    assert "render timed out after 1 s (JOB_TIMEOUT)" in status["error"], status
