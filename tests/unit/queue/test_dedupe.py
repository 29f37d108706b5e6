"""No work twice: identical reproducible specs share one job, against a real Redis and worker."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.queue import dedupe, jobs
from plotjobs.spec.chart import ChartSpec
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
