"""The benchmarks keep working: Redis commands per job stay within bounds, and bench/run.py's requests are accepted."""

from __future__ import annotations

import json

import pytest
from redis import Redis

from bench import naive_status, noop_worker, redis_commands
from bench import run as bench_run
from plotjobs import config
from plotjobs.queue import jobs
from plotjobs.render import chart as charts
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app

pytestmark = pytest.mark.integration

# Measured when this test was written, with 5 jobs (docs/benchmarks.md has the 20-job figures).
PLOTJOBS_COMMANDS_PER_JOB_BOUND = 122.0
RATIO_BOUND_AT_FIVE_JOBS = 1.55


@pytest.mark.timeout(90)
def test_redis_commands_per_job_stay_within_their_bounds() -> None:
    """Status reads meet their target (<= 3 commands); end to end is held to the count measured, not the target.

    The end-to-end target, plotjobs <= 1.5 x bare RQ, is only just met: 1.499 at 20 jobs (106.1
    against 70.8 commands per job) and at 5 (118.4 against 79.0), where the workers' fixed start-up
    and stop weigh more per job. That is too close to assert without a flaky test, so this asserts
    the counts measured when it was written as upper bounds, with a little slack for the commands
    that depend on timing (a render stage 0.5 s or more after the last cancel check adds one
    EXISTS): a regression still fails it.
    """
    report = redis_commands.run(jobs=5, reads=2)
    for state, measurement in report.status_reads.items():
        assert measurement.per_job <= redis_commands.TARGET_STATUS_READ, (state, dict(measurement.commands))
    assert report.plotjobs.per_job <= PLOTJOBS_COMMANDS_PER_JOB_BOUND, dict(report.plotjobs.commands)
    assert report.ratio <= RATIO_BOUND_AT_FIVE_JOBS, redis_commands.table(report)
    assert "| ratio plotjobs / bare |" in redis_commands.table(report)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("queue", ["s2", bench_run.IDLE_QUEUE])
def test_every_submission_bench_run_sends_is_accepted(redis_url: str, redis_connection: Redis, queue: str) -> None:
    """bench/run.py's POSTs, to an app configured as its gunicorns are (they once got 422 and 429)."""
    environment = bench_run.service_env(redis_url, QUEUES=queue, **bench_run.SERVICE_LIMITS)
    client = create_app(config.from_env(environment), redis=redis_connection).test_client()
    bodies = [None, bench_run.SEEDED, bench_run.LOAD_SPEC]
    for body in bodies * 15:  # past the default MAX_JOBS_PER_CLIENT of 20, as the web-tier load goes
        answer = client.post(bench_run.SUBMIT_PATH, data=json.dumps(body) if body else None,
                             content_type="application/json" if body else None)  # fmt: skip
        submitted = bench_run.accepted(answer.status_code, answer.data)
        assert client.get(submitted["status_url"]).status_code == 200


def test_a_refused_submission_stops_the_bench_with_the_servers_reason() -> None:
    refusal = json.dumps({"error": "invalid_priority", "message": "priority must be one of high, default, low"})
    with pytest.raises(RuntimeError, match=r"refused with 422: .*invalid_priority"):
        bench_run.accepted(422, refusal.encode())


SMOKE_ARGUMENTS = [
    "--jobs", "4", "--rounds", "1", "--samples", "2", "--streams", "5", "--memory-jobs", "4",
    "--load-seconds", "1", "--status-rounds", "1", "--noop-jobs", "8", "--scaling-jobs", "4",
]  # fmt: skip
SMOKE_ROWS = [
    "1. throughput, default chart: 2 RQ workers vs render in 2 processes",
    f"1. throughput, {bench_run.SCATTER_POINTS:,}-point scatter: 2 RQ workers vs render in 2 processes",
    "2. latency p50",
    "3. progress update -> SSE client",
    "3. open streams held by 1 web process",
    "4. repeated seeded spec: POST + GET file",
    *(
        f"status read, {state} job, {connections} connections"
        for state in ("finished", "running")
        for connections in bench_run.STATUS_CONNECTIONS
    ),
    "5. POST /api/jobs",
    "6. render 10^6 points",
    "6. throughput with 1 / 2 / 4 workers",
    "scale: no-op renders, 1 / 2 / 4 / 8 workers",
    "scale: Redis CPU per job",
    "scale: jobs/s one Redis core serves",
    "6. worker RSS",
]


@pytest.mark.timeout(300)
def test_a_small_run_of_the_benchmark_measures_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/run.py end to end at a tiny size: it starts everything, measures every row and stops."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    table = bench_run.main(SMOKE_ARGUMENTS)
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| target")]
    for expected in SMOKE_ROWS:
        assert [row for row in rows if row.startswith(f"| {expected}")], f"no row {expected!r} in\n{table}"
    assert all(len(row.strip("|").split(" | ")) == len(bench_run.TABLE_HEADER) for row in rows), table


def test_the_naive_endpoint_reads_a_plotjobs_job_as_the_tutorial_does(
    redis_url: str, redis_connection: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    job = jobs.enqueue_render(redis_connection, config.Settings(redis_url=redis_url), ChartSpec())
    answer = naive_status.create_app().test_client().get(f"/api/jobs/{job.id}")
    assert answer.status_code == 200
    assert answer.get_json() == {"id": job.id, "state": "queued", "meta": job.meta}


def test_the_no_op_render_reports_the_charts_stages() -> None:
    stages: list[tuple[float, str]] = []
    charts.render(ChartSpec(seed=0, width=100, height=100), lambda fraction, stage: stages.append((fraction, stage)))
    assert tuple(stages) == noop_worker.CHART_STAGES
    assert noop_worker.render(ChartSpec(), lambda *_: None) == noop_worker.NOOP_FILE
