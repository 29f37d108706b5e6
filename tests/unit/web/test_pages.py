"""The API the pages lean on: worker count, a job's spec, results as downloads."""

from __future__ import annotations

import json
import re
from html import unescape

from flask.testing import FlaskClient
from redis import Redis

from plotjobs.config import Settings
from plotjobs.worker.render_worker import build_worker


def test_workers_counts_registered_live_workers(fake_client: FlaskClient, fake_redis: Redis) -> None:
    assert fake_client.get("/api/workers").get_json() == {"alive": 0}
    worker = build_worker(fake_redis, Settings(redis_url="redis://fake"), name="counted")
    worker.register_birth()
    try:
        assert fake_client.get("/api/workers").get_json() == {"alive": 1}
    finally:
        worker.register_death()
    assert fake_client.get("/api/workers").get_json() == {"alive": 0}


def test_spec_returns_what_was_submitted(fake_client: FlaskClient) -> None:
    job = fake_client.post("/api/jobs", json={"title": "<i>x</i>", "seed": 3}).get_json()
    spec = fake_client.get(f"/api/jobs/{job['id']}/spec").get_json()
    assert spec["title"] == "<i>x</i>" and spec["seed"] == 3 and spec["format"] == "png"
    assert fake_client.get("/api/jobs/00000000-0000-4000-8000-000000000000/spec").status_code == 404


def test_download_asks_for_an_attachment(fake_client: FlaskClient, fake_redis: Redis) -> None:
    job = fake_client.post("/api/jobs", json={"format": "svg", "seed": 1}).get_json()
    build_worker(fake_redis, Settings(redis_url="redis://fake")).work(burst=True)
    inline = fake_client.get(job["result_url"])
    download = fake_client.get(job["result_url"] + "?download=1")
    assert inline.headers["Content-Disposition"] == f'inline; filename="chart-{job["id"]}.svg"'
    assert download.headers["Content-Disposition"] == f'attachment; filename="chart-{job["id"]}.svg"'
    assert download.data == inline.data and download.headers["Content-Type"].startswith("image/svg+xml")


def test_the_job_page_names_a_job_by_its_generators_title(fake_client: FlaskClient) -> None:
    html = fake_client.get("/jobs/00000000-0000-4000-8000-000000000000").get_data(as_text=True)
    titles = re.search(r"data-generator-titles='([^']*)'", html)
    assert titles and json.loads(unescape(titles[1])) == {
        "chart": "Chart",
        "vega-lite": "Vega-Lite",
        "report": "Report",
    }
