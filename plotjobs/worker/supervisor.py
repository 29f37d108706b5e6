"""The worker supervisor: keeps WORKER_PROCESSES render workers alive, recycles them, stops them well.

See docs/deployment.md (workers) and docs/design.md, "Guarantees under faults".
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

import psutil
from redis import Redis
from redis.exceptions import RedisError

from plotjobs.backoff import Backoff
from plotjobs.config import Settings
from plotjobs.worker import policy, recovery
from plotjobs.worker.policy import WorkerExit

log = logging.getLogger(__name__)

LOOP_SECONDS = 0.25
DUPLICATE_SIGNAL_SECONDS = 1.0
MEMORY_CHECK_SECONDS = 1.0

CommandFactory = Callable[[str], Sequence[str]]


def worker_command(burst: bool) -> CommandFactory:
    """How a child worker is started: this Python, ``plotjobs worker --single``."""

    def command(name: str) -> list[str]:
        argv = [sys.executable, "-m", "plotjobs", "worker", "--single", "--name", name]
        return [*argv, "--burst"] if burst else argv

    return command


@dataclass
class Slot:
    """One of the WORKER_PROCESSES places, and the process that holds it now."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    name: str = ""
    generation: int = 0
    started_at: float = 0.0
    # Restart delays after crashes in a row: 0.5 s, doubling to 30 s.
    backoff: Backoff = field(default_factory=Backoff)
    restart_at: float = 0.0
    recycling: bool = False
    done: bool = False


class Supervisor:
    """Runs and watches the worker processes until told to stop."""

    def __init__(
        self,
        settings: Settings,
        connection: Redis,
        *,
        processes: int | None = None,
        burst: bool = False,
        name_prefix: str | None = None,
        command: CommandFactory | None = None,
    ) -> None:
        self.settings = settings
        self.connection = connection
        self.burst = burst
        self.name_prefix = name_prefix or f"{socket.gethostname()}.{os.getpid()}"
        self.command = command or worker_command(burst)
        self.slots = [Slot(number) for number in range(1, (processes or settings.worker_processes) + 1)]
        self.stop_requests = 0
        self._wake = threading.Event()
        self._next_sweep = 0.0
        self._next_memory_check = 0.0
        self._first_stop_at = 0.0
        self._first_signal = 0

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """First signal: warm stop (finish current jobs). Second: kill the workers, requeue their jobs."""
        now = time.monotonic()
        # Ctrl-C reaches the whole process group, and a process manager may relay it as SIGTERM:
        # a different signal right after the first is the same request, not a second one.
        if policy.is_repeated_signal(
            stop_requests=self.stop_requests,
            signum=signum,
            first_signal=self._first_signal,
            since_first=now - self._first_stop_at,
            window=DUPLICATE_SIGNAL_SECONDS,
        ):
            return
        if not self.stop_requests:
            self._first_stop_at, self._first_signal = now, signum
        self.stop_requests += 1
        live = [slot.process for slot in self.slots if slot.process is not None and slot.process.poll() is None]
        if self.stop_requests == 1:
            log.info("supervisor: stopping; workers finish their current job first (signal again to force)")
            for process in live:
                process.send_signal(signal.SIGTERM)
        else:
            log.warning("supervisor: forced stop; killing workers, their jobs go back to the queue")
            for process in live:
                process.kill()
        self._wake.set()

    def run(self) -> int:
        """Supervise until stopped (or, in burst mode, until every worker is done); the exit status."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        clean = True
        while True:
            for slot in self.slots:
                if slot.process is not None and slot.process.poll() is not None:
                    clean = self._ended(slot) and clean
            live = [slot for slot in self.slots if slot.process is not None]
            if (self.stop_requests or (self.burst and all(slot.done for slot in self.slots))) and not live:
                return policy.supervisor_exit_status(clean=clean, stop_requests=self.stop_requests)
            if not self.stop_requests:
                self._start_due()
                self._recycle_oversized()
            self._sweep()
            self._wake.wait(LOOP_SECONDS)
            self._wake.clear()

    def _start_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None and not slot.done and now >= slot.restart_at:
                slot.generation += 1
                slot.name = f"{self.name_prefix}.{slot.number}.{slot.generation}"
                slot.process = subprocess.Popen(list(self.command(slot.name)))
                slot.started_at = now
                slot.recycling = False
                log.info("supervisor: started worker %s (pid %d)", slot.name, slot.process.pid)

    def _ended(self, slot: Slot) -> bool:
        """Handle a worker that exited; False if it did not exit cleanly."""
        assert slot.process is not None
        code = slot.process.returncode
        ran_for = time.monotonic() - slot.started_at
        slot.process = None
        outcome = policy.worker_exit(code, recycling=slot.recycling)
        if outcome is not WorkerExit.CRASHED:
            if outcome is WorkerExit.STOPPED_BEFORE_READY:
                self._recover(slot.name)
            log.info("supervisor: worker %s exited cleanly after %.0f s", slot.name, ran_for)
            slot.backoff.reset()
            slot.restart_at = 0.0
            slot.done = self.burst
            return True
        log.warning("supervisor: worker %s died (exit status %s); recovering its job", slot.name, code)
        self._recover(slot.name)
        if policy.backoff_starts_afresh(ran_for):
            slot.backoff.reset()
        slot.restart_at = time.monotonic() + slot.backoff.next()
        return False

    def _recover(self, worker_name: str) -> None:
        try:
            recovery.declare_dead(self.connection, worker_name, self.settings)
            report = recovery.sweep(self.connection, self.settings, force=True)
        except RedisError as error:
            log.warning("supervisor: Redis unreachable (%s); the next sweep recovers %s's job", error, worker_name)
            return
        if report and (report.requeued or report.failed):
            log.info("supervisor: requeued %s, failed %s", report.requeued, report.failed)

    def _recycle_oversized(self) -> None:
        now = time.monotonic()
        if now < self._next_memory_check:
            return
        self._next_memory_check = now + MEMORY_CHECK_SECONDS
        limit = self.settings.worker_max_memory_mb * 1024 * 1024
        for slot in self.slots:
            if slot.process is None or slot.recycling:
                continue
            try:
                rss = psutil.Process(slot.process.pid).memory_info().rss
                # Only a worker that beats is past its start-up and will stop after its current job.
                if rss <= limit or not recovery.is_beating(self.connection, slot.name):
                    continue
            except (psutil.Error, RedisError):
                continue
            log.info("supervisor: worker %s uses %d MB; recycling it after its job", slot.name, rss >> 20)
            slot.recycling = True
            slot.process.send_signal(signal.SIGTERM)

    def _sweep(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.settings.sweep_interval
        try:
            report = recovery.sweep(self.connection, self.settings)
        except RedisError as error:
            log.warning("supervisor: sweep skipped, Redis unreachable: %s", error)
            return
        if report and (report.requeued or report.failed):
            log.info("supervisor: sweep requeued %s, failed %s", report.requeued, report.failed)
