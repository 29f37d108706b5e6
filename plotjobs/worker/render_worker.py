"""The render worker: an RQ SimpleWorker with every generator's render loaded before the first job."""

from __future__ import annotations

import logging
import threading
from types import FrameType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import UnixSignalDeathPenalty
from rq.worker import SimpleWorker

from plotjobs import generators, keys
from plotjobs.config import Settings
from plotjobs.config import from_env as settings_from_env
from plotjobs.queue import jobs, rq_internals, tasks
from plotjobs.queue.serialization import JsonSerializer
from plotjobs.worker import recovery

log = logging.getLogger(__name__)


class RenderDeathPenalty(UnixSignalDeathPenalty):
    """RQ's SIGALRM timeout, with a message that says what happened in plain words."""

    def handle_death_penalty(self, signum: int, frame: FrameType | None) -> None:
        """Interrupt the render."""
        exception, timeout = rq_internals.death_penalty_of(self)
        raise exception(f"render timed out after {timeout} s (JOB_TIMEOUT)")


class RenderWorker(SimpleWorker):
    """Runs jobs in its own process (no fork per job) with fonts and caches already warm.

    Forking per job would re-pay matplotlib's start-up for every render; rendering is
    pure and idempotent, so one long-lived process is safe. Timeouts still apply: RQ's
    SIGALRM death penalty interrupts the render in this process.
    """

    death_penalty_class = RenderDeathPenalty

    def __init__(self, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        rq_internals.harden_rq()
        kwargs.setdefault("job_class", jobs.PlotJob)
        kwargs.setdefault("serializer", JsonSerializer)
        super().__init__(*args, **kwargs)
        self.settings = settings
        self._watchdog_stop = threading.Event()
        self._discarded: str | None = None

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """Warm up the renders of the generators served here, start beating and sweeping, then work as RQ does."""
        settings = self.settings or settings_from_env()
        tasks.serve_only(settings.rendered_here)
        for generator in generators.served(settings.rendered_here).values():
            if generator.isolated and (generator.time_limit or 0) > settings.job_timeout:
                log.warning(
                    "generator %s: its time limit (%s s) is above JOB_TIMEOUT (%s s), which caps it",
                    generator.name, generator.time_limit, settings.job_timeout,
                )  # fmt: skip
            generator.warm_up()
        recovery.beat(self.connection, self.name)
        watchdog = threading.Thread(target=self._watch, args=(settings,), name="plotjobs-watchdog", daemon=True)
        watchdog.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            self._watchdog_stop.set()
            watchdog.join(timeout=5)
            try:
                recovery.forget(self.connection, self.name)
            except RedisError:
                log.warning("worker %s: could not remove its heartbeat; it expires on its own", self.name)

    def _watch(self, settings: Settings) -> None:
        """Beat every third of the liveness timeout, and sweep when no other process has lately."""
        while not self._watchdog_stop.wait(settings.worker_liveness_timeout / 3):
            try:
                recovery.beat(self.connection, self.name)
                report = recovery.sweep(self.connection, settings)
                if report and (report.requeued or report.failed):
                    log.info("sweep: requeued %s, failed %s", report.requeued, report.failed)
            except Exception:  # the heartbeat must outlive any one bad sweep or Redis outage
                log.exception("worker %s: heartbeat or sweep failed; retrying", self.name)

    def _superseded(self, job: Job, queue: Queue, execution: Execution | None) -> bool:
        """Whether this execution lost the job: the sweep took it back while this worker was cut off or paused.

        The sweep requeues a lost job by removing its execution from the started registry, and the
        next worker registers an execution of its own; an execution still in the registry still
        holds the job. A worker that comes back after that discards its outcome, so the first
        terminal outcome of the job's current holder stands (docs/design.md, "Guarantees under faults").
        """
        if execution is None:
            return False
        held = self.connection.zscore(queue.started_job_registry.key, execution.composite_key)
        return held is None

    def _discard(self, job: Job, execution: Execution, outcome: str) -> None:
        """Drop this worker's record of an execution it lost, leaving the job, its state and its file as they are."""
        log.warning(
            "job %s: %s here after the job was recovered and given to another worker; this outcome is discarded",
            job.id, outcome,
        )  # fmt: skip
        self._discarded = job.id
        with self.connection.pipeline() as pipeline:
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            pipeline.execute()

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any, execution: Execution) -> None:
        """Record the result, unless this worker no longer holds the job."""
        try:
            superseded = self._superseded(job, queue, execution)
        except RedisError:
            # Not knowing is no reason to fail a rendered job: record it, as before the check.
            log.warning("job %s: could not check that this worker still holds it; recording the result", job.id)
            superseded = False
        if superseded:
            self._discard(job, execution, "finished")
            return
        super().handle_job_success(job, queue, started_job_registry, execution)

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Execution | None = None,
    ) -> None:
        """Record a canceled job as stopped (RQ's state for a job stopped on request), others as failed.

        Nothing is recorded when this worker no longer holds the job (see ``_superseded``).
        """
        try:
            if execution is not None and self._superseded(job, queue, execution):
                self._discard(job, execution, "failed")
                return
        except RedisError:
            log.warning("job %s: could not check that this worker still holds it; recording the failure", job.id)
        try:
            if self.connection.exists(keys.cancel(job.id)):
                rq_internals.mark_stopped(self, job.id)
        except RedisError:
            log.warning("job %s: could not check for a cancel request; recording the failure as RQ would", job.id)
        super().handle_job_failure(
            job, queue, started_job_registry=started_job_registry, exc_string=exc_string, execution=execution
        )

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job, then tell the job's event stream its final status at once (unless the outcome was discarded)."""
        self._discarded = None
        try:
            super().execute_job(job, queue)
        finally:
            try:
                if self._discarded != job.id:
                    tasks.announce(job)
            except RedisError:
                # Streams also re-read statuses on their own; a lost notice only delays them.
                log.warning("could not publish the final status of job %s", job.id)


def build_worker(connection: Redis, settings: Settings, name: str | None = None) -> RenderWorker:
    """A worker listening on the queues of the generators it renders, by priority (docs/deployment.md)."""
    queues = [jobs.queue(connection, queue_name) for queue_name in jobs.generator_queue_names(settings, worker=True)]
    return RenderWorker(
        queues, connection=connection, name=name, default_result_ttl=settings.result_ttl, settings=settings
    )
