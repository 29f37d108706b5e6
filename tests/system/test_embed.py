"""Chart URLs against a real gunicorn, render worker and Redis; embedded by a page of another origin in Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, sync_playwright
from redis import Redis

from plotjobs import chart_urls
from plotjobs.cli.embedded_redis import free_port
from plotjobs.config import MAX_CHART_URL_BYTES
from tests.support.browser import CHROMIUM_ARGS, ensure_chromium
from tests.support.processes import running_gunicorn, running_worker
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.serving, pytest.mark.integration]

SECRET = "system-test-secret"
# Long enough for a render on a busy CI machine, short enough to keep the "still rendering" case quick.
WAIT_SECONDS = 4
DEADLINE_MS = 30_000


@pytest.fixture(scope="module")
def chart_server(redis_url: str) -> Iterator[str]:
    """A real gunicorn (the production config: gunicorn.conf.py) that renders signed chart URLs only."""
    with running_gunicorn(redis_url, CHART_URL_SECRET=SECRET, EMBED_WAIT_SECONDS=str(WAIT_SECONDS)) as url:
        yield url


# An isolated render (a child process per job) may outlast one request's wait on a busy machine.
ISOLATED_RENDER_SECONDS = 40


def signed(document: dict[str, Any], file_format: str = "png", **options: Any) -> str:
    return chart_urls.chart_path(document, file_format, secret=SECRET, **options)


def fresh(title: str, **extra: Any) -> dict[str, Any]:
    """A spec no earlier run rendered."""
    return {"title": f"{title} {uuid.uuid4().hex[:8]}", "seed": 3, "start": "2026-01-01", **extra}


class HostPages:
    """A plain web server on its own port, so another origin, serving the HTML pages a test gives it.

    It asks for Cross-Origin-Embedder-Policy: require-corp, so an image from another origin shows
    only when its answer says ``Cross-Origin-Resource-Policy: cross-origin``.
    """

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="host-pages", daemon=True)

    def page(self, path: str, images: dict[str, str]) -> str:
        tags = "\n".join(f'<img id="{name}" alt="{name}" src="{src}">' for name, src in images.items())
        self.pages[path] = f"<!doctype html><html><body><h1>Report</h1>\n{tags}\n</body></html>"
        return self.origin + path

    def __enter__(self) -> HostPages:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def shown(page: Page) -> dict[str, tuple[int, int]]:
    """Each image's natural size once every image has loaded or failed: (0, 0) is a broken image."""
    page.wait_for_function("[...document.images].every((image) => image.complete)", timeout=DEADLINE_MS)
    sizes: dict[str, list[int]] = page.evaluate(
        "Object.fromEntries([...document.images].map((i) => [i.id, [i.naturalWidth, i.naturalHeight]]))"
    )
    return {name: (size[0], size[1]) for name, size in sizes.items()}


@pytest.mark.browser
@pytest.mark.timeout(150)
def test_a_page_of_another_origin_shows_embedded_charts(
    chart_server: str, redis_url: str, redis_connection: Redis
) -> None:
    new = signed(fresh("new"), width=420, height=300)
    never_seen = signed(fresh("rendered while the reader waits"), width=440, height=300)
    already = fresh("already", width=460, height=300)
    stored_spec = fresh("stored", width=480, height=300)
    with HostPages() as host, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            statuses: dict[str, int] = {}
            tab.on("response", lambda response: statuses.__setitem__(response.url, response.status))

            # No worker yet: the new chart shows the "still rendering" image once the wait is over.
            first = host.page("/first.html", {"new": chart_server + new})
            tab.goto(first)
            assert shown(tab) == {"new": (400, 100)}
            assert statuses[chart_server + new] == 503

            with running_worker(redis_url, redis_connection):
                rendered = requests.get(chart_server + signed(already), timeout=30)
                assert rendered.status_code == 200
                body = json.dumps(stored_spec).encode()
                stored = requests.post(
                    f"{chart_server}/api/charts?sig={chart_urls.store_signature(SECRET, body)}",
                    data=body, headers={"Content-Type": "application/json"}, timeout=30,
                )  # fmt: skip
                assert stored.status_code == 200, stored.text
                unsigned = chart_urls.chart_path(already, "png")
                images = {
                    "never_seen": chart_server + never_seen,
                    "already": chart_server + signed(already),
                    "short": chart_server + stored.json()["path"],
                    "svg": chart_server + signed(already, "svg"),
                    "unsigned": chart_server + unsigned,
                    "forged": chart_server + signed(already).replace("sig=", "sig=A"),
                    "invalid": chart_server + signed({"kind": "radar", "seed": 1}),
                    "random": chart_server + signed({"title": "no seed"}),
                    # The same file under the API's own URL: not for other sites (no CORP), so not shown here.
                    "api_file": f"{chart_server}/api/results/{rendered.headers['ETag'].strip(chr(34))}.png",
                }
                tab.goto(host.page("/report.html", images))
                assert shown(tab) == {
                    "never_seen": (440, 300),
                    "already": (460, 300),
                    "short": (480, 300),
                    # Matplotlib sizes an SVG in points: 4.6 x 3 inches are 442 x 288 CSS pixels.
                    "svg": (442, 288),
                    "unsigned": (0, 0),
                    "forged": (0, 0),
                    "invalid": (0, 0),
                    "random": (0, 0),
                    "api_file": (0, 0),
                }
                assert {name: statuses.get(images[name]) for name in ("never_seen", "already", "short", "svg")} == {
                    "never_seen": 200, "already": 200, "short": 200, "svg": 200,
                }  # fmt: skip
                # The refusals are JSON, which Chromium does not hand to an <img> of another site at all
                # (opaque response blocking): what they say, asked directly.
                refusals = {
                    name: requests.get(images[name], timeout=30) for name in ("unsigned", "forged", "invalid", "random")
                }
                assert {name: (answer.status_code, answer.json()["error"]) for name, answer in refusals.items()} == {
                    "unsigned": (403, "signature_required"), "forged": (403, "invalid_signature"),
                    "invalid": (422, "invalid_spec"), "random": (422, "not_reproducible"),
                }  # fmt: skip

                # A reload of the first page shows the chart that was still rendering.
                tab.goto(first)
                assert shown(tab) == {"new": (420, 300)}
        finally:
            browser.close()


@pytest.mark.timeout(90)
def test_concurrent_identical_urls_share_one_render(chart_server: str, redis_url: str, redis_connection: Redis) -> None:
    path = signed(fresh("shared"))
    barrier = threading.Barrier(8)
    answers: list[requests.Response] = []

    def fetch() -> None:
        barrier.wait(timeout=30)
        answers.append(requests.get(chart_server + path, timeout=30))

    with running_worker(redis_url, redis_connection):
        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert [answer.status_code for answer in answers] == [200] * 8
    assert len({answer.headers["ETag"] for answer in answers}) == 1
    assert len({answer.content for answer in answers}) == 1
    job_keys = [key for key in redis_connection.scan_iter("rq:job:*") if key.count(b":") == 2]
    assert len(job_keys) == 1, job_keys


@pytest.mark.timeout(60)
def test_the_url_limit_is_ours_through_gunicorn(chart_server: str) -> None:
    base = "/chart.png?c=" + chart_urls.encode_spec({"seed": 1})
    at_limit = base + "&x=" + "a" * (MAX_CHART_URL_BYTES - len(base) - len("&x="))
    assert len(at_limit) == MAX_CHART_URL_BYTES
    # Gunicorn lets it through (its request line limit is raised): the app answers, here that it is unsigned.
    assert requests.get(chart_server + at_limit, timeout=30).status_code == 403
    over = requests.get(chart_server + at_limit + "a", timeout=30)
    assert over.status_code == 414 and over.json()["error"] == "uri_too_long"
    assert over.headers["Cross-Origin-Resource-Policy"] == "cross-origin"


@pytest.mark.timeout(60)
def test_plotjobs_url_short_stores_a_signed_chart(chart_server: str, redis_connection: Redis, tmp_path: Any) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(fresh("short from the command line")))

    def plotjobs_url(secret: str, *options: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "plotjobs", "url", str(spec), "--short", "--server", chart_server, *options]
        env = dict(os.environ, CHART_URL_SECRET=secret)
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    stored = plotjobs_url(SECRET)
    assert stored.returncode == 0, stored.stderr
    short = stored.stdout.strip()
    assert short.startswith(chart_server + "/c/") and short.endswith(".png")
    assert redis_connection.ttl(f"plotjobs:chart:{short.rsplit('/', 1)[1].removesuffix('.png')}") > 0
    # Stored, not rendered (no worker here): the short URL answers "still rendering".
    answer = requests.get(short, timeout=30)
    assert answer.status_code == 503 and answer.headers["Content-Type"] == "image/png"
    wrong = plotjobs_url("not the server's secret")
    assert wrong.returncode == 1 and "(403)" in wrong.stderr
    # Any served generator: the file's spec sent to the report generator, stored as a report.
    spec.write_text(json.dumps({"title": f"Short report {uuid.uuid4().hex[:8]}", "parts": [{"text": "Sales rose."}]}))
    report = plotjobs_url(SECRET, "--generator", "report")
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip().startswith(chart_server + "/c/") and report.stdout.strip().endswith(".pdf")
    stored = redis_connection.get(f"plotjobs:chart:{report.stdout.strip().rsplit('/', 1)[1].removesuffix('.pdf')}")
    assert stored is not None and json.loads(stored)["generator"] == "report"


def fresh_vega_lite(title: str) -> dict[str, Any]:
    """A vega-lite spec no earlier run rendered."""
    return {
        "generator": "vega-lite",
        "vega_lite": {
            "title": f"{title} {uuid.uuid4().hex[:8]}",
            "width": 300,
            "height": 200,
            "data": {"values": [{"region": "north", "sales": 23}, {"region": "south", "sales": 41}]},
            "mark": "bar",
            "encoding": {
                "x": {"field": "region", "type": "nominal"},
                "y": {"field": "sales", "type": "quantitative"},
            },
        },
    }


def rendered_in_time(url: str) -> requests.Response:
    """GET ``url`` until it is no longer "still rendering" (each GET waits EMBED_WAIT_SECONDS on the server)."""

    def answer() -> requests.Response | None:
        response = requests.get(url, timeout=30)
        return None if response.status_code == 503 else response

    return wait_for(answer, timeout=ISOLATED_RENDER_SECONDS, what=f"{url} to render")


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_a_vega_lite_url_and_a_stored_report_are_served_end_to_end(
    chart_server: str, redis_url: str, redis_connection: Redis
) -> None:
    vega_lite = signed(fresh_vega_lite("embedded"), "svg")
    report = {
        "generator": "report",
        "title": f"Stored report {uuid.uuid4().hex[:8]}",
        "parts": [{"text": "Sales rose."}, {"generator": "vega-lite", "spec": fresh_vega_lite("part")}],
    }
    del report["parts"][1]["spec"]["generator"]
    body = json.dumps(report).encode()
    with running_worker(redis_url, redis_connection):
        svg = rendered_in_time(chart_server + vega_lite)
        assert svg.status_code == 200, svg.text
        assert svg.headers["Content-Type"].startswith("image/svg+xml") and svg.content.lstrip().startswith(b"<svg")
        assert svg.headers["Cache-Control"].endswith("immutable")
        stored = requests.post(
            f"{chart_server}/api/charts?sig={chart_urls.store_signature(SECRET, body)}",
            data=body, headers={"Content-Type": "application/json"}, timeout=30,
        )  # fmt: skip
        assert stored.status_code == 200, stored.text
        assert stored.json()["generator"] == "report" and stored.json()["path"].endswith(".pdf")
        pdf = rendered_in_time(stored.json()["urls"]["pdf"])
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
        again = requests.get(stored.json()["urls"]["pdf"], headers={"If-None-Match": pdf.headers["ETag"]}, timeout=30)
        assert again.status_code == 304
        refused = requests.get(stored.json()["urls"]["pdf"].replace(".pdf", ".svg"), timeout=30)
        assert (refused.status_code, refused.json()["field"]) == (422, "format")
    with HostPages() as host, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            tab.goto(host.page("/vega-lite.html", {"vega_lite": chart_server + vega_lite}))
            width, height = shown(tab)["vega_lite"]
            # Vega-Lite's width and height are the plot's: the axes, title and padding add to them.
            assert width > 300 and height > 200, (width, height)
        finally:
            browser.close()
