"""The sweep on a real Redis, in-process: each way a job is lost, what is recovered, what is left alone.

Worker deaths are staged by writing what RQ's worker writes (dequeue, execution, start) and
then declaring the worker dead; tests/system/test_faults.py kills real workers.
"""

from __future__ import annotations

import time

import pytest
from redis import Redis
from rq.executions import Execution
from rq.job import JobStatus
from rq.registry import FailedJobRegistry

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.queue.serialization import JsonSerializer
from plotjobs.queue.status import describe
from plotjobs.spec.chart import ChartSpec
from plotjobs.worker import recovery

pytestmark = pytest.mark.integration

SETTINGS = Settings(worker_liveness_timeout=3, sweep_interval=1, lost_job_retries=2, failure_ttl=900)


def enqueue(connection: Redis, queue_name: str = "default") -> str:
    job_id = jobs.new_job_id()
    jobs.enqueue_render(connection, SETTINGS, ChartSpec(), queue_name, job_id=job_id)
    return job_id


def dequeue(connection: Redis, job_id: str, worker_name: str, *, start: bool = True) -> Execution:
    """What a worker writes as it takes ``job_id`` (and, with ``start``, starts it)."""
    job = jobs.fetch(connection, job_id)
    queue = jobs.queue(connection, job.origin)
    connection.lrem(queue.key, 0, job_id)
    connection.rpush(queue.intermediate_queue_key, job_id)
    with connection.pipeline() as pipe:
        execution = Execution.create(job, ttl=120, pipeline=pipe, worker_name=worker_name)
        if start:
            job.prepare_for_execution(worker_name, pipeline=pipe)
        pipe.execute()
    recovery.beat(connection, worker_name)
    return execution


def state(connection: Redis, job_id: str) -> tuple[str, str | None]:
    described = describe(jobs.fetch(connection, job_id))
    return described["state"], described["stage"]


def kill(connection: Redis, worker_name: str) -> None:
    recovery.declare_dead(connection, worker_name, SETTINGS)


def test_a_lost_job_is_requeued_at_the_front_with_its_retry_in_the_stage(redis_connection: Redis) -> None:
    waiting = enqueue(redis_connection)
    lost = enqueue(redis_connection)
    execution = dequeue(redis_connection, lost, "w1")
    kill(redis_connection, "w1")
    report = recovery.sweep(redis_connection, SETTINGS, force=True)
    assert report == recovery.SweepReport(requeued=[lost])
    queue = jobs.queue(redis_connection, "default")
    assert queue.get_job_ids() == [lost, waiting]
    assert state(redis_connection, lost) == ("queued", "requeued: worker lost (retry 1 of 2)")
    assert redis_connection.zscore(queue.started_job_registry.key, execution.composite_key) is None
    assert redis_connection.llen(queue.intermediate_queue_key) == 0
    assert int(redis_connection.get(keys.lost_count(lost)) or 0) == 1
    assert 0 < redis_connection.ttl(keys.lost_count(lost)) <= SETTINGS.failure_ttl
    assert jobs.fetch(redis_connection, lost).meta["progress"] == 0.0


def test_a_job_whose_workers_keep_dying_fails_with_worker_lost_after_the_retries(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    for attempt in range(1, SETTINGS.lost_job_retries + 2):
        dequeue(redis_connection, job_id, f"w{attempt}")
        kill(redis_connection, f"w{attempt}")
        redis_connection.delete(keys.recovering(job_id))  # each sweep here stands for one some seconds apart
        report = recovery.sweep(redis_connection, SETTINGS, force=True)
        if attempt <= SETTINGS.lost_job_retries:
            assert report == recovery.SweepReport(requeued=[job_id])
    assert report == recovery.SweepReport(failed=[job_id])
    job = jobs.fetch(redis_connection, job_id)
    described = describe(job)
    assert described["state"] == "failed"
    assert described["error"] == (
        "WorkerLostError: worker lost while rendering this job (w3 stopped responding); gave up after 3 attempts"
    )
    assert described["ended_at"] is not None
    failed = FailedJobRegistry("default", connection=redis_connection, serializer=JsonSerializer)
    assert failed.get_job_ids() == [job_id]
    assert jobs.queue(redis_connection, "default").get_job_ids() == []
    assert redis_connection.zcard(jobs.queue(redis_connection, "default").started_job_registry.key) == 0


def test_a_lost_job_that_was_asked_to_cancel_is_canceled_and_not_counted(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    dequeue(redis_connection, job_id, "w1")
    redis_connection.set(keys.cancel(job_id), "1", ex=60)
    kill(redis_connection, "w1")
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    assert state(redis_connection, job_id)[0] == "canceled"
    queue = jobs.queue(redis_connection, "default")
    assert queue.get_job_ids() == [] and redis_connection.zcard(queue.started_job_registry.key) == 0
    assert redis_connection.get(keys.lost_count(job_id)) is None


def test_a_job_of_a_live_worker_is_left_alone(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    dequeue(redis_connection, job_id, "alive")
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    assert state(redis_connection, job_id)[0] == "started"
    assert redis_connection.zcard(jobs.queue(redis_connection, "default").started_job_registry.key) == 1


def test_a_job_registered_by_a_worker_that_died_before_starting_it_is_requeued(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    dequeue(redis_connection, job_id, "ghost", start=False)
    kill(redis_connection, "ghost")
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport(requeued=[job_id])
    queue = jobs.queue(redis_connection, "default")
    assert queue.get_job_ids() == [job_id]
    assert redis_connection.zcard(queue.started_job_registry.key) == 0
    assert redis_connection.llen(queue.intermediate_queue_key) == 0
    assert state(redis_connection, job_id) == ("queued", "requeued: stranded after dequeue")
    assert redis_connection.get(keys.lost_count(job_id)) is None


def test_an_ended_job_left_in_the_started_registry_of_a_dead_worker_is_dropped_not_requeued(
    redis_connection: Redis,
) -> None:
    job_id = enqueue(redis_connection)
    dequeue(redis_connection, job_id, "w1")
    jobs.fetch(redis_connection, job_id).set_status(JobStatus.FINISHED)
    kill(redis_connection, "w1")
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    queue = jobs.queue(redis_connection, "default")
    assert redis_connection.zcard(queue.started_job_registry.key) == 0
    assert queue.get_job_ids() == []
    assert state(redis_connection, job_id)[0] == "finished"


def test_a_started_job_no_registry_holds_is_recovered_once_its_worker_is_dead(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    execution = dequeue(redis_connection, job_id, "w1")
    dequeue(redis_connection, enqueue(redis_connection), "alive")  # another job's entry is no entry of this one
    queue = jobs.queue(redis_connection, "default")
    queue.started_job_registry.remove_execution(execution)  # lost with a Redis failover, say
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    kill(redis_connection, "w1")
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport(requeued=[job_id])
    assert queue.get_job_ids() == [job_id]


def _strand_first_seen_long_ago(connection: Redis, job_id: str) -> None:
    first_seen = float(connection.get(keys.limbo(job_id)) or 0)
    connection.set(keys.limbo(job_id), first_seen - SETTINGS.worker_liveness_timeout)


def test_a_job_stranded_in_the_intermediate_queue_is_requeued_on_the_sweep_after_the_grace(
    redis_connection: Redis,
) -> None:
    job_id = enqueue(redis_connection)
    queue = jobs.queue(redis_connection, "default")
    redis_connection.lmove(queue.key, queue.intermediate_queue_key)  # dequeued, then the worker vanished
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    mark_ttl = redis_connection.ttl(keys.limbo(job_id))
    assert 590 < mark_ttl <= 600
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()  # seen, not long enough
    _strand_first_seen_long_ago(redis_connection, job_id)
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport(requeued=[job_id])
    assert queue.get_job_ids() == [job_id]
    assert redis_connection.llen(queue.intermediate_queue_key) == 0
    assert redis_connection.get(keys.limbo(job_id)) is None
    assert state(redis_connection, job_id) == ("queued", "requeued: stranded after dequeue")


def test_an_ended_or_vanished_job_in_the_intermediate_queue_is_removed(redis_connection: Redis) -> None:
    ended, vanished = enqueue(redis_connection), enqueue(redis_connection)
    queue = jobs.queue(redis_connection, "default")
    redis_connection.lmove(queue.key, queue.intermediate_queue_key)
    redis_connection.lmove(queue.key, queue.intermediate_queue_key)
    jobs.fetch(redis_connection, ended).set_status(JobStatus.FINISHED)
    redis_connection.delete(jobs.fetch(redis_connection, vanished).key)
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    assert redis_connection.llen(queue.intermediate_queue_key) == 0
    assert queue.get_job_ids() == []


def test_an_orphan_no_queue_holds_is_requeued_after_the_grace_and_its_mark_cleared(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection, "high")
    queue = jobs.queue(redis_connection, "high")
    redis_connection.lpop(queue.key)  # popped by BLPOP across several queues, then the worker died
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    _strand_first_seen_long_ago(redis_connection, job_id)
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport(requeued=[job_id])
    assert queue.get_job_ids() == [job_id]
    assert redis_connection.get(keys.limbo(job_id)) is None
    assert state(redis_connection, job_id) == ("queued", "requeued: lost between dequeue and start")


def test_a_job_back_on_its_queue_loses_its_first_seen_mark(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    queue = jobs.queue(redis_connection, "default")
    redis_connection.lpop(queue.key)
    recovery.sweep(redis_connection, SETTINGS, force=True)
    assert redis_connection.exists(keys.limbo(job_id))
    redis_connection.rpush(queue.key, job_id)  # its worker pushed it back after all
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    assert not redis_connection.exists(keys.limbo(job_id))


def test_a_first_seen_mark_that_is_not_a_time_counts_from_this_sweep(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    redis_connection.lpop(jobs.queue(redis_connection, "default").key)
    redis_connection.set(keys.limbo(job_id), "not a time")
    before = time.time()
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    restarted = float(redis_connection.get(keys.limbo(job_id)) or 0)
    assert before - 1 <= restarted <= time.time() + 1
    assert 590 < redis_connection.ttl(keys.limbo(job_id)) <= 600


def test_jobs_that_ended_leave_the_inflight_set_and_live_ones_stay(redis_connection: Redis) -> None:
    ended, waiting = enqueue(redis_connection), enqueue(redis_connection)
    jobs.fetch(redis_connection, ended).set_status(JobStatus.FAILED)
    recovery.sweep(redis_connection, SETTINGS, force=True)
    members = {member.decode() for member in redis_connection.zrange(keys.INFLIGHT, 0, -1)}
    assert members == {waiting}


def test_a_job_already_claimed_by_another_sweep_is_left_to_it(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    dequeue(redis_connection, job_id, "w1")
    kill(redis_connection, "w1")
    redis_connection.set(keys.recovering(job_id), "1", ex=keys.RECOVERING_TTL)
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport()
    assert state(redis_connection, job_id)[0] == "started"


def test_the_claim_expires_so_a_later_sweep_can_recover(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    dequeue(redis_connection, job_id, "w1")
    kill(redis_connection, "w1")
    recovery.sweep(redis_connection, SETTINGS, force=True)
    assert 0 < redis_connection.ttl(keys.recovering(job_id)) <= keys.RECOVERING_TTL


def test_sweeps_are_rate_limited_across_processes_unless_forced(redis_connection: Redis) -> None:
    assert recovery.sweep(redis_connection, SETTINGS) is not None
    assert recovery.sweep(redis_connection, SETTINGS) is None
    assert 0 < redis_connection.ttl(keys.SWEEP_LOCK) <= SETTINGS.sweep_interval
    assert recovery.sweep(redis_connection, SETTINGS, force=True) is not None


def test_a_worker_is_dead_once_silent_for_the_liveness_timeout_and_forgotten_after_a_day(
    redis_connection: Redis,
) -> None:
    now = recovery.server_time(redis_connection)
    redis_connection.zadd(
        keys.HEARTBEATS,
        {
            "fresh": now,
            "just-alive": now - SETTINGS.worker_liveness_timeout + 0.5,
            "silent": now - SETTINGS.worker_liveness_timeout,
            "ancient": now - keys.HEARTBEATS_TTL - 1,
        },
    )
    assert recovery.dead_workers(redis_connection, SETTINGS, now) == {"silent"}
    assert redis_connection.zscore(keys.HEARTBEATS, "ancient") is None


def test_beat_declare_dead_and_forget(redis_connection: Redis) -> None:
    assert not recovery.is_beating(redis_connection, "w1")
    recovery.beat(redis_connection, "w1")
    assert recovery.is_beating(redis_connection, "w1")
    assert 0 < redis_connection.ttl(keys.HEARTBEATS) <= keys.HEARTBEATS_TTL
    now = recovery.server_time(redis_connection)
    assert recovery.dead_workers(redis_connection, SETTINGS, now) == set()
    recovery.declare_dead(redis_connection, "w1", SETTINGS)
    assert recovery.dead_workers(redis_connection, SETTINGS, recovery.server_time(redis_connection)) == {"w1"}
    recovery.forget(redis_connection, "w1")
    assert not recovery.is_beating(redis_connection, "w1")


def test_server_time_is_redis_clock_in_seconds(redis_connection: Redis) -> None:
    seconds, microseconds = redis_connection.time()
    measured = recovery.server_time(redis_connection)
    assert seconds <= measured < seconds + 2
    assert measured != int(measured) or microseconds == 0


def test_a_job_failed_as_lost_is_kept_for_its_own_failure_ttl_with_the_reason_and_worker(
    redis_connection: Redis,
) -> None:
    job_id = jobs.new_job_id()
    jobs.enqueue_render(redis_connection, SETTINGS.replace(failure_ttl=5000), ChartSpec(), "high", job_id=job_id)
    for attempt in range(1, SETTINGS.lost_job_retries + 2):
        dequeue(redis_connection, job_id, f"w{attempt}")
        kill(redis_connection, f"w{attempt}")
        redis_connection.delete(keys.recovering(job_id))
        recovery.sweep(redis_connection, SETTINGS, force=True)
    assert 900 < redis_connection.ttl(keys.lost_count(job_id)) <= 5000, "the job's own failure TTL is the longer one"
    job = jobs.fetch(redis_connection, job_id)
    assert 4900 < redis_connection.ttl(job.key) <= 5000
    failed = FailedJobRegistry("high", connection=redis_connection, serializer=JsonSerializer)
    assert failed.get_job_ids() == [job_id]
    expires_in = float(redis_connection.zscore(failed.key, job_id) or 0) - time.time()
    assert 4900 < expires_in <= 5001
    result = jobs.latest_result(job)
    assert result is not None and result.worker_name == "w3"
    assert result.exc_string is not None and result.exc_string.startswith("WorkerLostError: ")
    assert 4900 < redis_connection.ttl(f"rq:results:{job_id}") <= 5000, "the failure result expires with the job"


def test_every_recovery_is_logged_with_the_job_the_worker_and_the_queue(
    redis_connection: Redis, plotjobs_logs: pytest.LogCaptureFixture
) -> None:
    settings = SETTINGS.replace(lost_job_retries=1)
    lost, canceled, never_started, stranded, orphan = (enqueue(redis_connection) for _ in range(5))
    dequeue(redis_connection, lost, "w1")
    dequeue(redis_connection, canceled, "w1")
    redis_connection.set(keys.cancel(canceled), "1", ex=60)
    dequeue(redis_connection, never_started, "w1", start=False)
    queue = jobs.queue(redis_connection, "default")
    redis_connection.lmove(queue.key, queue.intermediate_queue_key)  # stranded
    redis_connection.lpop(queue.key)  # orphan
    kill(redis_connection, "w1")
    recovery.sweep(redis_connection, settings, force=True)
    for job_id in (stranded, orphan):
        _strand_first_seen_long_ago(redis_connection, job_id)
    recovery.sweep(redis_connection, settings, force=True)
    dequeue(redis_connection, lost, "w2")
    kill(redis_connection, "w2")
    redis_connection.delete(keys.recovering(lost))
    recovery.sweep(redis_connection, settings, force=True)
    messages = [record.getMessage() for record in plotjobs_logs.records if record.name == recovery.__name__]
    assert sorted(messages) == sorted(
        [
            f"job {lost}: worker w1 lost; requeued (retry 1 of 1)",
            f"job {canceled}: worker w1 lost after a cancel request; canceled",
            f"job {never_started}: its worker died before starting it; back on queue default",
            f"job {stranded}: stranded after dequeue; back on queue default",
            f"job {orphan}: queued but on no queue; back on queue default",
            f"job {lost}: WorkerLostError: worker lost while rendering this job (w2 stopped responding); "
            "gave up after 2 attempts",
        ]
    )


def test_every_entry_is_swept_not_only_those_before_one_left_alone(redis_connection: Redis) -> None:
    vanished, alive_job, lost_job = enqueue(redis_connection), enqueue(redis_connection), enqueue(redis_connection)
    dequeue(redis_connection, vanished, "dead")
    redis_connection.delete(jobs.fetch(redis_connection, vanished).key)  # expired while its entry stayed
    dequeue(redis_connection, alive_job, "alive")
    dequeue(redis_connection, lost_job, "dead")
    queue = jobs.queue(redis_connection, "default")
    first_stranded, second_stranded = enqueue(redis_connection), enqueue(redis_connection)
    redis_connection.lmove(queue.key, queue.intermediate_queue_key)
    redis_connection.lmove(queue.key, queue.intermediate_queue_key)
    ended, orphans = enqueue(redis_connection), [enqueue(redis_connection) for _ in range(3)]
    redis_connection.delete(queue.key)
    kill(redis_connection, "dead")
    recovery.sweep(redis_connection, SETTINGS, force=True)
    jobs.fetch(redis_connection, ended).set_status(JobStatus.FINISHED)  # ended between the sweeps
    for job_id in (first_stranded, second_stranded, *orphans):
        _strand_first_seen_long_ago(redis_connection, job_id)
    redis_connection.delete(keys.recovering(lost_job))
    report = recovery.sweep(redis_connection, SETTINGS, force=True)
    assert report is not None
    assert set(report.requeued) == {first_stranded, second_stranded, *orphans}
    assert set(queue.get_job_ids()) == {lost_job, first_stranded, second_stranded, *orphans}
    assert state(redis_connection, alive_job)[0] == "started"
    assert ended.encode() not in redis_connection.zrange(keys.INFLIGHT, 0, -1)


def test_a_requeued_job_is_on_its_queue_once_however_often_it_was_listed(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection)
    queue = jobs.queue(redis_connection, "default")
    redis_connection.lmove(queue.key, queue.intermediate_queue_key)
    redis_connection.rpush(queue.intermediate_queue_key, job_id)
    redis_connection.rpush(queue.key, job_id)
    redis_connection.rpush(queue.key, job_id)
    job = jobs.fetch(redis_connection, job_id)
    with redis_connection.pipeline() as pipe:
        Execution.create(job, ttl=120, pipeline=pipe, worker_name="ghost")
        pipe.execute()
    kill(redis_connection, "ghost")
    recovery.sweep(redis_connection, SETTINGS, force=True)
    assert queue.get_job_ids() == [job_id]
    assert redis_connection.llen(queue.intermediate_queue_key) == 0


def test_a_queue_no_longer_configured_is_still_swept(redis_connection: Redis) -> None:
    job_id = enqueue(redis_connection, "retired")
    dequeue(redis_connection, job_id, "w1")
    kill(redis_connection, "w1")
    redis_connection.delete(keys.INFLIGHT)  # only the queue's own registry knows the job
    assert recovery.sweep(redis_connection, SETTINGS, force=True) == recovery.SweepReport(requeued=[job_id])
    assert jobs.queue(redis_connection, "retired").get_job_ids() == [job_id]
