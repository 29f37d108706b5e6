"""No work twice: identical reproducible specs share one job, against a real Redis and worker, and on fakeredis."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq.job import JobStatus

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.queue import dedupe, jobs
from plotjobs.spec.chart import ChartSpec
from plotjobs.worker.render_worker import build_worker
from tests.support.processes import running_worker
from tests.support.waiting import wait_for

SEEDED = {"title": "same every time", "seed": 7, "start": "2026-01-01"}


def post(client: FlaskClient, spec: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    response = client.post("/api/jobs", json=spec) if spec is not None else client.post("/api/jobs")
    body: dict[str, Any] = response.get_json()
    return response.status_code, body


def queued_count(connection: Redis) -> int:
    return len(jobs.queue(connection, "default"))


def test_only_seeded_specs_are_reproducible() -> None:
    assert ChartSpec(seed=0).is_reproducible()
    assert not ChartSpec().is_reproducible()
    assert not ChartSpec(title="x", start=dt.date(2026, 1, 1)).is_reproducible()


def test_a_seeded_spec_without_start_is_pinned_to_today_and_others_are_left_alone() -> None:
    today = dt.date(2026, 3, 4)
    assert ChartSpec(seed=1).pinned(today).start == today
    assert ChartSpec(seed=1, start=dt.date(2020, 1, 1)).pinned(today).start == dt.date(2020, 1, 1)
    assert ChartSpec().pinned(today).start is None


def test_every_field_of_the_spec_takes_part_in_the_digest() -> None:
    base = ChartSpec(seed=1, start=dt.date(2026, 1, 1))
    digests = {
        dedupe.spec_digest(spec)
        for spec in (
            base,
            base.model_copy(update={"title": "t"}),
            base.model_copy(update={"seed": 2}),
            base.model_copy(update={"format": "svg"}),
            base.model_copy(update={"width": 801}),
            base.model_copy(update={"dpi": 101}),
            base.model_copy(update={"start": dt.date(2026, 1, 2)}),
        )
    }
    assert len(digests) == 7
    assert dedupe.spec_digest(ChartSpec(seed=1, start=dt.date(2026, 1, 1))) == dedupe.spec_digest(base)


def test_identical_seeded_specs_in_flight_share_one_job(client: FlaskClient, redis_connection: Redis) -> None:
    first_status, first = post(client, SEEDED)
    second_status, second = post(client, dict(SEEDED))
    assert (first_status, second_status) == (202, 202)
    assert second["id"] == first["id"]
    assert (first["reused"], second["reused"]) == (False, True)
    assert "file_url" not in second
    assert queued_count(redis_connection) == 1


def test_concurrent_identical_submissions_enqueue_one_render(settings: Settings, redis_connection: Redis) -> None:
    spec = ChartSpec.model_validate(SEEDED)
    with ThreadPoolExecutor(16) as pool:
        submissions = list(pool.map(lambda _: dedupe.submit(redis_connection, settings, spec), range(32)))
    assert len({submission.job_id for submission in submissions}) == 1
    assert sum(not submission.reused for submission in submissions) == 1
    assert queued_count(redis_connection) == 1


def test_a_finished_render_answers_again_without_any_worker(
    client: FlaskClient, redis_url: str, redis_connection: Redis
) -> None:
    _, first = post(client, SEEDED)
    with running_worker(redis_url, redis_connection):
        wait_for(lambda: client.get(first["status_url"]).get_json()["state"] == "finished", what="the render")
    rendered = client.get(first["result_url"])

    # No worker runs now: the answer can only come from the stored result.
    status, again = post(client, SEEDED)
    assert status == 200
    assert again["id"] == first["id"] and again["reused"] is True
    assert queued_count(redis_connection) == 0
    served = client.get(again["result_url"])
    assert served.status_code == 200 and served.data == rendered.data
    assert served.headers["ETag"] == rendered.headers["ETag"]
    assert "immutable" in served.headers["Cache-Control"]
    assert client.get(again["result_url"], headers={"If-None-Match": served.headers["ETag"]}).status_code == 304
    # The content-addressed URL serves the same bytes without looking at any job.
    digest = served.headers["ETag"].strip('"')
    assert again["file_url"] == f"/api/results/{digest}.png"
    by_content = client.get(again["file_url"])
    assert by_content.status_code == 200 and by_content.data == rendered.data
    assert by_content.mimetype == "image/png" and "immutable" in by_content.headers["Cache-Control"]


@pytest.mark.parametrize("name", ["0" * 64 + ".png", "0" * 64 + ".exe", "abc.png", "G" * 64 + ".png", "x"])
def test_an_unknown_or_malformed_content_address_is_404_json(client: FlaskClient, name: str) -> None:
    response = client.get(f"/api/results/{name}")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_the_random_default_chart_is_never_shared(client: FlaskClient, redis_connection: Redis) -> None:
    ids = {post(client, None)[1]["id"], post(client, None)[1]["id"], post(client, {"title": "random"})[1]["id"]}
    ids.add(post(client, {"title": "random"})[1]["id"])
    assert len(ids) == 4
    assert queued_count(redis_connection) == 4


def test_different_seeded_specs_get_different_jobs(client: FlaskClient, redis_connection: Redis) -> None:
    ids = {post(client, dict(SEEDED, seed=seed))[1]["id"] for seed in (1, 2, 3)}
    assert len(ids) == 3


def test_a_canceled_render_is_not_reused(client: FlaskClient, redis_connection: Redis) -> None:
    _, first = post(client, SEEDED)
    job = jobs.fetch(redis_connection, first["id"])
    job.cancel()
    status, second = post(client, SEEDED)
    assert status == 202 and second["reused"] is False
    assert second["id"] != first["id"]
    assert post(client, SEEDED)[1]["id"] == second["id"]


def test_a_finished_job_whose_file_expired_is_rendered_again(
    client: FlaskClient, redis_url: str, redis_connection: Redis
) -> None:
    _, first = post(client, SEEDED)
    with running_worker(redis_url, redis_connection):
        wait_for(lambda: client.get(first["status_url"]).get_json()["state"] == "finished", what="the render")
    redis_connection.delete(*redis_connection.keys("plotjobs:result:*"))
    status, second = post(client, SEEDED)
    assert status == 202 and second["id"] != first["id"] and second["reused"] is False


def test_every_key_dedupe_creates_expires(client: FlaskClient, redis_connection: Redis) -> None:
    post(client, SEEDED)
    generations = redis_connection.keys(keys.SPEC_PREFIX + "*")
    assert len(generations) == 1
    assert 0 < redis_connection.ttl(generations[0]) <= 86400


# --- the rules on fakeredis: ids, generations, pinning ----------------------------------------

DAY = dt.date(2026, 3, 4)
UNSTARTED = {"title": "no start given", "seed": 11}


def on(day: dt.date) -> Callable[[], dt.date]:
    """A calendar that always says ``day``."""
    return lambda: day


@pytest.fixture
def fake_settings() -> Settings:
    """Settings whose failed jobs outlive finished ones, as by default."""
    return Settings(redis_url="redis://fake", secret_key="test-secret", result_ttl=5000, failure_ttl=7000)


def seeded() -> ChartSpec:
    return ChartSpec.model_validate(SEEDED)


def derived(spec: ChartSpec, generation: int) -> str:
    return dedupe.job_id_for(dedupe.spec_digest(spec), generation)


def generation_key(spec: ChartSpec) -> str:
    return keys.spec(dedupe.spec_digest(spec))


def queued_on(connection: Redis, name: str) -> list[str]:
    return list(jobs.queue(connection, name).job_ids)


def test_the_digest_is_the_sha256_of_the_generator_name_and_the_spec_json() -> None:
    spec = seeded()
    expected = hashlib.sha256(f"chart:{spec.model_dump_json()}".encode()).hexdigest()
    assert dedupe.spec_digest(spec) == expected


def test_a_job_id_is_a_uuid4_from_the_digest_and_the_generation() -> None:
    digest = "ab" * 32
    for generation in (0, 1, 7):
        hashed = hashlib.sha256(f"{digest}:{generation}".encode()).hexdigest()
        assert dedupe.job_id_for(digest, generation) == str(uuid.UUID(hex=hashed[:32], version=4))
        assert jobs.is_job_id(dedupe.job_id_for(digest, generation))
    assert len({dedupe.job_id_for(digest, generation) for generation in range(5)}) == 5


def test_a_seeded_spec_without_start_is_hashed_and_queued_as_pinned_to_its_day(
    fake_redis: Redis, fake_settings: Settings
) -> None:
    spec = ChartSpec.model_validate(UNSTARTED)
    submission = dedupe.submit(fake_redis, fake_settings, spec, today=on(DAY))
    pinned = ChartSpec.model_validate(dict(UNSTARTED, start=DAY.isoformat()))
    assert submission == dedupe.Submission(derived(pinned, 0), reused=False)
    assert jobs.submitted_spec(jobs.fetch(fake_redis, submission.job_id))["start"] == "2026-03-04"
    # The same request on the next day is another chart; the spec naming the first day is the first one.
    next_day = dedupe.submit(fake_redis, fake_settings, spec, today=on(DAY + dt.timedelta(days=1)))
    assert next_day.job_id != submission.job_id and next_day.reused is False
    named = dedupe.submit(fake_redis, fake_settings, pinned, today=on(DAY + dt.timedelta(days=1)))
    assert named == dedupe.Submission(submission.job_id, reused=True)


def test_a_spec_without_a_start_is_pinned_to_the_utc_day_by_default(fake_redis: Redis, fake_settings: Settings) -> None:
    before = dedupe.utc_today()
    submission = dedupe.submit(fake_redis, fake_settings, ChartSpec.model_validate(UNSTARTED))
    start = jobs.submitted_spec(jobs.fetch(fake_redis, submission.job_id))["start"]
    assert start in {before.isoformat(), dedupe.utc_today().isoformat()}


@pytest.fixture(params=["<+14>-14", "<-12>+12"])
def far_time_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone set 14 hours ahead or 12 behind UTC: one of them is on another day."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_time_zone")
def test_the_day_is_the_utc_day_whatever_the_local_time_zone() -> None:
    before = dt.datetime.now(dt.UTC).date()
    assert dedupe.utc_today() in {before, dt.datetime.now(dt.UTC).date()}


def test_a_spec_that_is_not_reproducible_gets_the_given_id_on_the_given_queue(
    fake_redis: Redis, fake_settings: Settings
) -> None:
    given = jobs.new_job_id()
    submission = dedupe.submit(fake_redis, fake_settings, ChartSpec(title="random"), "low", job_id=given)
    assert submission == dedupe.Submission(given, reused=False, result=None)
    assert queued_on(fake_redis, "low") == [given]
    assert fake_redis.keys(keys.SPEC_PREFIX + "*") == []


def test_a_spec_that_is_not_reproducible_without_an_id_gets_a_random_one(
    fake_redis: Redis, fake_settings: Settings
) -> None:
    first = dedupe.submit(fake_redis, fake_settings, ChartSpec(title="random"))
    second = dedupe.submit(fake_redis, fake_settings, ChartSpec(title="random"))
    assert jobs.is_job_id(first.job_id) and first.job_id != second.job_id
    assert queued_on(fake_redis, "default") == [first.job_id, second.job_id]


@pytest.mark.parametrize(("result_ttl", "failure_ttl"), [(5000, 7000), (9000, 7000)])
def test_a_reproducible_spec_gets_its_derived_id_and_a_generation_that_outlives_its_jobs(
    fake_redis: Redis, result_ttl: int, failure_ttl: int
) -> None:
    settings = Settings(redis_url="redis://fake", secret_key="s", result_ttl=result_ttl, failure_ttl=failure_ttl)
    spec = seeded()
    submission = dedupe.submit(fake_redis, settings, spec, "low", job_id=jobs.new_job_id())
    assert submission == dedupe.Submission(derived(spec, 0), reused=False)
    assert queued_on(fake_redis, "low") == [derived(spec, 0)]
    assert fake_redis.get(generation_key(spec)) == b"0"
    assert fake_redis.ttl(generation_key(spec)) == max(result_ttl, failure_ttl)


def test_an_identical_spec_in_flight_shares_its_job(fake_redis: Redis, fake_settings: Settings) -> None:
    first = dedupe.submit(fake_redis, fake_settings, seeded())
    again = dedupe.submit(fake_redis, fake_settings, seeded(), job_id=jobs.new_job_id())
    assert again == dedupe.Submission(first.job_id, reused=True, result=None)
    assert again.finished is False
    assert queued_on(fake_redis, "default") == [first.job_id]


def test_an_identical_spec_whose_render_is_stored_gets_its_file(fake_redis: Redis, fake_settings: Settings) -> None:
    first = dedupe.submit(fake_redis, fake_settings, seeded())
    build_worker(fake_redis, fake_settings).work(burst=True)
    stored = jobs.stored_result(fake_redis, jobs.fetch(fake_redis, first.job_id))
    assert stored is not None
    again = dedupe.submit(fake_redis, fake_settings, seeded())
    assert again == dedupe.Submission(first.job_id, reused=True, result=stored)
    assert again.finished is True
    assert queued_on(fake_redis, "default") == []
    # Once the file is gone the next generation renders it again.
    fake_redis.delete(stored["key"])
    spec = seeded()
    renewed = dedupe.submit(fake_redis, fake_settings, spec)
    assert renewed == dedupe.Submission(derived(spec, 1), reused=False)
    assert fake_redis.get(generation_key(spec)) == b"1"
    assert fake_redis.ttl(generation_key(spec)) == 7000


def test_a_canceled_job_moves_the_spec_to_its_next_generation(fake_redis: Redis, fake_settings: Settings) -> None:
    spec = seeded()
    first = dedupe.submit(fake_redis, fake_settings, spec)
    jobs.cancel(fake_redis, jobs.fetch(fake_redis, first.job_id))
    second = dedupe.submit(fake_redis, fake_settings, spec)
    assert second == dedupe.Submission(derived(spec, 1), reused=False)
    assert fake_redis.get(generation_key(spec)) == b"1"
    assert dedupe.submit(fake_redis, fake_settings, spec) == dedupe.Submission(derived(spec, 1), reused=True)


@pytest.mark.parametrize(("stored", "generation"), [(b"3", 3), (b"12", 12), (b"junk", 0), (b"-1", 0), (b"", 0)])
def test_the_generation_counter_is_read_as_a_whole_number_or_zero(
    fake_redis: Redis, fake_settings: Settings, stored: bytes, generation: int
) -> None:
    spec = seeded()
    fake_redis.set(generation_key(spec), stored)
    assert dedupe.submit(fake_redis, fake_settings, spec).job_id == derived(spec, generation)
    assert fake_redis.get(generation_key(spec)) == str(generation).encode()


def cancel_generations(connection: Redis, settings: Settings, spec: ChartSpec, count: int) -> None:
    """Generations 0 to count - 1 of ``spec``, each a canceled job."""
    for generation in range(count):
        assert jobs.enqueue_render_once(connection, settings, spec, derived(spec, generation))
        jobs.cancel(connection, jobs.fetch(connection, derived(spec, generation)))


def test_four_failed_generations_are_stepped_over(fake_redis: Redis, fake_settings: Settings) -> None:
    spec = seeded()
    cancel_generations(fake_redis, fake_settings, spec, 4)
    submission = dedupe.submit(fake_redis, fake_settings, spec, job_id=jobs.new_job_id())
    assert submission == dedupe.Submission(derived(spec, 4), reused=False)
    assert fake_redis.get(generation_key(spec)) == b"4"


def test_after_five_failed_generations_the_spec_renders_without_sharing(
    fake_redis: Redis, fake_settings: Settings
) -> None:
    spec = seeded()
    cancel_generations(fake_redis, fake_settings, spec, 5)
    given = jobs.new_job_id()
    assert dedupe.submit(fake_redis, fake_settings, spec, "high", job_id=given) == dedupe.Submission(given, False)
    assert queued_on(fake_redis, "high") == [given]
    assert fake_redis.get(generation_key(spec)) == b"5"


def test_a_job_enqueued_by_another_request_meanwhile_is_shared(
    fake_redis: Redis, fake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue_render_once = jobs.enqueue_render_once

    def another_request_was_faster(*args: Any, **kwargs: Any) -> bool:
        assert enqueue_render_once(*args, **kwargs)
        return False

    monkeypatch.setattr(jobs, "enqueue_render_once", another_request_was_faster)
    spec = seeded()
    assert dedupe.submit(fake_redis, fake_settings, spec) == dedupe.Submission(derived(spec, 0), reused=True)
    assert queued_on(fake_redis, "default") == [derived(spec, 0)]


@pytest.mark.parametrize(("stored", "seen", "after"), [(None, 0, b"1"), (b"4", 4, b"5"), (b"5", 4, b"5")])
def test_advance_moves_on_only_from_the_generation_it_saw(
    fake_redis: Redis, stored: bytes | None, seen: int, after: bytes
) -> None:
    key = keys.spec("d" * 64)
    if stored is not None:
        fake_redis.set(key, stored)
    dedupe._advance(fake_redis, key, seen, 600)
    assert fake_redis.get(key) == after
    assert fake_redis.ttl(key) == (600 if after != stored else -1)


def test_the_state_judged_is_the_one_read_with_the_job(
    fake_redis: Redis, fake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = dedupe.submit(fake_redis, fake_settings, seeded())
    fetch = jobs.fetch

    def fetch_then_expire(connection: Redis, job_id: str) -> Any:
        job = fetch(connection, job_id)
        connection.delete(job.key)  # the job expires just after it was read: no second read may fail on it
        return job

    monkeypatch.setattr(jobs, "fetch", fetch_then_expire)
    assert dedupe.submit(fake_redis, fake_settings, seeded()) == dedupe.Submission(first.job_id, reused=True)


def test_lookup_finds_what_submit_would_share_and_changes_nothing(fake_redis: Redis) -> None:
    settings = Settings(redis_url="redis://fake")
    spec = ChartSpec.model_validate(SEEDED)
    assert dedupe.lookup(fake_redis, ChartSpec()) is None  # not reproducible: never shared
    assert dedupe.lookup(fake_redis, spec) is None
    assert fake_redis.dbsize() == 0  # a lookup writes nothing
    submitted = dedupe.submit(fake_redis, settings, spec)
    queued = dedupe.lookup(fake_redis, spec)
    assert queued == dedupe.Found(submitted.job_id, "queued")
    build_worker(fake_redis, settings).work(burst=True)
    finished = dedupe.lookup(fake_redis, spec)
    assert finished is not None and (finished.job_id, finished.state) == (submitted.job_id, "finished")
    assert finished.result is not None and fake_redis.exists(finished.result["key"])
    fake_redis.delete(finished.result["key"])
    assert dedupe.lookup(fake_redis, spec) is None  # the file expired: submit would render again


def test_lookup_pins_a_seed_without_start_to_today(fake_redis: Redis) -> None:
    settings = Settings(redis_url="redis://fake")
    today = dt.date(2026, 3, 4)
    submitted = dedupe.submit(fake_redis, settings, ChartSpec(seed=2), today=lambda: today)
    assert dedupe.lookup(fake_redis, ChartSpec(seed=2), today=lambda: today) == dedupe.Found(submitted.job_id, "queued")
    assert dedupe.lookup(fake_redis, ChartSpec(seed=2), today=lambda: dt.date(2026, 3, 5)) is None


def test_lookup_finds_a_failed_render_with_its_end_and_not_a_canceled_one(fake_redis: Redis) -> None:
    spec = ChartSpec.model_validate(SEEDED)
    submitted = dedupe.submit(fake_redis, Settings(redis_url="redis://fake"), spec)
    job = jobs.fetch(fake_redis, submitted.job_id)
    ended = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    job.ended_at = ended
    job.set_status(JobStatus.FAILED)
    job.save()
    assert dedupe.lookup(fake_redis, spec) == dedupe.Found(submitted.job_id, "failed", ended_at=ended)
    job.set_status(JobStatus.CANCELED)
    assert dedupe.lookup(fake_redis, spec) is None
