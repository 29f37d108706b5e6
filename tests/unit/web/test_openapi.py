"""Fuzzing the API against its own OpenAPI document: no 5xx, errors are JSON, answers match their schemas."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, Response

from plotjobs.config import Settings
from plotjobs.web import create_app

# Enough per operation to reach every documented answer, few enough to keep the suite fast.
EXAMPLES_PER_OPERATION = 25

# A schema-valid request may still break a rule JSON Schema cannot say, and the document declares
# the answers: 422 for a spec or CSV that breaks a rule (a CSV without a header row, series of
# unequal length), 400 for a form's spec that is not JSON (contentMediaType is only an annotation).
# A chart URL's 503 is its "still rendering" image, by design (no worker runs here).
# DELETE /api/jobs/<id> cancels: the job stays readable, with state canceled or stopped (the API's
# contract), so the check that a deleted resource answers 404 does not apply.
CONFIG = """
[checks.use_after_free]
enabled = false

[[operations]]
include-operation-id = "submitJob"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "422", "429"]

[[operations]]
include-operation-id = "storeChart"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "422"]

[[operations]]
include-operation-id = "chartImage"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "414", "422", "503"]
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

[[operations]]
include-operation-id = "storedChartImage"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "503"]
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
"""


def fuzzed_app() -> Flask:
    """The web app on fakeredis, with limits so high that 429s do not crowd out the other answers."""
    # A chart URL answers "still rendering" at once: no worker runs here, and waiting would only slow the run.
    app_settings = Settings(
        redis_url="redis://fake",
        secret_key="test-secret",
        max_jobs_per_client=100_000,
        max_queue_depth=100_000,
        chart_url_max_renders=100_000,
        chart_url_stores_per_hour=100_000,
        embed_wait_seconds=0,
    )
    app = create_app(app_settings, redis=fakeredis.FakeRedis())
    app.testing = True
    return app


# Loaded at collection so each documented operation is its own test; the app's Redis is in memory.
# (schemathesis.pytest.from_fixture would load it per test, but sets Node._nodeid, which pytest 9.2 dropped.)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzzed_app(), config=schemathesis.Config.from_str(CONFIG))


def is_still_rendering(response: Any) -> bool:
    """A chart URL's 503 with its "still rendering" image: no worker runs here, so every new chart gets it."""
    content_type = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
    if isinstance(content_type, list):
        content_type = content_type[0]
    return bool(response.status_code == 503 and content_type.startswith("image/"))


def error_is_json_with_code_and_message(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx/5xx answer is a JSON object with ``error`` and ``message`` strings.

    Except the one answer that is an image by design: a chart URL's 503 "still rendering".
    """
    if response.status_code < 400:
        return None
    if response.status_code == 503 and response.headers.get("content-type", [""])[0].startswith("image/"):
        assert response.headers.get("cache-control") == ["no-store"], response.headers
        return True
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
    body = json.loads(response.content)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    return True


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_documented_operation_answers_as_documented(case: Case) -> None:
    response = case.call_and_validate(additional_checks=[error_is_json_with_code_and_message])
    # The app runs on fakeredis, so the 503 of an unreachable Redis would be a fault here too;
    # only a chart URL's "still rendering" image is a 503 by design.
    assert response.status_code < 500 or is_still_rendering(response)


def test_chained_operations_answer_as_documented() -> None:
    """Jobs a submission made are read, cancelled and fetched through the links schemathesis infers."""
    app = fuzzed_app()
    # A queued job's event stream lasts until the job ends, and no worker runs here.
    chained = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=schemathesis.Config.from_str(CONFIG))
    answered: set[tuple[str, str, int]] = set()

    # The chart URLs stay out: their links (storeChart -> storedChartImage) would thin the chains
    # over the jobs' operations, which this test is about; tests/unit/web/test_embed.py covers them.
    leaving_out = ["jobEvents", "storeChart", "chartImage", "storedChartImage"]

    class Workflow(chained.exclude(operation_id=leaving_out).as_state_machine()):  # type: ignore[misc]
        def validate_response(self, response: Any, case: Case, additional_checks: Any = None, **kwargs: Any) -> None:
            answered.add((case.method, case.path, response.status_code))
            super().validate_response(response, case, additional_checks=[error_is_json_with_code_and_message], **kwargs)
            assert response.status_code < 500 or is_still_rendering(response)

    Workflow.run(
        settings=settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            stateful_step_count=6,
            suppress_health_check=list(HealthCheck),
        )
    )
    # The chains reached real jobs, not only the 404 of a random id.
    assert {("GET", "/api/jobs/{job_id}", 200), ("DELETE", "/api/jobs/{job_id}", 200)} <= answered
