"""The render worker in-process on a real Redis: it renders, beats, announces, records cancels as stopped."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import JobStatus
from rq.timeouts import JobTimeoutException

from plotjobs import generators, keys
from plotjobs.config import Settings
from plotjobs.generators.builtin import CHART
from plotjobs.queue import jobs
from plotjobs.queue.status import describe
from plotjobs.spec.chart import ChartSpec
from plotjobs.worker import recovery
from plotjobs.worker import render_worker as render_worker_module
from plotjobs.worker.render_worker import RenderDeathPenalty, build_worker
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def _settings(redis_url: str, **changes: object) -> Settings:
    return Settings(redis_url=redis_url).replace(**changes)


def test_the_worker_listens_on_the_configured_queues_in_order(redis_url: str, redis_connection: Redis) -> None:
    worker = build_worker(redis_connection, _settings(redis_url, queues=("high", "default", "low")), name="w1")
    # Priority first, then the generators in GENERATORS' order: a high job of any generator before a default one.
    assert worker.queue_names() == [
        "high", "vega-lite.high", "report.high",
        "default", "vega-lite.default", "report.default",
        "low", "vega-lite.low", "report.low",
    ]  # fmt: skip
    assert worker.name == "w1"
    assert worker.job_class is jobs.PlotJob
    assert worker.default_result_ttl == Settings().result_ttl


def test_a_burst_worker_renders_the_job_announces_its_end_and_forgets_its_heartbeat(
    redis_url: str, redis_connection: Redis
) -> None:
    settings = _settings(redis_url)
    job_id = jobs.enqueue_render(redis_connection, settings, ChartSpec(seed=1)).id
    pubsub = redis_connection.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.events(job_id))
    worker = build_worker(redis_connection, settings, name="w1")
    beats: list[bool] = []
    original_beat = recovery.beat

    def beat(connection: Redis, name: str) -> None:
        original_beat(connection, name)
        beats.append(recovery.is_beating(connection, name))

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(render_worker_module.recovery, "beat", beat)
            assert worker.work(burst=True) is True
        assert beats and beats[0], "the worker beat before its first job"
        assert not recovery.is_beating(redis_connection, "w1"), "a clean stop forgets the heartbeat"
        assert describe(jobs.fetch(redis_connection, job_id))["state"] == "finished"
        states: list[str] = []

        def announced_finished() -> bool:
            message = pubsub.get_message(timeout=0.2)
            if message is not None:
                states.append(json.loads(message["data"])["state"])
            return "finished" in states

        wait_for(announced_finished, timeout=10, what="the worker to announce the job's end")
        assert states[-1] == "finished", states
    finally:
        pubsub.close()


def test_a_job_canceled_before_it_ran_is_recorded_as_stopped_with_the_reason(
    redis_url: str, redis_connection: Redis
) -> None:
    settings = _settings(redis_url)
    job_id = jobs.enqueue_render(redis_connection, settings, ChartSpec(seed=2)).id
    redis_connection.set(keys.cancel(job_id), "1", ex=60)
    build_worker(redis_connection, settings, name="w1").work(burst=True)
    described = describe(jobs.fetch(redis_connection, job_id))
    assert described["state"] == "stopped"
    assert described["error"] == "JobCanceled: canceled on request"


def test_a_failed_job_without_a_cancel_request_is_failed(redis_url: str, redis_connection: Redis) -> None:
    settings = _settings(redis_url)
    job = jobs.queue(redis_connection, "default").enqueue("plotjobs.queue.tasks.generate", "no-such-generator", {})
    build_worker(redis_connection, settings, name="w1").work(burst=True)
    described = describe(jobs.fetch(redis_connection, job.id))
    assert described["state"] == "failed"
    assert described["error"].startswith(
        "GeneratorNotServed: this worker does not render generator 'no-such-generator'"
    )


def test_the_watchdog_beats_and_sweeps_every_third_of_the_liveness_timeout_and_survives_errors(
    redis_url: str, redis_connection: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(redis_url, worker_liveness_timeout=3)
    worker = build_worker(redis_connection, settings, name="w1")
    calls: list[str] = []
    waits: list[float] = []
    failed_once = threading.Event()

    def beat(connection: Redis, name: str) -> None:
        calls.append("beat")
        if not failed_once.is_set():
            failed_once.set()
            raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(render_worker_module.recovery, "beat", beat)
    monkeypatch.setattr(render_worker_module.recovery, "sweep", lambda connection, s: calls.append("sweep"))
    original_wait = worker._watchdog_stop.wait

    def wait(timeout: float) -> bool:
        waits.append(timeout)
        return original_wait(0.01)

    monkeypatch.setattr(worker._watchdog_stop, "wait", wait)
    watchdog = threading.Thread(target=worker._watch, args=(settings,), daemon=True)
    watchdog.start()
    try:
        wait_for(lambda: calls.count("sweep") >= 2, timeout=10, what="two sweeps by the watchdog")
    finally:
        worker._watchdog_stop.set()
        watchdog.join(timeout=5)
    assert calls[:3] == ["beat", "beat", "sweep"], "a failed beat is retried on the next turn"
    assert set(waits) == {1.0}
    assert not watchdog.is_alive()


def test_a_render_past_its_timeout_says_so_in_plain_words() -> None:
    penalty = RenderDeathPenalty(7, JobTimeoutException)
    with pytest.raises(JobTimeoutException, match=r"^render timed out after 7 s \(JOB_TIMEOUT\)$"):
        penalty.handle_death_penalty(14, None)


def test_finishing_a_job_survives_redis_refusing_the_final_announcement(
    redis_url: str, redis_connection: Redis, monkeypatch: pytest.MonkeyPatch, plotjobs_logs: pytest.LogCaptureFixture
) -> None:
    settings = _settings(redis_url)
    job_id = jobs.enqueue_render(redis_connection, settings, ChartSpec(seed=3)).id

    def announce(job: object) -> None:
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(render_worker_module.tasks, "announce", announce)
    build_worker(redis_connection, settings, name="w1").work(burst=True)
    assert jobs.fetch(redis_connection, job_id).get_status() == JobStatus.FINISHED
    warnings = [record.getMessage() for record in plotjobs_logs.records if record.name == render_worker_module.__name__]
    assert warnings == [f"could not publish the final status of job {job_id}"]


def _taken_back_before_its_end(worker: render_worker_module.RenderWorker, settings: Settings, hook: str) -> list[str]:
    """Make the sweep take the job back from ``worker`` just before it records the outcome (``hook``)."""
    requeued: list[str] = []
    record = getattr(worker, hook)

    def taken_back(*args: object, **kwargs: object) -> None:
        recovery.declare_dead(worker.connection, worker.name, settings)
        report = recovery.sweep(worker.connection, settings, force=True)
        assert report is not None
        requeued.extend(report.requeued)
        record(*args, **kwargs)

    setattr(worker, hook, taken_back)
    return requeued


def test_a_worker_that_lost_its_job_discards_its_result_and_the_next_holders_stands(
    redis_url: str, redis_connection: Redis, plotjobs_logs: pytest.LogCaptureFixture
) -> None:
    settings = _settings(redis_url)
    job_id = jobs.enqueue_render(redis_connection, settings, ChartSpec(seed=3)).id
    late = build_worker(redis_connection, settings, name="late")
    requeued = _taken_back_before_its_end(late, settings, "handle_job_success")
    late.work(burst=True, max_jobs=1)
    assert requeued == [job_id]
    waiting = describe(jobs.fetch(redis_connection, job_id))
    assert waiting["state"] == "queued" and waiting["stage"].startswith("requeued: worker lost"), waiting
    assert jobs.fetch(redis_connection, job_id).latest_result() is None
    assert "this outcome is discarded" in plotjobs_logs.text
    build_worker(redis_connection, settings, name="holder").work(burst=True)
    job = jobs.fetch(redis_connection, job_id)
    assert describe(job)["state"] == "finished"
    assert job.worker_name == "holder"
    assert redis_connection.zcard(jobs.queue(redis_connection, "default").started_job_registry.key) == 0


def test_a_worker_that_lost_its_job_does_not_record_its_failure(
    redis_url: str, redis_connection: Redis, plotjobs_logs: pytest.LogCaptureFixture
) -> None:
    settings = _settings(redis_url)
    job = jobs.queue(redis_connection, "default").enqueue("plotjobs.queue.tasks.generate", "no-such-generator", {})
    late = build_worker(redis_connection, settings, name="late")
    requeued = _taken_back_before_its_end(late, settings, "handle_job_failure")
    late.work(burst=True, max_jobs=1)
    assert requeued == [job.id]
    assert describe(jobs.fetch(redis_connection, job.id))["state"] == "queued"
    assert "failed here after the job was recovered" in plotjobs_logs.text


def test_a_worker_that_still_holds_its_job_records_it_as_before(redis_url: str, redis_connection: Redis) -> None:
    settings = _settings(redis_url)
    job_id = jobs.enqueue_render(redis_connection, settings, ChartSpec(seed=4)).id
    build_worker(redis_connection, settings, name="holder").work(burst=True)
    assert describe(jobs.fetch(redis_connection, job_id))["state"] == "finished"


def test_a_rendered_job_is_recorded_when_the_holding_check_cannot_reach_redis(
    redis_url: str, redis_connection: Redis, plotjobs_logs: pytest.LogCaptureFixture
) -> None:
    settings = _settings(redis_url)
    job_id = jobs.enqueue_render(redis_connection, settings, ChartSpec(seed=5)).id
    worker = build_worker(redis_connection, settings, name="unsure")

    def unreachable(*args: Any) -> bool:
        raise RedisConnectionError("the check's connection dropped")

    worker._superseded = unreachable  # type: ignore[method-assign]
    worker.work(burst=True, max_jobs=1)
    assert describe(jobs.fetch(redis_connection, job_id))["state"] == "finished"
    assert "could not check that this worker still holds it; recording the result" in plotjobs_logs.text


def test_an_isolated_generator_is_not_warmed_here_and_a_time_limit_above_job_timeout_is_reported(
    redis_url: str, redis_connection: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    warmed: list[str] = []
    isolated = dataclasses.replace(CHART, isolated=True, time_limit=90, warm_up_path="tests.nowhere:warm_up")
    monkeypatch.setattr(generators, "served", lambda names: {"chart": isolated})
    monkeypatch.setattr(generators, "_load", lambda path: lambda: warmed.append(path))
    with caplog.at_level("WARNING", logger=render_worker_module.__name__):
        build_worker(redis_connection, _settings(redis_url, job_timeout=30), name="w1").work(burst=True)
    assert warmed == []
    assert "generator chart: its time limit (90 s) is above JOB_TIMEOUT (30 s), which caps it" in caplog.text
