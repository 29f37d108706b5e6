"""Fuzzing the API with hypothesis: whatever arrives, the answer is deliberate JSON, never a 500."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.queue.status import describe
from plotjobs.web import create_app
from plotjobs.worker.render_worker import build_worker

FIELDS = ["kind", "title", "seed", "start", "format", "width", "height", "dpi"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=300), st.sampled_from(["line", "png", "svg", "pdf", "2026-01-31", "1999-02-30"]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
SPECS = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), VALUES, max_size=6)
SMALL_VALID = st.fixed_dictionaries(
    {},
    optional={
        "title": st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=200),
        "seed": st.integers(0, 2**32 - 1), "format": st.sampled_from(["png", "svg", "pdf"]),
        "width": st.integers(100, 600), "height": st.integers(100, 600), "dpi": st.integers(50, 120),
        "start": st.dates(dt.date(1000, 1, 1), dt.date(8999, 12, 20)).map(str),
    },
)  # fmt: skip


def _app() -> Any:
    app = create_app(Settings(redis_url="redis://fake", secret_key="k", max_jobs_per_client=1000),
                     redis=fakeredis.FakeRedis())  # fmt: skip
    app.testing = True
    return app


def _deliberate(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json
    if response.status_code >= 400:
        assert {"error", "message"} <= set(response.get_json())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=SPECS)
def test_any_json_spec_is_accepted_or_refused_as_json(spec: dict[str, Any]) -> None:
    _deliberate(_app().test_client().post("/api/jobs", json=spec))


@settings(max_examples=50, deadline=None)
@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1"]),
)
def test_any_body_is_answered_deliberately(body: bytes, content_type: str) -> None:
    _deliberate(_app().test_client().post("/api/jobs", data=body, content_type=content_type))


@settings(max_examples=50, deadline=None)
@given(job_id=st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%"), min_size=1,
                      max_size=80))  # fmt: skip
def test_any_job_id_is_answered_deliberately(job_id: str) -> None:
    client = _app().test_client()
    for method in (client.get, client.delete):
        response = method(f"/api/jobs/{job_id}")
        _deliberate(response)
        assert response.status_code in {404, 405}


# A character the font lacks is drawn as a box, with a warning that is not a failure of the job.
@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(SMALL_VALID, min_size=1, max_size=4))
def test_accepted_specs_render_without_crashing_the_worker(specs: list[dict[str, Any]]) -> None:
    app = _app()
    client = app.test_client()
    ids = [client.post("/api/jobs", json=spec).get_json()["id"] for spec in specs]
    connection = app.extensions["plotjobs"]["redis"]
    build_worker(connection, Settings(redis_url="redis://fake")).work(burst=True)
    for job_id in ids:
        status = describe(jobs.fetch(connection, job_id))
        assert status["state"] == "finished", (status, json.dumps(specs))
