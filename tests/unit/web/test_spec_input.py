"""Specs at the HTTP edge: JSON and CSV uploads accepted or refused naming the field, the OpenAPI document."""

from __future__ import annotations

import io
import json
import re
from typing import Any
from xml.etree import ElementTree

import matplotlib.image
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_openapi
from redis import Redis
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from plotjobs import generators
from plotjobs.config import Settings
from plotjobs.queue import jobs
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app, openapi
from tests.unit.render.test_chart import MATH_BOMB
from tests.unit.web.test_api import run_queued_jobs

SALES_CSV = b"day,north,south\n2024-01-01,3,4\n2024-01-02,5,1.5\n2024-01-03,2,2\n"


def post_form(client: FlaskClient, spec: dict[str, Any] | str | None, csv: bytes | None) -> TestResponse:
    data: dict[str, Any] = {}
    if spec is not None:
        data["spec"] = spec if isinstance(spec, str) else json.dumps(spec)
    if csv is not None:
        data["csv"] = FileStorage(io.BytesIO(csv), filename="data.csv", content_type="text/csv")
    # Encoded in memory: the test client spools large bodies to a temporary file it never closes.
    boundary, body = encode_multipart(data)
    return client.post("/api/jobs", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def assert_refused(response: TestResponse, status: int, field: str, fake_redis: Redis) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["field"] == field, body
    assert body["message"], body
    if status == 422:
        assert body["error"] == "invalid_spec"
        assert body["message"].startswith(field + ":"), body
        assert body["details"][0]["field"] == field
    assert not list(fake_redis.scan_iter("rq:*")), "a refused spec reached the queue"


BAD_JSON_SPECS = [
    ({"width": "800"}, "width"),
    ({"height": 99}, "height"),
    ({"width": 4001}, "width"),
    ({"dpi": 301}, "dpi"),
    ({"kind": "radar"}, "kind"),
    ({"format": "gif"}, "format"),
    ({"title": 7}, "title"),
    ({"title": MATH_BOMB * 3}, "title"),
    ({"series": []}, "series"),
    ({"series": [{"y": []}]}, "series.0.y"),
    ({"series": "1,2,3"}, "series"),
    ({"series": [{"x": [1, 2, 3], "y": [1, 2]}]}, "series.0.x"),
    ({"series": [{"x": ["2024-01-01", "2024-13-01"], "y": [1, 2]}]}, "series.0.x.1"),
    ({"series": [{"x": ["soon"], "y": [1]}], "x_type": "date"}, "series.0.x.0"),
    ({"kind": "histogram", "series": [{"values": [1] * 20_001}]}, "series"),
    ({"series": [{"y": [1]}] * 21}, "series"),
    ({"series": [{"name": "n" * 101, "y": [1]}]}, "series.0.name"),
    ({"series": [{"y": [1], "y_column": "north"}]}, "series.0.y_column"),
    ({"kind": "histogram", "series": [{"values": [1]}], "bins": 1000}, "bins"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("spec", "field"), BAD_JSON_SPECS)
def test_bad_json_specs_are_422_naming_the_field(
    fake_client: FlaskClient, fake_redis: Redis, spec: dict[str, Any], field: str
) -> None:
    assert_refused(fake_client.post("/api/jobs", json=spec), 422, field, fake_redis)


def test_non_finite_numbers_are_refused(fake_client: FlaskClient, fake_redis: Redis) -> None:
    body = '{"series": [{"y": [1, NaN, 2]}]}'
    response = fake_client.post("/api/jobs", data=body, content_type="application/json")
    assert_refused(response, 422, "series.0.y.1", fake_redis)


BAD_CSV_UPLOADS = [
    (b"", {"series": [{"y_column": "a"}]}, "csv"),
    (b"a,b\n", {"series": [{"y_column": "a"}]}, "csv"),
    (b"a,b\n1,2,3\n", {"series": [{"y_column": "a"}]}, "csv"),
    (b"a,a\n1,2\n", {"series": [{"y_column": "a"}]}, "csv"),
    (b"a,\n1,2\n", {"series": [{"y_column": "a"}]}, "csv"),
    (b'a,b\n"1,2\n', {"series": [{"y_column": "a"}]}, "csv"),
    (b"a" * 101 + b"\n1\n", {"series": [{"y_column": "a"}]}, "csv"),
    (b"a\n\xff\xfe\n", {"series": [{"y_column": "a"}]}, "csv"),
    (b"a,b\n1,two\n", {"series": [{"x_column": "a", "y_column": "b"}]}, "csv"),
    (b"a,b\n1,\n", {"series": [{"x_column": "a", "y_column": "b"}]}, "csv"),
    (SALES_CSV, {"series": [{"y_column": "east"}]}, "series.0.y_column"),
    (SALES_CSV, {"series": [{"y_column": "north", "y": [1]}]}, "series.0.y_column"),
    (SALES_CSV, {"title": "no columns named"}, "spec"),
    (SALES_CSV, {"series": [{"x_column": "north", "y_column": "south"}], "x_type": "date"}, "series.0.x.0"),
    (SALES_CSV, {"series": [{"x_column": "day", "y_column": "north", "x": [1]}]}, "series.0.x_column"),
    (SALES_CSV, {"kind": "histogram", "series": [{"values_column": "day"}]}, "csv"),
    (b"day,v\n2024-01-01,1\n2024-02-31,2\n", {"series": [{"x_column": "day", "y_column": "v"}]}, "series.0.x.1"),
    (b"v\n" + b"1\n" * 20_001, {"kind": "histogram", "series": [{"values_column": "v"}]}, "series"),
]


@pytest.mark.parametrize(("csv", "spec", "field"), BAD_CSV_UPLOADS)
def test_bad_csv_uploads_are_422_naming_the_field(
    fake_client: FlaskClient, fake_redis: Redis, csv: bytes, spec: dict[str, Any], field: str
) -> None:
    assert_refused(post_form(fake_client, spec, csv), 422, field, fake_redis)


def test_a_column_without_a_csv_is_422(fake_client: FlaskClient, fake_redis: Redis) -> None:
    assert_refused(post_form(fake_client, {"series": [{"y_column": "a"}]}, None), 422, "series.0.y_column", fake_redis)


def test_unparseable_spec_part_is_400(fake_client: FlaskClient, fake_redis: Redis) -> None:
    assert_refused(post_form(fake_client, "{not json", SALES_CSV), 400, "spec", fake_redis)


def test_a_non_object_spec_part_is_422(fake_client: FlaskClient, fake_redis: Redis) -> None:
    response = post_form(fake_client, "[1]", SALES_CSV)
    assert response.status_code == 422 and response.get_json()["field"] == "spec"
    assert not list(fake_redis.scan_iter("rq:*"))


@pytest.mark.parametrize("kind", ["json", "csv", "spec field"])
def test_a_huge_request_is_413(fake_redis: Redis, kind: str) -> None:
    app = create_app(Settings(redis_url="redis://fake", max_request_bytes=10_000), redis=fake_redis)
    client = app.test_client()
    if kind == "json":
        response = client.post("/api/jobs", json={"series": [{"y": [1.5] * 5000}]})
    elif kind == "csv":
        response = post_form(client, {"series": [{"y_column": "v"}]}, b"v\n" + b"1.5\n" * 5000)
    else:
        response = post_form(client, {"series": [{"y": [1.5] * 5000}]}, None)
    assert response.status_code == 413
    assert response.is_json and response.get_json()["error"]
    assert not list(fake_redis.scan_iter("rq:*"))


def test_csv_columns_become_series_and_render(fake_client: FlaskClient, fake_redis: Redis) -> None:
    spec = {
        "kind": "bar",
        "format": "svg",
        "title": "Sales",
        "series": [{"x_column": "day", "y_column": "north"}, {"x_column": "day", "y_column": "south"}],
    }
    response = post_form(fake_client, spec, SALES_CSV)
    assert response.status_code == 202, response.get_json()
    job = jobs.fetch(fake_redis, response.get_json()["id"])
    chart = ChartSpec.model_validate(job.args[1])
    assert chart.series is not None
    assert [series.name for series in chart.series] == ["north", "south"]
    assert chart.series[0].x == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert chart.series[1].y == [4.0, 1.5, 2.0]

    run_queued_jobs(fake_redis)
    result = fake_client.get(response.get_json()["result_url"])
    assert result.status_code == 200 and result.mimetype == "image/svg+xml"
    assert ElementTree.fromstring(result.data).tag.endswith("svg")
    assert (
        'filename="chart-' in result.headers["Content-Disposition"] and ".svg" in result.headers["Content-Disposition"]
    )


def test_csv_numbers_and_histogram_values(fake_client: FlaskClient, fake_redis: Redis) -> None:
    csv = b"\xef\xbb\xbfsize,count\r\n1,10\r\n\r\n2.5,20\r\n4,5\r\n"  # a BOM, CRLF and a blank line
    scatter = post_form(fake_client, {"kind": "scatter", "series": [{"x_column": "size", "y_column": "count"}]}, csv)
    histogram = post_form(fake_client, {"kind": "histogram", "series": [{"values_column": "count"}]}, csv)
    assert scatter.status_code == 202 and histogram.status_code == 202
    scatter_spec = ChartSpec.model_validate(jobs.fetch(fake_redis, scatter.get_json()["id"]).args[1])
    assert scatter_spec.series is not None and scatter_spec.series[0].x == [1.0, 2.5, 4.0]


def test_spec_part_may_be_a_file_and_the_form_may_carry_json_alone(fake_client: FlaskClient) -> None:
    data = {"spec": (io.BytesIO(b'{"title": "from a file", "format": "pdf"}'), "spec.json", "application/json")}
    assert fake_client.post("/api/jobs", data=data, content_type="multipart/form-data").status_code == 202
    assert post_form(fake_client, {"series": [{"y": [1, 2]}]}, None).status_code == 202
    assert post_form(fake_client, None, None).status_code == 400  # a form must carry a spec or a CSV


@pytest.mark.parametrize(
    ("file_format", "content_type"), [("png", "image/png"), ("svg", "image/svg+xml"), ("pdf", "application/pdf")]
)
def test_result_has_the_format_content_type_and_filename(
    fake_client: FlaskClient, fake_redis: Redis, file_format: str, content_type: str
) -> None:
    body = fake_client.post("/api/jobs", json={"kind": "pie", "format": file_format, "seed": 1}).get_json()
    run_queued_jobs(fake_redis)
    result = fake_client.get(body["result_url"])
    assert result.status_code == 200
    assert result.headers["Content-Type"].split(";")[0] == content_type
    assert result.headers["Content-Disposition"] == f'inline; filename="chart-{body["id"]}.{file_format}"'


def test_math_bombs_are_accepted_and_drawn_as_text(fake_client: FlaskClient, fake_redis: Redis) -> None:
    spec = {
        "title": MATH_BOMB,
        "x_label": MATH_BOMB,
        "y_label": MATH_BOMB,
        "legend": True,
        "series": [{"name": MATH_BOMB, "x": [MATH_BOMB, "$$"], "y": [1, 2]}],
    }
    body = fake_client.post("/api/jobs", json=spec).get_json()
    run_queued_jobs(fake_redis)
    assert fake_client.get(body["status_url"]).get_json()["state"] == "finished"
    image = fake_client.get(body["result_url"]).data
    assert matplotlib.image.imread(io.BytesIO(image), format="png").shape[:2] == (500, 800)


def test_openapi_document_is_valid_and_carries_the_spec_schema(fake_client: FlaskClient) -> None:
    response = fake_client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    validate_openapi(document)
    assert document["openapi"].startswith("3.1")
    own = ChartSpec.model_json_schema(ref_template=openapi.REF_TEMPLATE)
    own.pop("$defs")
    assert document["components"]["schemas"]["ChartSpec"] == own
    post = document["paths"]["/api/jobs"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "oneOf": [{"$ref": f"#/components/schemas/{name}SpecSubmission"} for name in ("Chart", "VegaLite", "Report")]
    }
    submission = document["components"]["schemas"]["ChartSpecSubmission"]
    assert submission["properties"]["generator"]["const"] == "chart"
    assert "generator" not in submission.get("required", [])
    assert {name: value for name, value in submission["properties"].items() if name != "generator"} == own["properties"]
    assert set(post["responses"]) >= {"202", "400", "413", "415", "422"}


def test_the_document_lists_every_api_route_of_the_app(fake_app: Flask) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in openapi.document([generators.get("chart")])["paths"].items()
        for method in operations
    }
    routed = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in fake_app.url_map.iter_rules()
        if rule.rule.startswith("/api/") or (rule.endpoint or "").startswith("embed.")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert documented == routed


def schema_validator(document: dict[str, Any], name: str) -> OAS31Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return OAS31Validator(schema)


def test_real_answers_match_the_documented_schemas(fake_client: FlaskClient, fake_redis: Redis) -> None:
    document = fake_client.get("/api/openapi.json").get_json()
    chart = schema_validator(document, "ChartSpec")
    chart.validate({"kind": "bar", "series": [{"x": ["a", 1.5], "y": [1, 2]}]})
    assert not chart.is_valid({"width": "wide"})

    submitted = fake_client.post("/api/jobs", json={"seed": 1}).get_json()
    schema_validator(document, "SubmittedJob").validate(submitted)
    schema_validator(document, "JobStatus").validate(fake_client.get(submitted["status_url"]).get_json())
    run_queued_jobs(fake_redis)
    schema_validator(document, "JobStatus").validate(fake_client.get(submitted["status_url"]).get_json())
    refused = fake_client.post("/api/jobs", json={"series": [{"y": []}]}).get_json()
    schema_validator(document, "ErrorBody").validate(refused)


def test_a_spec_field_may_be_as_large_as_any_request(fake_client: FlaskClient) -> None:
    spec = json.dumps({"series": [{"y": [1.5] * 20_000}]}, indent=8)
    assert 600_000 < len(spec) < Settings().max_request_bytes - 10_000
    assert post_form(fake_client, spec, None).status_code == 202


@pytest.mark.parametrize("start", [0, 1_700_000_000, True, "1700000000", "20260131", "2026-01-31T00:00:00"])
def test_start_is_only_a_yyyy_mm_dd_date_as_documented(fake_client: FlaskClient, start: Any) -> None:
    response = fake_client.post("/api/jobs", json={"start": start})
    assert response.status_code == 422
    assert response.get_json()["field"] == "start"
    assert fake_client.post("/api/jobs", json={"start": "2026-01-31"}).status_code == 202


def test_a_malformed_multipart_body_is_refused_not_read_as_an_empty_form(
    fake_client: FlaskClient, fake_redis: Redis
) -> None:
    for body in (b"--b\r\n[]--b--\r\n", b"not multipart at all"):
        response = fake_client.post("/api/jobs", data=body, content_type="multipart/form-data; boundary=b")
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_form" and response.get_json()["field"] == "body"
    assert not list(fake_redis.scan_iter("rq:job:*"))
    # A well-formed form without parts asks for nothing: refused too (no body is the default chart).
    empty = fake_client.post("/api/jobs", data=b"--b--\r\n", content_type="multipart/form-data; boundary=b")
    assert empty.status_code == 400 and empty.get_json()["field"] == "spec"


def test_a_form_with_neither_spec_nor_csv_is_refused(fake_client: FlaskClient) -> None:
    for form in ({"other": "x"}, {"spec": ""}, {"spec": "  "}):
        response = fake_client.post("/api/jobs", data=form, content_type="multipart/form-data")
        assert response.status_code == 400, form
        assert response.get_json()["error"] == "invalid_form" and response.get_json()["field"] == "spec"
