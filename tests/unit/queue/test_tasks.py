"""Progress stages: each write is published in one round trip; a cancel is looked for at the first stage,
before storing, and between them only once the check interval has passed."""

from __future__ import annotations

import pytest
from redis import Redis
from rq.job import Job

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.errors import JobCanceled
from plotjobs.queue import jobs, tasks
from plotjobs.queue.status import describe
from plotjobs.worker.render_worker import build_worker


def _job(connection: Redis) -> Job:
    return jobs.queue(connection, "default").enqueue("plotjobs.queue.tasks.generate", "chart", {})


def _stage(connection: Redis, job: Job) -> object:
    return jobs.fetch(connection, job.id).meta["stage"]


def test_a_stage_between_checks_is_recorded_without_looking_for_a_cancel(fake_redis: Redis) -> None:
    job = _job(fake_redis)
    stages = tasks.StageReporter(job, interval=3600)
    stages.report(0.05, "started", must_check=True)
    fake_redis.set(keys.cancel(job.id), "1")
    stages.report(0.3, "drawing")
    assert _stage(fake_redis, job) == "drawing"
    with pytest.raises(JobCanceled):
        stages.report(0.9, "storing", must_check=True)
    assert _stage(fake_redis, job) == "storing", "the stage is written in the same round trip as the check"


def test_the_first_stage_always_looks_for_a_cancel(fake_redis: Redis) -> None:
    job = _job(fake_redis)
    fake_redis.set(keys.cancel(job.id), "1")
    with pytest.raises(JobCanceled):
        tasks.StageReporter(job, interval=3600).report(0.1, "preparing data")


def test_a_stage_looks_again_once_the_interval_has_passed(fake_redis: Redis) -> None:
    job = _job(fake_redis)
    stages = tasks.StageReporter(job, interval=0)
    stages.report(0.05, "started", must_check=True)
    fake_redis.set(keys.cancel(job.id), "1")
    with pytest.raises(JobCanceled):
        stages.report(0.3, "drawing")


def test_report_progress_without_the_check_ignores_a_cancel_and_publishes(fake_redis: Redis) -> None:
    job = _job(fake_redis)
    fake_redis.set(keys.cancel(job.id), "1")
    subscriber = fake_redis.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(keys.events(job.id))
    tasks.report_progress(job, 1.0, "done", check_cancel=False)
    # The first read takes the subscribe confirmation, which is ignored.
    message = subscriber.get_message(timeout=1) or subscriber.get_message(timeout=1)
    subscriber.close()
    assert message is not None and b'"stage": "done"' in message["data"]
    assert _stage(fake_redis, job) == "done"


def test_a_report_with_a_part_of_a_generator_not_rendered_here_fails_naming_the_part(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks._Served, "names", None)
    part = {"generator": "vega-lite", "spec": {"vega_lite": {"mark": "point", "data": {"values": [{"a": 1}]}}}}
    job = jobs.queue(fake_redis, "default").enqueue("plotjobs.queue.tasks.generate", "report", {"parts": [part]})
    settings = Settings(redis_url="redis://fake", generators=("chart", "report"))
    build_worker(fake_redis, settings).work(burst=True)
    described = describe(jobs.fetch(fake_redis, job.id))
    assert described["state"] == "failed"
    assert described["error"].startswith(
        "GeneratorNotServed: this worker does not render generator 'vega-lite' (in parts.0.generator)"
    )
