"""Throughput of a mixed load (chart and vega-lite jobs interleaved) against all charts, and what isolation costs.

Run it with ``python -m bench.mixed_load`` (see bench/README.md). It starts a private Redis, gunicorn
with the production settings and 2 web processes, and 2 render workers (``python worker.py``, their
JSON logs kept for each job's duration and stages). Each round submits N jobs over HTTP at once and
waits for the last result: first N charts, then N jobs of which every tenth's 3rd, 6th and 9th
(30 %) are vega-lite, the rest charts. Both draw the same five bars (``bench.generators.SPECS``),
each job with a title of its own so that none is shared. Rounds alternate, so both loads see the
same machine; jobs/s is the median of the rounds.

What a vega-lite job pays for its isolated child process is read off the workers' log lines:
- **child start**: the ``started`` stage, from the task's first report to the child's first
  (``compiling``): a fresh Python process, its imports, the spec validated again;
- **compiling**: the child's first stage, which starts the converter's JavaScript engine (a
  warmed-up process skips that);
- **job**: the task's whole duration, against the same render called in this process after its
  warm-up (``bench.generators``): the difference is the cost of the child per job.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from redis import Redis
from rq.job import Job, JobStatus

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.generators import SPECS  # noqa: E402
from bench.run import Client, Processes, accepted, log, service_env, start_gunicorn, wait_until  # noqa: E402
from plotjobs import generators  # noqa: E402
from plotjobs.cli.embedded_redis import EmbeddedRedis  # noqa: E402
from plotjobs.queue import jobs  # noqa: E402
from plotjobs.queue.status import describe  # noqa: E402

DEFAULT_JOBS = 100
DEFAULT_ROUNDS = 3
WORKERS = 2
# The mix needs vega-lite served beside the chart (bench.run serves the chart alone).
SERVED = "chart,vega-lite"
# In every ten jobs of the mixed load, these are vega-lite: 30 %, spread out.
VEGA_LITE_SLOTS = frozenset({2, 5, 8})
IN_PROCESS_SAMPLES = 20
RESULT_TIMEOUT_SECONDS = 300


@dataclass
class Result:
    """The figures of one run."""

    jobs: int
    chart_rates: list[float] = field(default_factory=list)
    mixed_rates: list[float] = field(default_factory=list)
    # Per generator, each job's log line from the mixed rounds: duration and stages, in milliseconds.
    durations_ms: dict[str, list[float]] = field(default_factory=lambda: {"chart": [], "vega-lite": []})
    child_start_ms: list[float] = field(default_factory=list)
    compiling_ms: list[float] = field(default_factory=list)
    in_process_ms: dict[str, float] = field(default_factory=dict)

    @property
    def chart_rate(self) -> float:
        """Jobs/s of the all-chart load, median of the rounds."""
        return statistics.median(self.chart_rates)

    @property
    def mixed_rate(self) -> float:
        """Jobs/s of the mixed load, median of the rounds."""
        return statistics.median(self.mixed_rates)


def generator_of(number: int, mixed: bool) -> str:
    """The generator of the ``number``-th job of a round."""
    return "vega-lite" if mixed and number % 10 in VEGA_LITE_SLOTS else "chart"


def document(generator: str, title: str) -> dict[str, Any]:
    """The five bars through ``generator``, titled ``title``, as ``POST /api/jobs`` takes them."""
    if generator == "chart":
        return {**SPECS["chart"], "title": title}
    return {"generator": generator, "vega_lite": {**SPECS["vega-lite"]["vega_lite"], "title": title}}


def in_process_ms(samples: int = IN_PROCESS_SAMPLES) -> dict[str, float]:
    """The median render time of each spec called in this process after its generator's warm-up."""
    medians = {}
    for name in SPECS:
        generator = generators.get(name)
        generator.warm_up()
        spec, render = generator.validate(SPECS[name]), generator.render()
        seconds = []
        for _ in range(samples):
            started = time.perf_counter()
            render(spec, None)
            seconds.append(time.perf_counter() - started)
        medians[name] = statistics.median(seconds) * 1000
    return medians


def log_lines(log_paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Every job log line of the workers, by job id."""
    lines = {}
    for path in log_paths:
        for line in path.read_text().splitlines():
            if '"stages_ms"' in line:
                record = json.loads(line)
                lines[record["job_id"]] = record
    return lines


def run_round(connection: Redis, address: str, count: int, *, mixed: bool, label: str) -> tuple[float, dict[str, str]]:
    """Submit ``count`` jobs at once and wait for every result: jobs/s, and each job's generator by id."""
    started = time.perf_counter()
    submitted = {}
    # A connection of its own: gunicorn closes an idle keep-alive connection while the last round finishes.
    client = Client(address)
    try:
        for number in range(count):
            generator = generator_of(number, mixed)
            body = json.dumps(document(generator, f"{label} {number}")).encode()
            answer = accepted(*client.request("POST", "/api/jobs", body))
            if answer.get("reused"):
                raise RuntimeError(f"job {number} of {label} was shared with another: the load must render every job")
            submitted[answer["id"]] = generator
    finally:
        client.close()
    for job_id in submitted:
        job = jobs.fetch(connection, job_id)
        state = wait_until(partial(_ended, job), RESULT_TIMEOUT_SECONDS, f"job {job_id} to end")
        if state != JobStatus.FINISHED:
            raise RuntimeError(f"job {job_id} ended {state}: {describe(job).get('error')}")
    return count / (time.perf_counter() - started), submitted


def _ended(job: Job) -> JobStatus | None:
    state = job.get_status(refresh=True)
    return state if state in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED) else None


@contextmanager
def running_services(redis_url: str, log_dir: Path) -> Iterator[tuple[str, list[Path]]]:
    """gunicorn with 2 web processes and 2 render workers logging to files; yields the address and the logs."""
    processes = Processes()
    log_paths = [log_dir / f"worker-{number}.log" for number in range(WORKERS)]
    try:
        for path in log_paths:
            with path.open("wb") as log_file:
                worker = subprocess.Popen(
                    [sys.executable, str(ROOT / "worker.py")],
                    env=service_env(redis_url, LOG_LEVEL="INFO", GENERATORS=SERVED),
                    cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                )  # fmt: skip
            processes.children.append(worker)
        address, _ = start_gunicorn(processes, redis_url, 2, "high,default,low", GENERATORS=SERVED)
        yield address, log_paths
    finally:
        processes.stop_all()


def run(count: int = DEFAULT_JOBS, rounds: int = DEFAULT_ROUNDS, samples: int = IN_PROCESS_SAMPLES) -> Result:
    """Start everything, warm it up, run alternating rounds of both loads and collect the figures."""
    result = Result(jobs=count)
    log("timing both renders in this process")
    result.in_process_ms = in_process_ms(samples)
    with EmbeddedRedis() as redis_server, tempfile.TemporaryDirectory() as directory:
        connection = Redis.from_url(redis_server.url)
        with running_services(redis_server.url, Path(directory)) as (address, log_paths):
            wait_until(lambda: len(connection.smembers("rq:workers")) >= WORKERS, 120, "the render workers")
            log("warm-up: one job of each generator per worker")
            run_round(connection, address, 2 * WORKERS, mixed=True, label="warm-up")
            run_round(connection, address, 2 * WORKERS, mixed=False, label="warm-up charts")
            mixed_jobs: dict[str, str] = {}
            for number in range(rounds):
                log(f"round {number + 1} of {rounds}: {count} charts")
                rate, _ = run_round(connection, address, count, mixed=False, label=f"chart {number}")
                result.chart_rates.append(rate)
                log(f"round {number + 1} of {rounds}: {count} mixed jobs")
                rate, submitted = run_round(connection, address, count, mixed=True, label=f"mixed {number}")
                result.mixed_rates.append(rate)
                mixed_jobs.update(submitted)
            lines = wait_until(
                lambda: (found := log_lines(log_paths)) and set(mixed_jobs) <= set(found) and found, 30, "the job logs"
            )
        connection.close()
    for job_id, generator in mixed_jobs.items():
        record = lines[job_id]
        result.durations_ms[generator].append(float(record["duration_ms"]))
        if generator == "vega-lite":
            result.child_start_ms.append(float(record["stages_ms"]["started"]))
            result.compiling_ms.append(float(record["stages_ms"]["compiling"]))
    return result


def table(result: Result) -> str:
    """Both loads' throughput, and a job's cost through each generator, as Markdown."""
    vega_share = len(VEGA_LITE_SLOTS) * 10
    chart_job = statistics.median(result.durations_ms["chart"])
    vega_job = statistics.median(result.durations_ms["vega-lite"])
    child_start = statistics.median(result.child_start_ms)
    chart_render, vega_render = result.in_process_ms["chart"], result.in_process_ms["vega-lite"]
    rounds = ", ".join(f"{rate:.1f}" for rate in result.mixed_rates)
    lines = [
        "| load | jobs/s (median of rounds) | ratio to all-chart |",
        "|---|---|---|",
        f"| {result.jobs} charts | {result.chart_rate:.1f} ({', '.join(f'{r:.1f}' for r in result.chart_rates)}) "
        "| 1.00 |",
        f"| {result.jobs} jobs, {100 - vega_share} % chart, {vega_share} % vega-lite | {result.mixed_rate:.1f} "
        f"({rounds}) | {result.mixed_rate / result.chart_rate:.2f} |",
        "",
        "| per job (mixed rounds, medians) | chart | vega-lite |",
        "|---|---|---|",
        f"| job in the worker (task start to file stored) | {chart_job:.0f} ms | {vega_job:.0f} ms |",
        f"| the same render in-process, warmed up | {chart_render:.0f} ms | {vega_render:.0f} ms |",
        f"| job minus in-process render | {chart_job - chart_render:.0f} ms | {vega_job - vega_render:.0f} ms "
        f"({(vega_job - vega_render) / vega_job:.0%} of the job) |",
        f"| child start: task's first stage to the child's first (spawn, imports, validation) | — "
        f"| {child_start:.0f} ms |",
        f"| vega-lite's `compiling` stage: in the child, with the converter's first start | — "
        f"| {statistics.median(result.compiling_ms):.0f} ms |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the tables (and write them to ``--output``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="jobs per round (at least 10)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds of each load")
    parser.add_argument("--output", help="also write the tables to this file")
    args = parser.parse_args(argv)
    if args.jobs < 10 or args.rounds < 1:
        parser.error("--jobs is at least 10 (a mixed round needs vega-lite jobs) and --rounds at least 1")
    output = table(run(args.jobs, args.rounds))
    print(output)
    if args.output:
        Path(args.output).write_text(output + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
