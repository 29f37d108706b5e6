"""The vega-lite and report generators through the job layer: enqueued, rendered by a real worker, served."""

from __future__ import annotations

import io
from typing import Any
from xml.etree import ElementTree

import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader
from redis import Redis

from plotjobs.queue import jobs
from tests.support.processes import running_worker
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TERMINAL = {"finished", "failed", "canceled", "stopped"}
BARS = {
    "data": {"values": [{"a": "A", "b": 3}, {"a": "B", "b": 5}]},
    "mark": "bar",
    "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}},
}


def run_jobs(client: FlaskClient, redis_url: str, connection: Redis, *work: tuple[str, dict[str, Any]]) -> list[Any]:
    """Enqueue each (generator, spec) as the task, run one worker until all have ended; their statuses."""
    queue = jobs.queue(connection, "default")
    enqueued = [queue.enqueue("plotjobs.queue.tasks.generate", name, spec) for name, spec in work]

    def all_ended() -> list[Any] | None:
        statuses = [client.get(f"/api/jobs/{job.id}").get_json() for job in enqueued]
        return statuses if all(status["state"] in TERMINAL for status in statuses) else None

    with running_worker(redis_url, connection):
        return wait_for(all_ended, timeout=60, what="the jobs to end")


@pytest.mark.timeout(120)
def test_a_worker_renders_vega_lite_and_reports_and_refuses_a_url(
    client: FlaskClient, redis_url: str, redis_connection: Redis
) -> None:
    report = {
        "title": "Two parts",
        "parts": [{"text": "Hello"}, {"generator": "vega-lite", "spec": {"vega_lite": BARS}}],
    }
    fetching = {"vega_lite": {**BARS, "data": {"url": "https://example.com/data.csv"}}}
    svg, pdf, refused = run_jobs(
        client,
        redis_url,
        redis_connection,
        ("vega-lite", {"vega_lite": BARS, "format": "svg"}),
        ("report", report),
        ("vega-lite", fetching),
    )
    assert svg["state"] == pdf["state"] == "finished", (svg, pdf)
    drawing = client.get(f"/api/jobs/{svg['id']}/result")
    assert drawing.mimetype == "image/svg+xml"
    assert ElementTree.fromstring(drawing.data).tag.endswith("svg")
    document = client.get(f"/api/jobs/{pdf['id']}/result")
    assert document.mimetype == "application/pdf"
    assert "Two parts" in PdfReader(io.BytesIO(document.data)).pages[0].extract_text()
    assert refused["state"] == "failed"
    assert "vega_lite.data.url" in refused["error"]
