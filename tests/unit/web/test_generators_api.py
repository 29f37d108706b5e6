"""The API's generator choice: listed with schemas and formats, named in submissions, refused naming the field."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from plotjobs.config import ConfigError, Settings
from plotjobs.queue import jobs
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app


def test_generators_lists_each_served_one_with_what_a_page_needs(fake_client: FlaskClient) -> None:
    answer = fake_client.get("/api/generators")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["default"] == "chart"
    assert [item["name"] for item in body["generators"]] == ["chart", "vega-lite", "report"]
    chart, vega_lite, _ = body["generators"]
    assert vega_lite["isolated"] is True and vega_lite["formats"]["svg"] == "image/svg+xml"
    assert chart["name"] == "chart" and chart["title"] == "Chart" and chart["isolated"] is False
    assert chart["formats"] == {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}
    assert chart["schema"] == ChartSpec.model_json_schema()


def test_a_submission_may_name_the_chart_and_its_job_remembers_it(fake_client: FlaskClient, fake_redis: Redis) -> None:
    answer = fake_client.post("/api/jobs", json={"generator": "chart", "title": "named"})
    assert answer.status_code == 202, answer.get_json()
    job = jobs.fetch(fake_redis, answer.get_json()["id"])
    assert job.args[0] == "chart" and job.origin == "default"
    # The chart's spec reads as before: no generator field, so old clients resubmit it unchanged.
    assert "generator" not in fake_client.get(f"/api/jobs/{job.id}/spec").get_json()


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"generator": "sparkline"}, "no generator 'sparkline' is served here (served: chart, vega-lite, report)"),
        ({"generator": None}, "generator must be a generator's name, got None"),
        ({"generator": ["chart"]}, "generator must be a generator's name"),
        ({"generator": ""}, "no generator '' is served here"),
    ],
)
def test_an_unknown_generator_is_refused_naming_the_field(
    fake_client: FlaskClient, document: dict[str, object], words: str
) -> None:
    answer = fake_client.post("/api/jobs", json=document)
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["error"] == "unknown_generator" and body["field"] == "generator" and words in body["message"]


def test_a_form_names_the_generator_in_a_part_of_its_own(fake_client: FlaskClient) -> None:
    refused = fake_client.post(
        "/api/jobs", data={"spec": '{"title": "x"}', "generator": "sparkline"}, content_type="multipart/form-data"
    )
    assert refused.status_code == 422 and refused.get_json()["field"] == "generator"
    accepted = fake_client.post(
        "/api/jobs", data={"spec": '{"title": "x"}', "generator": "chart"}, content_type="multipart/form-data"
    )
    assert accepted.status_code == 202, accepted.get_json()


def test_chart_urls_refuse_a_generator_not_served_naming_the_field(fake_client: FlaskClient) -> None:
    answer = fake_client.post("/api/charts", json={"generator": "sparkline", "seed": 1})
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["field"] == "generator" and "served: chart, vega-lite, report" in body["message"]


def test_the_app_will_not_start_with_a_generator_that_is_not_installed(fake_redis: Redis) -> None:
    with pytest.raises(ConfigError, match="GENERATORS names 'sparkline', which is not installed"):
        create_app(Settings(redis_url="redis://fake", generators=("chart", "sparkline")), redis=fake_redis)


def test_the_openapi_document_offers_the_served_generators(fake_app: Flask) -> None:
    document = fake_app.test_client().get("/api/openapi.json").get_json()
    assert "/api/generators" in document["paths"]
    assert document["components"]["schemas"]["Generators"]["properties"]["generators"]["type"] == "array"
    form = document["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["generator"]["enum"] == ["chart", "vega-lite", "report"]
