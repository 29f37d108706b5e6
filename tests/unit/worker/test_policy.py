"""The sweep's and the supervisor's decisions, every branch and boundary."""

from __future__ import annotations

import signal

import pytest

from plotjobs.worker import policy
from plotjobs.worker.policy import InflightJob, LostJob, StartedEntry, WorkerExit


def test_a_worker_is_silent_once_its_last_beat_is_the_liveness_timeout_old() -> None:
    assert policy.silent_since(100.0, 15.0) == 85.0


@pytest.mark.parametrize(
    ("cancel_requested", "attempts", "retries", "expected"),
    [
        (True, 0, 2, LostJob.CANCEL),
        (True, 5, 2, LostJob.CANCEL),
        (False, 1, 2, LostJob.REQUEUE),
        (False, 2, 2, LostJob.REQUEUE),
        (False, 3, 2, LostJob.FAIL),
        (False, 1, 0, LostJob.FAIL),
    ],
)
def test_a_lost_job_is_canceled_if_asked_then_requeued_retries_times_then_failed(
    cancel_requested: bool, attempts: int, retries: int, expected: LostJob
) -> None:
    assert policy.lost_job(cancel_requested=cancel_requested, attempts=attempts, retries=retries) is expected


def test_the_stage_and_reason_of_a_lost_job_name_the_attempts_and_the_worker() -> None:
    assert policy.requeued_stage(1, 2) == "requeued: worker lost (retry 1 of 2)"
    assert policy.worker_lost_message("host.7.1", 3) == (
        "WorkerLostError: worker lost while rendering this job (host.7.1 stopped responding); gave up after 3 attempts"
    )


@pytest.mark.parametrize(
    ("job_failure_ttl", "failure_ttl", "expected"),
    [(None, 600, 600), (0, 600, 600), (900, 600, 900), (300, 600, 600)],
)
def test_a_lost_count_lives_as_long_as_the_longer_failure_ttl(
    job_failure_ttl: int | None, failure_ttl: int, expected: int
) -> None:
    assert policy.lost_count_ttl(job_failure_ttl, failure_ttl) == expected


@pytest.mark.parametrize(
    ("holder_dead", "state", "expected"),
    [
        (False, "started", StartedEntry.KEEP),
        (False, "queued", StartedEntry.KEEP),
        (False, "finished", StartedEntry.KEEP),
        (True, "started", StartedEntry.RECOVER_LOST),
        (True, "queued", StartedEntry.REQUEUE_STRANDED),
        (True, "finished", StartedEntry.DROP_EXECUTION),
        (True, "canceled", StartedEntry.DROP_EXECUTION),
        (True, None, StartedEntry.DROP_EXECUTION),
    ],
)
def test_a_started_entry_is_acted_on_only_once_its_worker_is_dead(
    holder_dead: bool, state: str | None, expected: StartedEntry
) -> None:
    assert policy.started_entry(holder_dead=holder_dead, state=state) is expected


@pytest.mark.parametrize(
    ("state", "registered", "worker_dead", "on_queue", "on_intermediate_queue", "expected"),
    [
        (None, False, True, False, False, InflightJob.FORGET),
        ("finished", False, True, False, False, InflightJob.FORGET),
        ("failed", False, False, True, False, InflightJob.FORGET),
        ("started", False, True, False, False, InflightJob.RECOVER_LOST),
        ("started", True, True, False, False, InflightJob.KEEP),
        ("started", False, False, False, False, InflightJob.KEEP),
        ("queued", False, False, True, False, InflightJob.CLEAR_MARK),
        ("queued", False, False, True, True, InflightJob.CLEAR_MARK),
        ("queued", False, False, False, True, InflightJob.KEEP),
        ("queued", False, True, False, False, InflightJob.REQUEUE_IF_SEEN_LONG_ENOUGH),
        ("queued", False, False, False, False, InflightJob.REQUEUE_IF_SEEN_LONG_ENOUGH),
    ],
)
def test_an_inflight_job_is_recovered_only_when_no_queue_or_live_worker_holds_it(
    state: str | None,
    registered: bool,
    worker_dead: bool,
    on_queue: bool,
    on_intermediate_queue: bool,
    expected: InflightJob,
) -> None:
    decision = policy.inflight_job(
        state=state,
        registered=registered,
        worker_dead=worker_dead,
        on_queue=on_queue,
        on_intermediate_queue=on_intermediate_queue,
    )
    assert decision is expected


@pytest.mark.parametrize(("now", "expected"), [(109.9, False), (110.0, True), (111.0, True)])
def test_a_stranded_job_is_seen_long_enough_from_the_grace_on(now: float, expected: bool) -> None:
    assert policy.seen_long_enough(100.0, now, 10) is expected


@pytest.mark.parametrize(("grace", "expected"), [(15, 600), (60, 600), (61, 610), (100, 1000)])
def test_a_first_seen_mark_outlives_ten_sweeps_and_at_least_ten_minutes(grace: int, expected: int) -> None:
    assert policy.limbo_mark_ttl(grace) == expected


@pytest.mark.parametrize(
    ("returncode", "recycling", "expected"),
    [
        (0, False, WorkerExit.CLEAN),
        (0, True, WorkerExit.CLEAN),
        (-signal.SIGTERM, True, WorkerExit.STOPPED_BEFORE_READY),
        (-signal.SIGTERM, False, WorkerExit.CRASHED),
        (-signal.SIGKILL, True, WorkerExit.CRASHED),
        (1, True, WorkerExit.CRASHED),
        (1, False, WorkerExit.CRASHED),
    ],
)
def test_a_worker_exit_is_clean_stopped_before_ready_or_a_crash(
    returncode: int, recycling: bool, expected: WorkerExit
) -> None:
    assert policy.worker_exit(returncode, recycling=recycling) is expected


@pytest.mark.parametrize(("ran_for", "expected"), [(1.0, False), (60.0, False), (60.5, True)])
def test_the_backoff_starts_afresh_only_after_a_run_longer_than_healthy(ran_for: float, expected: bool) -> None:
    assert policy.backoff_starts_afresh(ran_for) is expected


@pytest.mark.parametrize(
    ("stop_requests", "signum", "since_first", "expected"),
    [
        (0, signal.SIGTERM, 0.1, False),  # the first signal is a request
        (1, signal.SIGTERM, 0.1, True),  # SIGINT to the group, relayed as SIGTERM
        (1, signal.SIGINT, 0.1, False),  # the same signal again: a second request
        (1, signal.SIGTERM, 1.0, False),  # too late to be the same one
        (1, signal.SIGTERM, 0.99, True),
    ],
)
def test_a_different_signal_right_after_the_first_is_the_same_stop_request(
    stop_requests: int, signum: int, since_first: float, expected: bool
) -> None:
    repeated = policy.is_repeated_signal(
        stop_requests=stop_requests, signum=signum, first_signal=signal.SIGINT, since_first=since_first, window=1.0
    )
    assert repeated is expected


@pytest.mark.parametrize(
    ("clean", "stop_requests", "expected"),
    [(True, 0, 0), (False, 0, 1), (True, 1, 0), (False, 1, 0), (True, 2, 0), (False, 2, 1)],
)
def test_the_supervisor_exits_non_zero_only_after_killing_workers_or_when_one_crashed(
    clean: bool, stop_requests: int, expected: int
) -> None:
    assert policy.supervisor_exit_status(clean=clean, stop_requests=stop_requests) == expected
