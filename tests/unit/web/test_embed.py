"""Chart URLs on fakeredis: validation as POST /api/jobs, signing, limits, caching headers, stored charts."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import matplotlib.image
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue

from plotjobs import chart_urls, config, keys
from plotjobs.cli.main import main as cli
from plotjobs.config import Settings
from plotjobs.render import chart as chart_render
from plotjobs.spec.chart import ChartSpec
from plotjobs.spec.report import ReportSpec
from plotjobs.web import create_app, embed, placeholder
from plotjobs.web.extension import EXTENSION_KEY
from tests.unit.web.test_api import run_queued_jobs

SEEDED = {"title": "Embedded", "seed": 7, "start": "2026-01-01"}
DATA = {"kind": "bar", "series": [{"name": "a", "x": ["Q1", "Q2"], "y": [3, 5]}]}
SECRET = "a-test-secret"


# Every app a test made: their event hubs (started by a chart URL's wait) are stopped after it.
_APPS: list[Flask] = []


def make_app(redis: Redis, **changes: Any) -> Flask:
    settings = Settings(redis_url="redis://fake", secret_key="test-secret", embed_wait_seconds=0, **changes)
    app = create_app(settings, redis=redis)
    app.testing = True
    _APPS.append(app)
    return app


@pytest.fixture(autouse=True)
def _stop_event_hubs() -> Iterator[None]:
    """A hub's thread must not outlive its test, nor read from a Redis client the test closed."""
    yield
    while _APPS:
        _APPS.pop().extensions[EXTENSION_KEY]["events"].stop()


@pytest.fixture
def embed_client(fake_redis: Redis) -> FlaskClient:
    return make_app(fake_redis).test_client()


@pytest.fixture
def signed_client(fake_redis: Redis) -> FlaskClient:
    return make_app(fake_redis, chart_url_secret=SECRET).test_client()


def url(document: dict[str, Any], file_format: str = "png", **options: Any) -> str:
    return chart_urls.chart_path(document, file_format, **options)


def queued_jobs(redis: Redis) -> int:
    return sum(Queue(name, connection=redis).count for name in ("high", "default", "low"))


def rendered(client: FlaskClient, redis: Redis, path: str) -> Any:
    """GET ``path`` once to queue it (503 at once: no wait), run the worker, GET it again."""
    first = client.get(path)
    assert first.status_code == 503, first.get_data()
    run_queued_jobs(redis)
    answer = client.get(path)
    assert answer.status_code == 200, answer.get_data()
    return answer


def png_shape(data: bytes) -> tuple[int, int]:
    height, width = matplotlib.image.imread(io.BytesIO(data), format="png").shape[:2]
    return height, width


# --- validation: exactly as POST /api/jobs -------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"kind": "pie", "series": [{"y": [1, 2]}, {"y": [3]}]},
        {"width": 5, "seed": 1, "title": "x" * 500},
        {"kind": "histogram", "series": [{"x": [1], "y": [2]}]},
        {"seed": 1, "colour": "red"},
    ],
)
def test_a_url_spec_is_refused_with_the_body_post_api_jobs_answers(embed_client: FlaskClient, document: dict) -> None:
    posted = embed_client.post("/api/jobs", json=document)
    got = embed_client.get(url(document))
    assert (got.status_code, got.get_json()) == (posted.status_code, posted.get_json()) == (422, posted.get_json())
    assert got.get_json()["details"]


def test_json_and_base64url_name_the_same_chart(embed_client: FlaskClient, fake_redis: Redis) -> None:
    encoded = rendered(embed_client, fake_redis, url(DATA))
    plain = embed_client.get(url(DATA, as_json=True))
    assert plain.status_code == 200 and plain.headers["ETag"] == encoded.headers["ETag"]
    assert queued_jobs(fake_redis) == 0


def test_w_and_h_override_the_size(embed_client: FlaskClient, fake_redis: Redis) -> None:
    answer = rendered(embed_client, fake_redis, url(DATA, width=300, height=200))
    assert png_shape(answer.data) == (200, 300)
    assert embed_client.get(url(DATA) + "&w=wide").get_json()["field"] == "width"
    assert embed_client.get(url(DATA) + "&w=50").get_json()["field"] == "width"  # below the spec's minimum
    for odd in ("%C2%B2", "%D9%A3", "1" * 4400, "+800", "8e2"):  # '²', Arabic-Indic 3, too many digits, signs
        answer = embed_client.get(url(DATA) + f"&h={odd}")
        assert (answer.status_code, answer.get_json()["field"]) == (422, "height"), odd


def test_the_unseeded_demo_data_is_refused_saying_why(embed_client: FlaskClient) -> None:
    for path in (url({"title": "random"}), "/chart.png?c={}"):
        answer = embed_client.get(path)
        body = answer.get_json()
        assert (answer.status_code, body["error"], body["field"]) == (422, "not_reproducible", "seed")
        assert "seed" in body["message"] and "random" in body["message"]


@pytest.mark.parametrize(
    ("path", "status", "error", "field"),
    [
        ("/chart.png", 422, "invalid_spec", "c"),
        ("/chart.png?c=%7Bnot-json", 400, "invalid_json", "c"),
        ("/chart.png?c=%5B1%5D", 422, "invalid_spec", "c"),
        ("/chart.gif?c=%7B%7D", 404, "not_found", "format"),
        ("/chart.png?c=" + chart_urls.encode_spec({**SEEDED, "format": "svg"}), 422, "invalid_spec", "format"),
    ],
)
def test_malformed_urls_are_json_errors(
    embed_client: FlaskClient, path: str, status: int, error: str, field: str
) -> None:
    answer = embed_client.get(path)
    assert answer.status_code == status and answer.mimetype == "application/json"
    assert (answer.get_json()["error"], answer.get_json()["field"]) == (error, field)


def test_a_url_over_the_limit_is_our_414(fake_redis: Redis) -> None:
    client = make_app(fake_redis, chart_url_max_bytes=300).test_client()
    base = url(SEEDED)
    padding = 300 - len(base) - len("&w=800&x=")
    at_limit = f"{base}&w=800&x={'a' * padding}"
    assert len(at_limit) == 300
    assert client.get(at_limit).status_code == 503  # queued: no worker here
    over = client.get(at_limit + "a")
    assert over.status_code == 414 and over.get_json()["error"] == "uri_too_long"
    assert over.get_json()["limit"] == 300 and over.get_json()["size"] == 301
    assert "POST /api/charts" in over.get_json()["message"]


def test_the_url_limit_stays_below_gunicorns_request_line() -> None:
    from plotjobs.web import gunicorn_config

    longest_line = len("OPTIONS ") + config.MAX_CHART_URL_BYTES + len(" HTTP/1.1")
    assert gunicorn_config.limit_request_line == config.LIMIT_REQUEST_LINE >= longest_line
    with pytest.raises(config.ConfigError, match="CHART_URL_MAX_BYTES"):
        config.from_env({"CHART_URL_MAX_BYTES": str(config.MAX_CHART_URL_BYTES + 1)})
    with pytest.raises(config.ConfigError, match="EMBED_WAIT_SECONDS"):
        config.from_env({"EMBED_WAIT_SECONDS": "30", "GUNICORN_TIMEOUT": "30"})
    assert config.from_env({}).embed_wait_seconds == 10


# --- signing ----------------------------------------------------------------------------------------


def test_with_a_secret_only_signed_urls_render(signed_client: FlaskClient, fake_redis: Redis) -> None:
    unsigned = signed_client.get(url(SEEDED))
    assert (unsigned.status_code, unsigned.get_json()["error"]) == (403, "signature_required")
    signed = url(SEEDED, secret=SECRET)
    assert signed_client.get(signed.replace("sig=", "sig=x")).get_json()["error"] == "invalid_signature"
    assert signed_client.get(url(SEEDED, secret="another key")).status_code == 403
    # The signature covers the size and the format: a reader cannot change them.
    assert signed_client.get(signed + "&w=900").status_code == 403
    assert signed_client.get(signed.replace("/chart.png", "/chart.svg")).status_code == 403
    assert queued_jobs(fake_redis) == 0
    answer = rendered(signed_client, fake_redis, signed)
    assert answer.mimetype == "image/png"
    resized = url(SEEDED, secret=SECRET, width=300, height=200)
    assert png_shape(rendered(signed_client, fake_redis, resized).data) == (200, 300)


def test_the_signature_is_checked_before_the_spec(signed_client: FlaskClient) -> None:
    # Unsigned garbage costs no parsing: it is 403, not 400.
    assert signed_client.get("/chart.png?c=%7Bnot-json").status_code == 403


def test_the_cli_prints_urls_the_server_accepts(fake_redis: Redis, tmp_path: Any) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(SEEDED))
    runner = CliRunner()
    plain = runner.invoke(cli, ["url", str(spec_file), "--server", "http://charts.example"], env={})
    assert plain.exit_code == 0, plain.output
    assert plain.output.startswith("http://charts.example/chart.png?c=") and "sig=" not in plain.output
    signed = runner.invoke(cli, ["url", str(spec_file), "--format", "svg"], env={"CHART_URL_SECRET": SECRET})
    assert signed.exit_code == 0, signed.output
    path = signed.output.strip().removeprefix("http://127.0.0.1:8000")
    client = make_app(fake_redis, chart_url_secret=SECRET).test_client()
    answer = rendered(client, fake_redis, path)
    assert answer.mimetype == "image/svg+xml"
    random = runner.invoke(cli, ["url", "-"], input="{}", env={})
    assert random.exit_code == 2 and "seed" in random.output
    long = runner.invoke(cli, ["url", "-"], input=json.dumps({"seed": 1, "title": "t" * 190}), env={})
    assert long.exit_code == 0
    too_long = runner.invoke(cli, ["url", "-"], input=json.dumps({"series": [{"y": list(range(3000))}]}), env={})
    assert too_long.exit_code == 1 and "--short" in too_long.output


# --- caching and headers ----------------------------------------------------------------------------


def test_a_rendered_chart_is_immutable_with_its_hash_as_etag(embed_client: FlaskClient, fake_redis: Redis) -> None:
    path = url(DATA)
    answer = rendered(embed_client, fake_redis, path)
    digest = hashlib.sha256(answer.data).hexdigest()
    assert answer.headers["ETag"] == f'"{digest}"'
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert answer.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in answer.headers["Content-Security-Policy"]
    again = embed_client.get(path, headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    head = embed_client.head(path)
    assert head.status_code == 200 and not head.data
    assert head.headers["Content-Length"] == str(len(answer.data)) and head.headers["ETag"] == answer.headers["ETag"]


def test_a_seed_without_start_is_cached_until_midnight_only() -> None:
    spec = ChartSpec(seed=1)
    noon = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert embed.cache_control(spec, noon) == "public, max-age=43200"
    assert embed.cache_control(ChartSpec(seed=1, start=dt.date(2026, 1, 1)), noon).endswith("immutable")
    assert embed.cache_control(ChartSpec.model_validate(DATA), noon).endswith("immutable")
    report = {"parts": [{"text": "x"}, {"generator": "chart", "spec": {"seed": 1}}]}
    assert embed.cache_control(ReportSpec.model_validate(report), noon) == "public, max-age=43200"
    report["parts"][1]["spec"]["start"] = "2026-01-01"
    assert embed.cache_control(ReportSpec.model_validate(report), noon).endswith("immutable")


def test_still_rendering_is_503_no_store_with_an_image(embed_client: FlaskClient) -> None:
    png = embed_client.get(url(SEEDED))
    assert png.status_code == 503 and png.mimetype == "image/png" and png.data == placeholder.PNG
    assert png.headers["Cache-Control"] == "no-store" and png.headers["Retry-After"] == "5"
    assert png.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert png_shape(png.data) == (placeholder.PNG_HEIGHT, placeholder.PNG_WIDTH)
    svg = embed_client.get(url(SEEDED, "svg", width=320, height=240))
    assert svg.status_code == 503 and svg.mimetype == "image/svg+xml"
    assert b'width="320" height="240"' in svg.data
    head = embed_client.head(url(SEEDED))
    assert head.status_code == 503 and head.headers["Cache-Control"] == "no-store"


def test_the_apps_own_pages_keep_their_strict_headers(embed_client: FlaskClient, fake_redis: Redis) -> None:
    answer = rendered(embed_client, fake_redis, url(DATA))
    stored = embed_client.get(f"/api/results/{answer.headers['ETag'].strip(chr(34))}.png")
    for response in (embed_client.get("/"), embed_client.get("/api/workers"), stored):
        assert "Cross-Origin-Resource-Policy" not in response.headers
        assert response.headers["X-Frame-Options"] == "DENY"
    assert embed_client.get("/").headers["Content-Security-Policy"].startswith("default-src 'self'")


# --- one render, limits that ignore the proxy -------------------------------------------------------


def test_a_chart_rendered_for_post_api_jobs_is_served_without_a_new_job(
    embed_client: FlaskClient, fake_redis: Redis
) -> None:
    posted = embed_client.post("/api/jobs", json={**DATA, "format": "svg"})
    assert posted.status_code == 202
    run_queued_jobs(fake_redis)
    answer = embed_client.get(url(DATA, "svg"))
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    file_url = embed_client.post("/api/jobs", json={**DATA, "format": "svg"}).get_json()["file_url"]
    assert file_url == f"/api/results/{answer.headers['ETag'].strip(chr(34))}.svg"
    assert queued_jobs(fake_redis) == 0


def test_readers_behind_one_proxy_are_never_refused_a_chart_rendered_or_in_flight(fake_redis: Redis) -> None:
    client = make_app(fake_redis, chart_url_max_renders=1).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    rendered(client, fake_redis, url(DATA))
    assert client.get(url(SEEDED), environ_base=proxy).status_code == 503  # its one render in flight
    for _ in range(5):
        assert client.get(url(DATA), environ_base=proxy).status_code == 200
        assert client.get(url(SEEDED), environ_base=proxy).status_code == 503  # joins it, no new job
    assert queued_jobs(fake_redis) == 1
    refused = client.get(url({**SEEDED, "seed": 8}), environ_base=proxy)
    assert refused.status_code == 429 and "CHART_URL_MAX_RENDERS is 1" in refused.get_json()["message"]
    # Another address has its own share; POST /api/jobs keeps its own too.
    assert client.get(url({**SEEDED, "seed": 8}), environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 503
    assert client.post("/api/jobs", json={"seed": 9}, environ_base=proxy).status_code == 202


def test_signed_urls_are_counted_per_key_whatever_the_address(fake_redis: Redis) -> None:
    client = make_app(fake_redis, chart_url_secret=SECRET, chart_url_max_renders=2).test_client()
    for seed, address in ((1, "10.0.0.1"), (2, "10.0.0.2")):
        assert client.get(url({"seed": seed}, secret=SECRET), environ_base={"REMOTE_ADDR": address}).status_code == 503
    refused = client.get(url({"seed": 3}, secret=SECRET), environ_base={"REMOTE_ADDR": "10.0.0.3"})
    assert refused.status_code == 429 and refused.get_json()["limit"] == 2
    run_queued_jobs(fake_redis)  # ended renders no longer count
    assert client.get(url({"seed": 3}, secret=SECRET), environ_base={"REMOTE_ADDR": "10.0.0.3"}).status_code == 503


def test_a_failed_render_is_answered_as_failed_then_tried_again(
    embed_client: FlaskClient, fake_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    working = chart_render.render

    def broken(spec: Any, progress: Any = None) -> bytes:
        if spec.title == SEEDED["title"]:
            raise RuntimeError("the plotter is broken")
        return working(spec, progress)  # the worker's warm-up

    monkeypatch.setattr(chart_render, "render", broken)
    path = url(SEEDED)
    assert embed_client.get(path).status_code == 503
    run_queued_jobs(fake_redis)
    for _ in range(3):
        failed = embed_client.get(path)
        assert failed.status_code == 422 and failed.get_json()["error"] == "render_failed"
        assert "the plotter is broken" in failed.get_json()["message"]
    assert queued_jobs(fake_redis) == 0
    monkeypatch.undo()
    monkeypatch.setattr(embed, "FAILED_RENDER_HOLD_SECONDS", 0)
    assert embed_client.get(path).status_code == 503
    assert queued_jobs(fake_redis) == 1
    run_queued_jobs(fake_redis)
    assert embed_client.get(path).status_code == 200


# --- stored charts and their short URLs ---------------------------------------------------------------


def test_a_stored_chart_has_a_stable_short_url_for_every_format(embed_client: FlaskClient, fake_redis: Redis) -> None:
    stored = embed_client.post("/api/charts", json=DATA)
    body = stored.get_json()
    assert stored.status_code == 200 and body["created"] is True
    assert body["path"] == f"/c/{body['id']}.png" and body["url"] == f"http://localhost{body['path']}"
    assert set(body["urls"]) == {"png", "svg", "pdf"} and body["expires_in"] == 365 * 24 * 3600
    assert 0 < fake_redis.ttl(keys.chart(body["id"])) <= 365 * 24 * 3600
    again = embed_client.post("/api/charts", json=DATA).get_json()
    assert again["id"] == body["id"] and again["created"] is False
    answer = rendered(embed_client, fake_redis, body["path"])
    assert answer.headers["Cache-Control"].endswith("immutable")
    assert answer.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    # The long URL of the same spec shares the file.
    assert embed_client.get(url(DATA)).headers["ETag"] == answer.headers["ETag"]
    svg = rendered(embed_client, fake_redis, f"/c/{body['id']}.svg")
    assert svg.mimetype == "image/svg+xml"


def test_a_stored_chart_renders_again_after_its_file_expired(embed_client: FlaskClient, fake_redis: Redis) -> None:
    path = embed_client.post("/api/charts", json={"seed": 5, "start": "2026-02-01"}).get_json()["path"]
    first = rendered(embed_client, fake_redis, path)
    # Everything of the render expires with RESULT_TTL: the job, its file and the spec's generation.
    for key in fake_redis.scan_iter("*"):
        if not key.startswith(keys.CHART_PREFIX.encode()):
            fake_redis.delete(key)
    again = rendered(embed_client, fake_redis, path)
    assert again.headers["ETag"] == first.headers["ETag"]


def test_a_view_keeps_a_stored_chart_alive(embed_client: FlaskClient, fake_redis: Redis) -> None:
    chart_id = embed_client.post("/api/charts", json=DATA).get_json()["id"]
    fake_redis.expire(keys.chart(chart_id), 100)
    embed_client.get(f"/c/{chart_id}.png")
    assert fake_redis.ttl(keys.chart(chart_id)) > 100


@pytest.mark.parametrize("path", ["/c/0123456789abcdef01234567.png", "/c/nope.png", "/c/0123456789abcdef01234567.gif"])
def test_unknown_stored_charts_are_404_json(embed_client: FlaskClient, path: str) -> None:
    answer = embed_client.get(path)
    assert answer.status_code == 404 and answer.mimetype == "application/json"


def test_storing_refuses_what_a_url_refuses(embed_client: FlaskClient) -> None:
    assert embed_client.post("/api/charts", json={"title": "random"}).get_json()["error"] == "not_reproducible"
    assert embed_client.post("/api/charts", json={"kind": "nope", "seed": 1}).status_code == 422
    assert embed_client.post("/api/charts", data="{", content_type="application/json").status_code == 400


def test_storing_from_a_csv_keeps_the_data_inline(embed_client: FlaskClient, fake_redis: Redis) -> None:
    spec = json.dumps({"kind": "line", "series": [{"x_column": "day", "y_column": "sales"}]})
    form = {"spec": spec, "csv": (io.BytesIO(b"day,sales\n1,3\n2,5\n"), "data.csv")}
    body = embed_client.post("/api/charts", data=form, content_type="multipart/form-data").get_json()
    stored = json.loads(fake_redis.get(keys.chart(body["id"])) or b"{}")
    assert stored["series"][0]["y"] == [3.0, 5.0]


def test_with_a_secret_storing_needs_the_bodys_signature(signed_client: FlaskClient) -> None:
    body = json.dumps(DATA).encode()
    unsigned = signed_client.post("/api/charts", data=body, content_type="application/json")
    assert (unsigned.status_code, unsigned.get_json()["error"]) == (403, "signature_required")
    wrong = signed_client.post("/api/charts?sig=abc", data=body, content_type="application/json")
    assert wrong.get_json()["error"] == "invalid_signature"
    sig = chart_urls.store_signature(SECRET, body)
    stored = signed_client.post(f"/api/charts?sig={sig}", data=body, content_type="application/json")
    assert stored.status_code == 200
    # The short URL needs no signature: only a key holder could store it.
    assert signed_client.get(stored.get_json()["path"]).status_code == 503


def test_stores_per_hour_are_limited_per_client(redis_connection: Redis) -> None:
    """On a real Redis: the hourly counter must work on Redis 6.2 too (no EXPIRE NX)."""
    client = make_app(redis_connection, chart_url_stores_per_hour=2).test_client()
    for seed in (1, 2):
        assert client.post("/api/charts", json={"seed": seed}).status_code == 200
    assert client.post("/api/charts", json={"seed": 1}).status_code == 200  # stored already: not counted
    refused = client.post("/api/charts", json={"seed": 3})
    assert refused.status_code == 429 and refused.get_json()["error"] == "too_many_charts"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert 0 < redis_connection.ttl(keys.chart_stores("127.0.0.1")) <= keys.CHART_STORES_TTL
    assert client.post("/api/charts", json={"seed": 3}, environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code == 200


def test_a_browser_post_to_api_charts_needs_the_csrf_token(embed_client: FlaskClient) -> None:
    answer = embed_client.post("/api/charts", json=DATA, headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 403 and answer.get_json()["error"] == "csrf_failed"


# --- waiting, on a real Redis ------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_the_wait_gives_up_on_time(settings: Settings, redis_connection: Redis) -> None:
    app = create_app(settings.replace(embed_wait_seconds=1), redis=redis_connection)
    client = app.test_client()
    try:
        started = time.monotonic()
        answer = client.get(url(SEEDED))
        waited = time.monotonic() - started
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert 1.0 <= waited < 2.5, waited
        # A second reader joins the same job and gives up on time too.
        started = time.monotonic()
        assert client.get(url(SEEDED)).status_code == 503
        assert 1.0 <= time.monotonic() - started < 2.5
        assert queued_jobs(redis_connection) == 1
    finally:
        # Before the fixture closes the Redis client the hub's thread reads from.
        app.extensions[EXTENSION_KEY]["events"].stop()


@pytest.mark.parametrize(
    "c", ['{"width": ' + "1" * 4400 + "}", "[" * 5000, '{"series": ' + "[" * 3000 + "]" * 3000 + "}"]
)
def test_json_python_cannot_read_is_a_clear_400(embed_client: FlaskClient, c: str) -> None:
    answer = embed_client.get("/chart.png", query_string={"c": c})
    assert (answer.status_code, answer.get_json()["error"], answer.get_json()["field"]) == (400, "invalid_json", "c")


# --- other generators: the same URLs, validated and rendered through the registry --------------------

VEGA_LITE = {
    "generator": "vega-lite",
    "vega_lite": {
        "data": {"values": [{"region": "north", "sales": 23}, {"region": "south", "sales": 41}]},
        "mark": "bar",
        "encoding": {"x": {"field": "region", "type": "nominal"}, "y": {"field": "sales", "type": "quantitative"}},
    },
}
REPORT = {
    "generator": "report",
    "title": "Q1",
    "parts": [{"text": "Sales rose."}, {"generator": "chart", "spec": DATA}],
}


def test_a_vega_lite_url_is_its_picture_with_the_charts_caching(embed_client: FlaskClient, fake_redis: Redis) -> None:
    svg = rendered(embed_client, fake_redis, url(VEGA_LITE, "svg"))
    assert svg.mimetype == "image/svg+xml" and svg.data.lstrip().startswith(b"<svg")
    assert svg.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert svg.headers["ETag"] == f'"{hashlib.sha256(svg.data).hexdigest()}"'
    assert "vega-lite-" in svg.headers["Content-Disposition"]
    assert embed_client.get(url(VEGA_LITE, "svg", as_json=True)).headers["ETag"] == svg.headers["ETag"]
    png = rendered(embed_client, fake_redis, url(VEGA_LITE))
    assert png.mimetype == "image/png" and png_shape(png.data)[0] > 0


def test_a_chart_keeps_its_url_and_its_file_when_it_names_its_generator(
    embed_client: FlaskClient, fake_redis: Redis
) -> None:
    plain = rendered(embed_client, fake_redis, url(DATA))
    named = embed_client.get(url({"generator": "chart", **DATA}))
    assert named.status_code == 200 and named.headers["ETag"] == plain.headers["ETag"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"generator": "sparkline"}, "no generator 'sparkline' is served here (served: chart, vega-lite)"),
        ({"generator": "report", "parts": [{"text": "x"}]}, "no generator 'report' is served here"),
        ({"generator": 7}, "generator must be a generator's name"),
    ],
)
def test_a_generator_not_served_is_refused_naming_the_field(fake_redis: Redis, document: dict, message: str) -> None:
    client = make_app(fake_redis, generators=("chart", "vega-lite")).test_client()
    for answer in (client.get(url(document, "pdf")), client.post("/api/charts", json=document)):
        body = answer.get_json()
        assert (answer.status_code, body["field"]) == (422, "generator") and message in body["message"]


def test_a_format_the_generator_does_not_render_is_refused_naming_it(fake_redis: Redis) -> None:
    client = make_app(fake_redis).test_client()
    answer = client.get(url(REPORT, "svg"))
    body = answer.get_json()
    assert (answer.status_code, body["error"], body["field"]) == (422, "invalid_spec", "format")
    assert "renders pdf, png, not svg" in body["message"]
    # An extension no served generator renders is no page at all.
    only_reports = make_app(fake_redis, generators=("report",)).test_client()
    assert only_reports.get(url(REPORT, "svg")).status_code == 404
    assert only_reports.get(url(REPORT, "svg")).get_json()["field"] == "format"
    mismatch = client.get(url(VEGA_LITE, "png").replace("c=", "c=x"))  # not base64url of JSON: refused first
    assert mismatch.status_code == 400


@pytest.mark.parametrize("parameter", ["w", "h"])
def test_w_and_h_are_refused_for_a_spec_without_a_size(embed_client: FlaskClient, parameter: str) -> None:
    for document in (VEGA_LITE, REPORT):
        answer = embed_client.get(url(document) + f"&{parameter}=300")
        body = answer.get_json()
        assert (answer.status_code, body["error"], body["field"]) == (400, "size_not_applicable", parameter)
        assert document["generator"] in body["message"]


@pytest.mark.parametrize(
    ("document", "file_format", "field"),
    [
        (VEGA_LITE, "pdf", "format"),
        ({**VEGA_LITE, "vega_lite": {**VEGA_LITE["vega_lite"], "transform": [{"calculate": "random()", "as": "r"}]}},
         "svg", "vega_lite"),
        ({**REPORT, "parts": [{"text": "x"}, {"generator": "chart", "spec": {"title": "random"}}]}, "pdf",
         "parts.1.spec.seed"),
    ],
)  # fmt: skip
def test_only_reproducible_specs_of_any_generator_are_urls(
    embed_client: FlaskClient, document: dict, file_format: str, field: str
) -> None:
    for answer in (embed_client.get(url(document, file_format)), embed_client.post("/api/charts", json=document)):
        body = answer.get_json()
        if answer.request.method == "POST" and file_format == "pdf" and field == "format":
            # Stored without a format, the vega-lite spec is a PNG: it may be stored.
            assert answer.status_code == 200
            continue
        assert (answer.status_code, body["error"], body["field"]) == (422, "not_reproducible", field), body


def test_a_vega_lite_svg_still_rendering_is_an_svg_placeholder(embed_client: FlaskClient) -> None:
    answer = embed_client.get(url(VEGA_LITE, "svg"))
    assert answer.status_code == 503 and answer.mimetype == "image/svg+xml"
    assert f'width="{placeholder.PNG_WIDTH}" height="{placeholder.PNG_HEIGHT}"'.encode() in answer.data
    report = embed_client.get(url(REPORT, "pdf"))
    assert report.status_code == 503 and report.mimetype == "image/png" and report.data == placeholder.PNG


def test_a_stored_report_records_its_generator_and_serves_its_formats(
    embed_client: FlaskClient, fake_redis: Redis
) -> None:
    stored = embed_client.post("/api/charts", json=REPORT)
    body = stored.get_json()
    assert stored.status_code == 200 and body["generator"] == "report"
    assert body["path"] == f"/c/{body['id']}.pdf" and set(body["urls"]) == {"pdf", "png"}
    kept = json.loads(fake_redis.get(keys.chart(body["id"])) or b"{}")
    assert kept["generator"] == "report" and "format" not in kept
    pdf = rendered(embed_client, fake_redis, body["path"])
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Cache-Control"].endswith("immutable")
    svg = embed_client.get(f"/c/{body['id']}.svg")
    assert (svg.status_code, svg.get_json()["field"]) == (422, "format")
    # The long URL of the same spec shares the file.
    assert embed_client.get(url(REPORT, "pdf")).headers["ETag"] == pdf.headers["ETag"]


def test_a_stored_vega_lite_spec_is_served_in_its_formats(embed_client: FlaskClient, fake_redis: Redis) -> None:
    body = embed_client.post("/api/charts", json={**VEGA_LITE, "format": "svg"}).get_json()
    assert body["path"] == f"/c/{body['id']}.svg" and set(body["urls"]) == {"png", "svg", "pdf"}
    svg = rendered(embed_client, fake_redis, body["path"])
    assert svg.mimetype == "image/svg+xml"
    pdf = embed_client.get(f"/c/{body['id']}.pdf")
    assert (pdf.status_code, pdf.get_json()["error"], pdf.get_json()["field"]) == (422, "not_reproducible", "format")
    assert embed_client.get(f"/c/{body['id']}.svg?w=300").status_code == 200  # a short URL takes no w


def test_a_chart_stored_without_a_generator_field_is_a_chart(embed_client: FlaskClient, fake_redis: Redis) -> None:
    body = embed_client.post("/api/charts", json=DATA).get_json()
    stored = (fake_redis.get(keys.chart(body["id"])) or b"").decode()
    assert "generator" not in json.loads(stored)
    # The id is the spec's as it was before other generators: named by the same JSON.
    assert body["id"] == chart_urls.chart_id(stored) and body["generator"] == "chart"
    assert rendered(embed_client, fake_redis, body["path"]).mimetype == "image/png"


def test_a_stored_chart_of_a_generator_no_longer_served_is_refused(fake_redis: Redis) -> None:
    chart_id = make_app(fake_redis).test_client().post("/api/charts", json=VEGA_LITE).get_json()["id"]
    answer = make_app(fake_redis, generators=("chart",)).test_client().get(f"/c/{chart_id}.png")
    assert (answer.status_code, answer.get_json()["field"]) == (422, "generator")


def test_the_cli_prints_urls_of_any_generator(fake_redis: Redis, tmp_path: Any) -> None:
    runner = CliRunner()
    spec_file = tmp_path / "vega.json"
    spec_file.write_text(json.dumps({key: value for key, value in VEGA_LITE.items() if key != "generator"}))
    named = runner.invoke(cli, ["url", str(spec_file), "--generator", "vega-lite", "--format", "svg"], env={})
    assert named.exit_code == 0, named.output
    path = named.output.strip().removeprefix("http://127.0.0.1:8000")
    assert path.startswith("/chart.svg?c=")
    assert json.loads(chart_urls.decode_spec(path.split("c=")[1]))["generator"] == "vega-lite"
    client = make_app(fake_redis).test_client()
    assert rendered(client, fake_redis, path).mimetype == "image/svg+xml"
    report_file = tmp_path / "report.json"
    report_file.write_text(json.dumps(REPORT))
    report = runner.invoke(cli, ["url", str(report_file)], env={})
    assert report.exit_code == 0 and "/chart.pdf?c=" in report.output  # the report's own default format
    refusals = [
        (["--format", "svg"], "--format", "renders pdf, png"),
        (["--width", "300"], "--width", "no width"),
        (["--generator", "sparkline"], "--generator", "sparkline"),
    ]
    for options, hint, message in refusals:
        refused = runner.invoke(cli, ["url", str(report_file), *options], env={})
        assert refused.exit_code == 2 and hint in refused.output and message in refused.output, refused.output
    pdf = runner.invoke(cli, ["url", str(spec_file), "--generator", "vega-lite", "--format", "pdf"], env={})
    assert pdf.exit_code == 2 and "PDF differs" in pdf.output


def test_the_openapi_document_describes_the_chart_urls_from_the_registry(fake_redis: Redis) -> None:
    document = make_app(fake_redis).test_client().get("/api/openapi.json").get_json()
    stored_body = document["paths"]["/api/charts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert [choice["$ref"].rsplit("/", 1)[1] for choice in stored_body["oneOf"]] == [
        "ChartSpecSubmission", "VegaLiteSpecSubmission", "ReportSpecSubmission"
    ]  # fmt: skip
    assert "generator" in document["components"]["schemas"]["StoredChart"]["properties"]
    only_reports = make_app(fake_redis, generators=("report",)).test_client().get("/api/openapi.json").get_json()
    for path in ("/chart.{file_format}", "/c/{chart_id}.{file_format}"):
        parameters = {parameter["name"]: parameter for parameter in only_reports["paths"][path]["get"]["parameters"]}
        assert parameters["file_format"]["schema"]["enum"] == ["pdf", "png"]
        answers = only_reports["paths"][path]["get"]["responses"]
        assert set(answers["200"]["content"]) == {"application/pdf", "image/png"}
