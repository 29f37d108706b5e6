"""The status view: each state's fields, progress read defensively from meta, errors without module paths."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from redis import Redis
from rq.job import Job, JobStatus
from rq.results import Result

from plotjobs.config import Settings
from plotjobs.errors import JobNotFound
from plotjobs.queue import jobs, status
from plotjobs.queue.status import TutorialState
from plotjobs.spec.chart import ChartSpec

SETTINGS = Settings(redis_url="redis://fake")
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/rq/worker.py", line 1, in perform\n'
    "    return self.func(*args)\n"
    '  File "/srv/plotjobs/render/chart.py", line 9, in render\n'
    "    raise ValueError(reason)\n"
    "plotjobs.errors.RenderError: the series are empty\n"
    "  second line of the message"
)


@pytest.fixture
def connection() -> Redis:
    return fakeredis.FakeRedis()


def _queued(connection: Redis) -> Job:
    return jobs.enqueue_render(connection, SETTINGS, ChartSpec())


def _ended(connection: Redis, state: JobStatus, exc_string: str | None = None) -> Job:
    job = _queued(connection)
    job.started_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    job.ended_at = dt.datetime(2026, 1, 2, 3, 4, 6, tzinfo=dt.UTC)
    job.set_status(state)
    job.save()
    if exc_string is not None:
        Result.create_failure(job, 60, exc_string=exc_string)
    return jobs.fetch(connection, job.id)


def test_a_queued_job_shows_its_position_stage_and_creation_time(connection: Redis) -> None:
    first, second = _queued(connection), _queued(connection)
    described = status.describe(jobs.fetch(connection, second.id))
    assert described == {
        "id": second.id,
        "state": "queued",
        "progress": 0.0,
        "stage": "queued",
        "error": None,
        "position": 1,
        "created_at": second.created_at.isoformat(),
        "started_at": None,
        "ended_at": None,
    }
    assert status.describe(jobs.fetch(connection, first.id))["position"] == 0


def test_a_started_job_shows_its_progress_and_no_position(connection: Redis) -> None:
    job = _queued(connection)
    job.set_status(JobStatus.STARTED)
    job.meta = {"progress": 0.4, "stage": "drawing"}
    job.save_meta()
    described = status.describe(jobs.fetch(connection, job.id))
    assert (described["state"], described["progress"], described["stage"]) == ("started", 0.4, "drawing")
    assert described["position"] is None and described["error"] is None


def test_a_finished_job_is_complete_whatever_its_meta_says(connection: Redis) -> None:
    job = _ended(connection, JobStatus.FINISHED)
    job.meta = {"progress": 0.9, "stage": "storing"}  # the task never writes its last stage
    described = status.describe(job)
    assert described["state"] == "finished"
    assert (described["progress"], described["stage"]) == (1.0, "done")
    assert described["error"] is None and described["position"] is None
    assert described["started_at"] == "2026-01-02T03:04:05+00:00"
    assert described["ended_at"] == "2026-01-02T03:04:06+00:00"


@pytest.mark.parametrize("state", [JobStatus.FAILED, JobStatus.STOPPED])
def test_a_failed_or_stopped_job_names_its_exception_without_module_paths(connection: Redis, state: JobStatus) -> None:
    described = status.describe(_ended(connection, state, TRACEBACK))
    assert described["state"] == state.value
    assert described["error"] == "RenderError: the series are empty\n  second line of the message"
    assert described["progress"] == 0.0


def test_a_canceled_job_carries_no_error_even_with_a_failure_recorded(connection: Redis) -> None:
    assert status.describe(_ended(connection, JobStatus.CANCELED, TRACEBACK))["error"] is None


def test_a_failed_job_without_a_result_or_exception_text_has_no_error(connection: Redis) -> None:
    assert status.describe(_ended(connection, JobStatus.FAILED))["error"] is None
    assert status.describe(_ended(connection, JobStatus.FAILED, ""))["error"] is None


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"progress": 0.25, "stage": "drawing"}, (0.25, "drawing")),
        ({"progress": 0, "stage": "s"}, (0.0, "s")),
        ({"progress": 1}, (1.0, None)),
        ({"progress": 1.0}, (1.0, None)),
        ({"progress": 0.0}, (0.0, None)),
        ({"progress": 1.01}, (0.0, None)),
        ({"progress": -0.01}, (0.0, None)),
        ({"progress": True, "stage": 3}, (0.0, None)),
        ({"progress": "0.5"}, (0.0, None)),
        ({"progress": None, "stage": None}, (0.0, None)),
        ({}, (0.0, None)),
        ([0.5, "drawing"], (0.0, None)),
        (None, (0.0, None)),
        ("garbage", (0.0, None)),
    ],
)
def test_progress_is_read_defensively_from_meta(meta: Any, expected: tuple[float, str | None]) -> None:
    progress, stage = status.progress_of(meta)
    assert (progress, stage) == expected
    assert isinstance(progress, float)


def test_a_long_stage_is_cut_to_its_limit() -> None:
    stage = "x" * status.MAX_STAGE_CHARS
    assert status.progress_of({"stage": stage + "tail"})[1] == stage
    assert status.progress_of({"stage": stage})[1] == stage


@pytest.mark.parametrize(
    ("traceback_text", "expected"),
    [
        (TRACEBACK, "RenderError: the series are empty\n  second line of the message"),
        ("ValueError: boom\n  detail", "ValueError: boom\n  detail"),
        ("rq.timeouts.JobTimeoutException: Task exceeded", "JobTimeoutException: Task exceeded"),
        ("Worker lost: a.b.c stopped", "Worker lost: a.b.c stopped"),
        ("Worker a.b lost: it stopped", "Worker a.b lost: it stopped"),
        ("KeyboardInterrupt", "KeyboardInterrupt"),
        ("a.b.NoMessage", "NoMessage"),
        ("  \nValueError: padded\n\n", "ValueError: padded"),
        (
            '  File "x.py", line 1, in f\n    call()\n    more()\nmod.Error: last',
            "Error: last",
        ),
        ('  File "x.py", line 1, in f\n    only_source()', "only_source()"),
        ('  File "x.py", line 1, in f\n    x = call()\n    y = more()\nmod.Error: last', "Error: last"),
        ("", ""),
    ],
)
def test_exception_text_keeps_type_and_message_without_paths_or_frames(traceback_text: str, expected: str) -> None:
    assert status.exception_text(traceback_text) == expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (JobStatus.QUEUED, TutorialState.PENDING),
        (JobStatus.DEFERRED, TutorialState.PENDING),
        (JobStatus.STARTED, TutorialState.PROGRESS),
        (JobStatus.FINISHED, TutorialState.SUCCESS),
        (JobStatus.FAILED, TutorialState.FAILURE),
        (JobStatus.STOPPED, TutorialState.FAILURE),
        (JobStatus.CANCELED, TutorialState.FAILURE),
    ],
)
def test_the_tutorial_states_map_rq_states(connection: Redis, state: JobStatus, expected: TutorialState) -> None:
    job = _queued(connection)
    job.set_status(state)
    assert status.tutorial_state(jobs.fetch(connection, job.id)) is expected


def test_iso_leaves_absent_times_absent() -> None:
    assert status.iso(None) is None
    assert status.iso(dt.datetime(2026, 1, 2, tzinfo=dt.UTC)) == "2026-01-02T00:00:00+00:00"


def test_the_view_describes_the_job_as_fetched_in_one_read(connection: Redis) -> None:
    job = jobs.fetch(connection, _queued(connection).id)
    connection.hset(job.key, "status", "started")  # a worker took it after this read
    assert status.describe(job)["state"] == "queued"
    assert status.tutorial_state(job) is TutorialState.PENDING


@contextlib.contextmanager
def counted(connection: Redis) -> Iterator[list[str]]:
    """The names of the commands ``connection`` sends inside the block."""
    sent: list[str] = []
    send = connection.execute_command

    def recording(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return send(*args, **options)

    connection.execute_command = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del connection.execute_command


def _started(connection: Redis, meta: Any) -> Job:
    job = _queued(connection)
    job.started_at = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    job.set_status(JobStatus.STARTED)
    job.meta = meta
    job.save()
    return job


@pytest.mark.parametrize(
    "make",
    [
        lambda connection: _started(connection, {"progress": 0.4, "stage": "drawing"}),
        lambda connection: _started(connection, {"progress": "much", "stage": 3}),
        lambda connection: _started(connection, {}),
        lambda connection: _ended(connection, JobStatus.FINISHED),
        lambda connection: _ended(connection, JobStatus.CANCELED, TRACEBACK),
    ],
    ids=["started", "started-odd-meta", "started-no-meta", "finished", "canceled"],
)
def test_the_quick_read_answers_as_describe_does_in_one_command(connection: Redis, make: Any) -> None:
    job = make(connection)
    expected = status.describe(jobs.fetch(connection, job.id))
    with counted(connection) as commands:
        assert status.quick(connection, job.id) == expected
    assert commands == ["HMGET"]
    assert status.current(connection, job.id) == expected


def test_a_queued_job_reads_its_fields_then_its_position(connection: Redis) -> None:
    first, second = _queued(connection), _queued(connection)
    for job, position in ((first, 0), (second, 1)):
        expected = status.describe(jobs.fetch(connection, job.id))
        with counted(connection) as commands:
            assert status.quick(connection, job.id) == expected
        assert commands == ["HMGET", "LPOS"] and expected["position"] == position
    jobs.queue(connection, first.origin).remove(first.id)  # dequeued, not yet marked started
    assert status.quick(connection, first.id)["position"] is None  # type: ignore[index]


@pytest.mark.parametrize(
    "make",
    [
        lambda connection: _ended(connection, JobStatus.FAILED, TRACEBACK),
        lambda connection: _ended(connection, JobStatus.STOPPED, TRACEBACK),
    ],
    ids=["failed", "stopped"],
)
def test_a_state_that_needs_more_than_the_fields_is_left_to_describe(connection: Redis, make: Any) -> None:
    job = make(connection)
    assert status.quick(connection, job.id) is None
    assert status.current(connection, job.id) == status.describe(jobs.fetch(connection, job.id))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "sleeping"),
        ("status", None),
        ("meta", "\x80\x04pickle"),
        ("created_at", "yesterday"),
        ("created_at", None),
        ("started_at", "soon"),
        ("ended_at", "2026-13-45"),
    ],
)
def test_a_field_not_as_rq_writes_it_is_left_to_the_whole_job(connection: Redis, field: str, value: str | None) -> None:
    job = _ended(connection, JobStatus.FINISHED)
    if value is None:
        connection.hdel(job.key, field)
    else:
        connection.hset(job.key, field, value)
    assert status.quick(connection, job.id) is None


@pytest.mark.parametrize(
    "written",
    ["2026-01-02T03:04:05.678901Z", "2026-01-02T03:04:05Z", "2026-1-2T3:4:5.5Z", "2026-01-02T03:04:05.5Z"],
)
def test_times_read_quickly_are_the_times_rq_reads(connection: Redis, written: str) -> None:
    job = _ended(connection, JobStatus.FINISHED)
    connection.hset(job.key, "ended_at", written)
    expected = status.describe(jobs.fetch(connection, job.id))["ended_at"]
    assert status.quick(connection, job.id)["ended_at"] == expected  # type: ignore[index]
    assert expected.startswith("2026-01-02T03:04:05")


def test_a_missing_job_or_an_id_not_ours_has_no_quick_status(connection: Redis) -> None:
    assert status.quick(connection, "not an id") is None
    assert status.quick(connection, "0b8f3b8e-7b37-4c32-9c1b-1a1f6d8e2f00") is None
    with pytest.raises(JobNotFound):
        status.current(connection, "0b8f3b8e-7b37-4c32-9c1b-1a1f6d8e2f00")
