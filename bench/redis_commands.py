"""What a job costs the shared Redis, in commands: bare RQ against plotjobs, counted by Redis itself.

Run it with ``python -m bench.redis_commands`` (see bench/README.md). It starts a private
Redis, so nothing else adds to the counts, resets its statistics (``CONFIG RESETSTAT``)
before each scenario and reads ``INFO commandstats`` after it: every command Redis ran is
counted, those inside a Lua script or a MULTI one by one, as Redis counts them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from bench import trivial_task
from plotjobs.cli.embedded_redis import EmbeddedRedis
from plotjobs.config import Settings

DEFAULT_JOBS = 20

# The reset itself is counted after it; INFO does not count itself in its own answer.
MEASUREMENT_COMMANDS = frozenset({"config"})

# The smallest chart the spec allows: the render is quick and its Redis traffic is the same as any other's.
SMALL_CHART = {"width": 100, "height": 100}

# A sweep runs every third of the liveness timeout per worker, not per job: keep it out of a short run.
QUIET_LIVENESS_TIMEOUT = 3600

TARGET_RATIO = 1.5
TARGET_STATUS_READ = 3

# What plotjobs sends each command for, per job unless said otherwise (read off the code; RQ's own in brackets).
PURPOSES: dict[str, str] = {
    "expire": "inflight set, job counters at submit and at end, client set (limits), interest set;"
    " [RQ] job, worker, execution, registries, result stream",
    "hset": "job.meta at 5 stages (started, preparing data, drawing, encoding, storing);"
    " [RQ] job fields at enqueue, start and end, worker state and heartbeats",
    "multi": "client limit (limits.reserve); [RQ] worker registration and heartbeats, job start and end",
    "exec": "see multi",
    "publish": "progress event at each of the 5 stages, final status at the job's end (SSE streams)",
    "zadd": "inflight set, client set (limits); heartbeat (per worker); [RQ] execution, started, finished registries",
    "exists": "cancel key at the first stage and before storing; [RQ] job exists (unique enqueue script), suspension",
    "hincrby": "jobs submitted, the render time's bucket (which counts the job finished); [RQ] worker's job count",
    "zscore": "the worker checks it still holds the job before recording its outcome (a late one is discarded)",
    "sadd": "the submitter's cancel-token digest (interest script); [RQ] queues set, worker executions",
    "hgetall": "[RQ] job hash: worker dequeue, GET result (the request loads the job once)",
    "hmget": "GET status: the job's status fields only (plotjobs.web.status_reads)",
    "lpos": "GET status of a queued job: its position",
    "llen": "queue depth for admission (MAX_QUEUE_DEPTH), one per configured queue (high, default, low)",
    "lpop": "[RQ] dequeue: the worker pops its queues in order (high is empty, then default)",
    "evalsha": "interest script (SADD + EXPIRE); [RQ] unique enqueue script (EXISTS + HSET + RPUSH)",
    "zrem": "heartbeat forgotten at worker stop (per worker); [RQ] started registry and executions at the end",
    "hincrbyfloat": "render seconds sum; [RQ] worker's total working time",
    "watch": "client limit (limits.reserve); [RQ] the job's dependents at its end",
    "smembers": "[RQ] the job's dependents; registry cleanup (per worker)",
    "del": "[RQ] the execution at the job's end; cleanup markers (per worker)",
    "srem": "[RQ] the worker's executions set",
    "set": "the rendered file; [RQ] cleanup markers (per worker)",
    "zrange": "the client's held jobs (limits.reserve); [RQ] registry cleanup (per worker)",
    "persist": "[RQ] the job hash stops expiring once it runs",
    "rpush": "[RQ] the job id onto its queue (inside the unique enqueue script)",
    "xadd": "[RQ] the job's result",
    "xrevrange": "[RQ] latest result: GET result reads where the file is",
    "get": "the rendered file (GET result)",
    "hget": "[RQ] get_status re-reads the status (plotjobs reads it from the job hash it loaded)",
    "lmove": "[RQ] single-queue dequeue through the intermediate queue (bare RQ's worker)",
    "lrem": "[RQ] the job id off the intermediate queue (bare RQ's worker)",
    "zremrangebyscore": "stale heartbeats (per worker); [RQ] registry cleanup (per worker)",
    "zrangebyscore": "[RQ] registry cleanup (per worker)",
    "lrange": "[RQ] intermediate queue cleanup (per worker)",
    "time": "Redis clock for the heartbeat (per worker)",
    "script": "load a Lua script (once per script and server)",
    "client": "connection set-up (once per connection)",
    "hello": "connection set-up (once per connection)",
    "subscribe": "[RQ] the worker's command channel (per worker)",
    "unsubscribe": "[RQ] the worker's command channel (per worker)",
    "info": "[RQ] Redis version check (once per connection)",
}


@dataclass
class Measurement:
    """The commands Redis ran for one scenario, over ``jobs`` jobs."""

    name: str
    jobs: int
    commands: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Every command counted."""
        return sum(self.commands.values())

    @property
    def per_job(self) -> float:
        """Commands per job."""
        return self.total / self.jobs

    def per_job_of(self, command: str) -> float:
        """How many of ``command`` per job."""
        return self.commands[command] / self.jobs


@dataclass
class Report:
    """Every measurement of one run."""

    bare: Measurement
    plotjobs: Measurement
    status_reads: dict[str, Measurement]

    @property
    def ratio(self) -> float:
        """plotjobs' commands per job over bare RQ's."""
        return self.plotjobs.per_job / self.bare.per_job


def command_counts(connection: Redis) -> Counter[str]:
    """Calls per command since the last reset, the measurement's own left out."""
    stats: dict[str, Any] = connection.info("commandstats")
    counts: Counter[str] = Counter()
    for name, values in stats.items():
        command = name.removeprefix("cmdstat_").split("|", 1)[0].lower()
        if command not in MEASUREMENT_COMMANDS:
            counts[command] += int(values["calls"])
    return counts


@contextmanager
def counting(connection: Redis, measurement: Measurement) -> Iterator[Measurement]:
    """Count every command Redis runs inside the block into ``measurement``."""
    connection.config_resetstat()
    yield measurement
    measurement.commands.update(command_counts(connection))


def measure_bare(connection: Redis, jobs: int) -> Measurement:
    """Bare RQ: enqueue a trivial task, one burst SimpleWorker, one status read and one result read per job."""
    connection.flushdb()
    queue = Queue("bare", connection=connection)
    measurement = Measurement("bare RQ", jobs)
    with counting(connection, measurement):
        enqueued = [queue.enqueue(trivial_task.add, number, 1) for number in range(jobs)]
        SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
        for job in enqueued:
            fetched = Job.fetch(job.id, connection=connection)
            fetched.get_status()
            _ = fetched.meta
            fetched.latest_result()
    return measurement


def bench_settings(redis_url: str, jobs: int) -> Settings:
    """Settings for the run: quiet logs, and limits that let ``jobs`` submissions in."""
    return Settings(
        redis_url=redis_url,
        secret_key="bench",
        log_level="WARNING",
        max_jobs_per_client=max(jobs, 1),
        max_queue_depth=max(jobs + 1, 2),
        worker_liveness_timeout=QUIET_LIVENESS_TIMEOUT,
        # The chart service alone, as bare RQ runs one task: each further generator served adds its three
        # queues to what admission reads (LLEN) and an idle worker polls (docs/benchmarks.md).
        generators=("chart",),
    )


def _client_address(number: int) -> dict[str, str]:
    # One client per job, as many users each with one chart: a client's admission reads each job it holds.
    return {"REMOTE_ADDR": f"10.0.{number // 250}.{number % 250 + 1}"}


def measure_plotjobs(connection: Redis, redis_url: str, jobs: int) -> Measurement:
    """plotjobs end to end: POST, the render by an in-process worker, one status GET and one result GET per job."""
    from plotjobs.web import create_app
    from plotjobs.worker.render_worker import build_worker

    connection.flushdb()
    settings = bench_settings(redis_url, jobs)
    client = create_app(settings, redis=connection).test_client()
    worker = build_worker(connection, settings, name=f"bench-{uuid.uuid4().hex[:8]}")
    measurement = Measurement("plotjobs", jobs)
    with counting(connection, measurement):
        submitted = []
        for number in range(jobs):
            answer = client.post("/api/jobs", json=SMALL_CHART, environ_base=_client_address(number))
            _expect(answer.status_code == 202, f"POST /api/jobs answered {answer.status_code}: {answer.text}")
            submitted.append(answer.get_json())
        worker.work(burst=True, logging_level="WARNING")
        for body in submitted:
            status = client.get(body["status_url"])
            _expect(status.get_json()["state"] == "finished", f"the job did not finish: {status.text}")
            result = client.get(body["result_url"])
            _expect(result.status_code == 200 and bool(result.data), f"GET result answered {result.status_code}")
    return measurement


def measure_status_reads(connection: Redis, redis_url: str, reads: int) -> dict[str, Measurement]:
    """One ``GET /api/jobs/<id>`` of a queued, a running and a finished job, ``reads`` times each."""
    from plotjobs.queue import jobs, tasks
    from plotjobs.web import create_app
    from plotjobs.worker.render_worker import build_worker

    connection.flushdb()
    settings = bench_settings(redis_url, 3)
    client = create_app(settings, redis=connection).test_client()
    ids = {}
    for state in ("finished", "running", "queued"):
        answer = client.post("/api/jobs", json=SMALL_CHART, environ_base=_client_address(len(ids)))
        ids[state] = answer.get_json()["id"]
        if state == "finished":
            build_worker(connection, settings, name=f"bench-{uuid.uuid4().hex[:8]}").work(burst=True)
    running = jobs.fetch(connection, ids["running"])
    running.set_status(JobStatus.STARTED)
    running.meta = tasks.progress_meta(0.5, "drawing")
    running.save_meta()
    measured = {}
    for state, job_id in ids.items():
        measurement = Measurement(f"GET /api/jobs/<id>, {state}", reads)
        with counting(connection, measurement):
            for _ in range(reads):
                answer = client.get(f"/api/jobs/{job_id}")
                _expect(answer.status_code == 200, f"status answered {answer.status_code}: {answer.text}")
        expected = {"finished": "finished", "running": "started", "queued": "queued"}[state]
        _expect(answer.get_json()["state"] == expected, f"the {state} job reads as {answer.get_json()['state']}")
        measured[state] = measurement
    return measured


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


def run(jobs: int = DEFAULT_JOBS, reads: int = 5) -> Report:
    """Start a private Redis and measure every scenario on it."""
    with EmbeddedRedis() as server:
        connection = Redis.from_url(server.url)
        try:
            bare = measure_bare(connection, jobs)
            ours = measure_plotjobs(connection, server.url, jobs)
            status_reads = measure_status_reads(connection, server.url, reads)
        finally:
            connection.close()
    return Report(bare, ours, status_reads)


def table(report: Report) -> str:
    """The report as markdown tables."""
    bare, ours = report.bare, report.plotjobs
    lines = [
        f"Redis commands per job, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {ours.jobs} jobs per scenario",
        "",
        "| scenario | commands per job | target |",
        "|---|---|---|",
        f"| bare RQ: enqueue, SimpleWorker, status read, result read | {bare.per_job:.1f} | — |",
        f"| plotjobs: POST, render, GET status, GET result | {ours.per_job:.1f} | <= {TARGET_RATIO} x bare |",
        f"| ratio plotjobs / bare | {report.ratio:.3f} | <= {TARGET_RATIO} |",
    ]
    for state, measurement in report.status_reads.items():
        lines.append(f"| one GET /api/jobs/<id>, {state} job | {measurement.per_job:.1f} | <= {TARGET_STATUS_READ} |")
    lines += ["", "| command | plotjobs per job | bare RQ per job | what plotjobs sends it for |", "|---|---|---|---|"]
    every = set(ours.commands) | set(bare.commands)
    for command in sorted(every, key=lambda name: (-ours.commands[name], -bare.commands[name], name)):
        purpose = PURPOSES.get(command, "")
        lines.append(f"| {command} | {ours.per_job_of(command):.2f} | {bare.per_job_of(command):.2f} | {purpose} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the tables; 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="jobs per end-to-end scenario")
    parser.add_argument("--reads", type=int, default=5, help="status reads per job state")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON instead")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    report = run(options.jobs, options.reads)
    if options.json:
        print(json.dumps(_as_json(report), indent=1))
    else:
        print(table(report))
    met = report.ratio <= TARGET_RATIO and all(
        measurement.per_job <= TARGET_STATUS_READ for measurement in report.status_reads.values()
    )
    return 0 if met else 1


def _as_json(report: Report) -> dict[str, Any]:
    every: list[Measurement] = [report.bare, report.plotjobs, *report.status_reads.values()]
    return {m.name: {"per_job": m.per_job, "commands": dict(m.commands)} for m in every}


if __name__ == "__main__":
    sys.exit(main())
