"""The render worker: an RQ SimpleWorker with matplotlib loaded before the first job."""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker

from plotjobs import charts, jobs, tasks
from plotjobs.config import Settings
from plotjobs.serialization import PlainDataSerializer

log = logging.getLogger(__name__)


class RenderWorker(SimpleWorker):
    """Runs jobs in its own process (no fork per job) with fonts and caches already warm.

    Forking per job would re-pay matplotlib's start-up for every render; rendering is
    pure and idempotent, so one long-lived process is safe. Timeouts still apply: RQ's
    SIGALRM death penalty interrupts the render in this process.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_class", jobs.PlotJob)
        kwargs.setdefault("serializer", PlainDataSerializer)
        super().__init__(*args, **kwargs)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """Warm matplotlib, then process jobs as RQ does."""
        charts.warm_up()
        return super().work(*args, **kwargs)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job, then tell the job's event stream its final status at once."""
        try:
            super().execute_job(job, queue)
        finally:
            try:
                tasks.announce_state(job)
            except RedisError:
                # Streams also re-read statuses on their own; a lost notice only delays them.
                log.warning("could not publish the final status of job %s", job.id)


def build_worker(connection: Redis, settings: Settings, name: str | None = None) -> RenderWorker:
    """A worker listening on the configured queues, in order."""
    queues = [jobs.queue(connection, queue_name) for queue_name in settings.queues]
    return RenderWorker(queues, connection=connection, name=name, default_result_ttl=settings.result_ttl)
