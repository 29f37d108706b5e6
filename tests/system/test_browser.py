"""The pages in a real headless Chromium, against a real gunicorn, worker and Redis."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
import requests
from playwright.sync_api import (
    APIResponse,
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)
from redis import Redis

from plotjobs.cli.embedded_redis import EmbeddedRedis, free_port
from plotjobs.queue import jobs
from tests.support.browser import CHROMIUM_ARGS, ensure_chromium
from tests.support.processes import PROJECT_ROOT, running_gunicorn, running_worker
from tests.system.test_serving import poll_until_finished

pytestmark = pytest.mark.browser

SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Every wait in these tests is a condition with a deadline (Playwright's auto-waiting).
DEADLINE_MS = 30_000


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # First the Debian packages: Playwright's driver itself needs one of them (libatomic1).
    ensure_chromium()
    # expect() keeps its own 5 s default, which the context's default timeout does not change.
    expect.set_options(timeout=DEADLINE_MS)
    try:
        with sync_playwright() as driver:
            yield driver
    finally:
        expect.set_options(timeout=None)


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One Debian Chromium for the whole module."""
    chromium = playwright.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def base_url(redis_url: str) -> Iterator[str]:
    """A real gunicorn on the test Redis, shared by the module's tests."""
    with running_gunicorn(redis_url) as url:
        yield url


class Console:
    """What the page said on its console, to catch script errors and CSP violations."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def violations(self) -> list[str]:
        return [message for message in self.messages if "Content Security Policy" in message or "pageerror" in message]


@pytest.fixture
def context(browser: Browser, base_url: str) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies, localStorage) per test."""
    browser_context = browser.new_context(base_url=base_url, viewport=DESKTOP)
    browser_context.set_default_timeout(DEADLINE_MS)
    try:
        yield browser_context
    finally:
        browser_context.close()


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(context: BrowserContext, console: Console) -> Page:
    tab = context.new_page()
    tab.on("console", lambda message: console.messages.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: console.messages.append(f"pageerror: {error}"))
    return tab


def decoded_png(page: Page, src: str) -> Any:
    response = page.request.get(src)
    assert response.ok and response.headers["content-type"] == "image/png"
    return matplotlib.image.imread(io.BytesIO(response.body()), format="png")


# A mutation record keeps the value it replaced, so values that change within one frame are
# not lost: a card's history is every replaced value, then the current one.
_RECORD_PROGRESS = """(() => {
    if (window.progressSeen) return;
    window.progressSeen = [];
    const cardOf = (node) => {
        const element = node.nodeType === 1 ? node : node.parentElement;
        return element ? element.closest('.job-card') : null;
    };
    new MutationObserver((changes) => changes.forEach((change) => {
        const card = cardOf(change.target);
        if (!card) return;
        if (change.type === 'attributes') {
            window.progressSeen.push([card.dataset.jobId, 'value', change.oldValue]);
        } else if (change.target.classList && change.target.classList.contains('job-stage')) {
            change.removedNodes.forEach((node) =>
                window.progressSeen.push([card.dataset.jobId, 'stage', node.textContent]));
        }
    })).observe(document, {subtree: true, childList: true, attributes: true,
                           attributeOldValue: true, attributeFilter: ['aria-valuenow']});
})()"""


def record_progress(page: Page) -> None:
    """From now on, and on every later load of ``page``, keep each progress value and stage text."""
    page.add_init_script(_RECORD_PROGRESS)
    page.evaluate(_RECORD_PROGRESS)


def progress_history(page: Page, job_id: str) -> tuple[list[int], list[str]]:
    """The progress values and stage texts job ``job_id``'s card has shown, oldest first."""
    seen = [(kind, value) for card_id, kind, value in page.evaluate("window.progressSeen") if card_id == job_id]
    current = card(page, job_id)
    values = [int(value) for kind, value in seen if kind == "value"]
    values.append(int(current.get_by_role("progressbar").get_attribute("aria-valuenow") or "0"))
    stages = [value for kind, value in seen if kind == "stage" and value]
    stages.append(current.locator(".job-stage").inner_text())
    return _without_repeats(values), _without_repeats(stages)


def _without_repeats(items: list[Any]) -> list[Any]:
    """Setting a value to what it was is still a mutation; keep only real changes."""
    return [item for index, item in enumerate(items) if index == 0 or items[index - 1] != item]


def card(page: Page, job_id: str) -> Any:
    return page.locator(f'.job-card[data-job-id="{job_id}"]')


def stored_cancel_tokens(page: Page) -> dict[str, str | None]:
    """The cancel token this browser keeps for each of its recent jobs, newest first."""
    stored = json.loads(page.evaluate("localStorage.getItem('plotjobs.recent')") or "[]")
    return {item["id"]: item.get("cancelToken") for item in stored}


def test_ask_for_charts_watch_them_queue_progress_and_appear(
    page: Page, console: Console, redis_url: str, redis_connection: Redis
) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Ask for a chart")).to_be_visible()
    title = '<b>Quarterly</b> & "friends"'
    # Keyboard only: type the title and press Enter in the field to submit.
    page.get_by_label("Title").focus()
    page.keyboard.type(title)
    page.keyboard.press("Enter")
    first = page.locator(".job-card").first
    expect(first).to_have_attribute("data-state", "queued")
    first_id = first.get_attribute("data-job-id")
    page.get_by_label("Title").fill("Second")
    page.get_by_label("Random seed").fill("42")
    page.get_by_role("button", name="Render chart").click()
    second = page.locator(".job-card").first
    expect(second).not_to_have_attribute("data-job-id", first_id or "")
    second_id = second.get_attribute("data-job-id")
    assert first_id and second_id

    expect(card(page, first_id).locator(".job-stage")).to_have_text("queued — next in line")
    expect(card(page, second_id).locator(".job-stage")).to_have_text("queued — 1 ahead of you")
    expect(card(page, first_id).get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
    # Nobody is rendering: the page says so instead of waiting in silence.
    expect(card(page, first_id).locator(".job-note")).to_contain_text("No worker is running")
    link = card(page, first_id).locator(".job-link")
    expect(link).to_have_text(title)
    assert card(page, first_id).locator("b").count() == 0

    record_progress(page)
    with running_worker(redis_url, redis_connection):
        for job_id in (first_id, second_id):
            expect(card(page, job_id)).to_have_attribute("data-state", "finished")
            expect(card(page, job_id).locator(".job-figure")).to_be_visible()
            expect(card(page, job_id).locator(".job-note")).to_be_hidden()
    values, stages = progress_history(page, first_id)
    assert values[0] == 0 and values[-1] == 100 and values == sorted(values), values
    assert stages[0] == "queued — next in line" and stages[-1] == "done", stages

    image = card(page, first_id).locator("img")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 800
    assert decoded_png(page, image.get_attribute("src") or "").shape[:2] == (500, 800)
    download = card(page, first_id).get_by_role("link", name="Download PNG")
    href = download.get_attribute("href") or ""
    assert href.endswith("/result?download=1")
    assert page.request.get(href).headers["content-disposition"].startswith("attachment;")

    # The list belongs to this browser: it survives a reload, newest first.
    page.reload()
    expect(page.locator(".job-card")).to_have_count(2)
    assert page.locator(".job-card").first.get_attribute("data-job-id") == second_id
    expect(card(page, first_id).locator(".job-figure")).to_be_visible()
    # Finished jobs cannot be canceled: the page no longer keeps their tokens.
    assert list(stored_cancel_tokens(page).items()) == [(second_id, None), (first_id, None)]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "index-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SCREENSHOTS / "index-phone.png"), full_page=True)

    page.get_by_role("button", name="Clear list").click()
    expect(page.locator(".job-card")).to_have_count(0)
    expect(page.locator("#recent-empty")).to_be_visible()
    assert console.violations() == []


def test_invalid_input_is_explained_next_to_its_field(page: Page) -> None:
    page.goto("/")
    # The browser's own checks stop a too-small width before any request...
    page.get_by_label("Width").fill("5")
    page.get_by_role("button", name="Render chart").click()
    assert page.get_by_label("Width").evaluate("input => input.validity.rangeUnderflow")
    expect(page.locator(".job-card")).to_have_count(0)
    # ...and when the page lets it through, the server's 422 is shown next to the field.
    page.get_by_label("Width").evaluate("input => input.removeAttribute('min')")
    page.get_by_role("button", name="Render chart").click()
    expect(page.locator("#error-width")).to_contain_text("greater than or equal to 100")
    expect(page.get_by_label("Width")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Width")).to_have_attribute("aria-describedby", re.compile(r"\berror-width\b"))
    expect(page.locator("#form-error")).to_have_text("Please correct the fields marked below.")
    expect(page.locator(".job-card")).to_have_count(0)


def test_a_failed_job_shows_its_message_and_retry_resubmits_the_spec(
    page: Page, redis_url: str, redis_connection: Redis
) -> None:
    job = jobs.queue(redis_connection, "default").enqueue("plotjobs.queue.tasks.generate", "chart", {"width": 5})
    with running_worker(redis_url, redis_connection):
        page.goto(f"/jobs/{job.id}")
        expect(page.locator(".job-card")).to_have_attribute("data-state", "failed")
        expect(page.locator(".job-error")).to_contain_text(re.compile(r"^The render failed: .*width"))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "job-failed-desktop.png"), full_page=True)
        # The same spec again: the API refuses it up front, and the card says why.
        page.get_by_role("button", name="Try again").click()
        expect(page.locator(".job-error")).to_contain_text(re.compile(r"^Could not resubmit the chart: width: "))


def test_a_canceled_job_says_so_and_retry_opens_the_new_job(
    page: Page, base_url: str, redis_url: str, redis_connection: Redis
) -> None:
    created = requests.post(base_url + "/api/jobs", json={"title": "again", "format": "svg"}, timeout=5).json()
    jobs.fetch(redis_connection, created["id"]).cancel()
    page.goto(f"/jobs/{created['id']}")
    expect(page.locator(".job-card")).to_have_attribute("data-state", "canceled")
    expect(page.locator(".job-note")).to_have_text("This job was canceled before it finished.")
    expect(page.locator(".job-link")).to_have_text("again")
    with running_worker(redis_url, redis_connection):
        page.get_by_role("button", name="Try again").click()
        page.wait_for_url(re.compile(r"/jobs/(?!" + created["id"] + r")[0-9a-f-]{36}$"))
        expect(page.locator(".job-card")).to_have_attribute("data-state", "finished")
        expect(page.locator(".job-figure")).to_be_visible()
        expect(page.get_by_role("link", name="Download SVG")).to_be_visible()


def test_only_the_browser_that_asked_for_a_chart_can_cancel_it(
    page: Page, console: Console, base_url: str, redis_connection: Redis
) -> None:
    not_mine = requests.post(base_url + "/api/jobs", json={"title": "not mine"}, timeout=5).json()
    page.goto(f"/jobs/{not_mine['id']}")
    expect(page.locator(".job-card")).to_have_attribute("data-state", "queued")
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()

    page.goto("/")
    page.get_by_label("Title").fill("never mind")
    page.get_by_role("button", name="Render chart").click()
    mine = page.locator(".job-card").first
    expect(mine).to_have_attribute("data-state", "queued")
    job_id = mine.get_attribute("data-job-id") or ""
    [token] = stored_cancel_tokens(page).values()
    assert list(stored_cancel_tokens(page)) == [job_id] and len(token or "") == 43
    page.reload()

    # The status stream usually tells the card that the job ended before the DELETE's own
    # answer arrives: hold that answer back so every run takes that path.
    held: list[tuple[Route, APIResponse]] = []

    def hold_the_cancel_answer(route: Route) -> None:
        if route.request.method == "DELETE":
            held.append((route, route.fetch()))
        else:
            route.fallback()

    page.route(f"**/api/jobs/{job_id}", hold_the_cancel_answer)
    card(page, job_id).get_by_role("button", name="Cancel").click()
    expect(card(page, job_id)).to_have_attribute("data-state", "canceled")
    expect(card(page, job_id).locator(".cancel")).to_be_hidden()
    expect(card(page, job_id).locator(".cancel")).to_be_disabled()
    # A card that shows its job ended has dropped the token in the same step, answer or not.
    assert stored_cancel_tokens(page) == {job_id: None}
    [(route, answer)] = held
    assert answer.status == 200 and answer.json()["state"] == "canceled"
    route.fulfill(response=answer)
    expect(card(page, job_id).locator(".cancel")).to_be_enabled()
    expect(card(page, job_id).locator(".job-error")).to_be_hidden()
    assert stored_cancel_tokens(page) == {job_id: None}
    assert jobs.fetch(redis_connection, not_mine["id"]).get_status() == "queued"
    assert console.violations() == []


def sse(*statuses: dict[str, Any]) -> str:
    return "".join(f"event: status\ndata: {json.dumps(status)}\n\n" for status in statuses)


def test_the_page_follows_the_event_stream_contract(
    page: Page, base_url: str, redis_url: str, redis_connection: Redis
) -> None:
    with running_worker(redis_url, redis_connection):
        created = requests.post(base_url + "/api/jobs", json={"title": "streamed"}, timeout=5).json()
        job_id = created["id"]
        final = poll_until_finished(base_url, created["status_url"])
    base = {**final, "error": None, "ended_at": None}
    stream = sse(
        {**base, "state": "queued", "progress": 0.0, "stage": "queued", "position": 2},
        {**base, "state": "started", "progress": 0.3, "stage": "drawing", "position": None},
        {**base, "state": "started", "progress": 0.7, "stage": "encoding", "position": None},
        final,
    )
    polled: list[str] = []
    page.on("request", lambda request: polled.append(request.url) if request.url.endswith(job_id) else None)
    page.goto("/")
    page.route(
        f"**/api/jobs/{job_id}/events",
        lambda route: route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=stream),
    )
    page.evaluate(
        "([id, spec]) => localStorage.setItem('plotjobs.recent', JSON.stringify([{id, spec}]))",
        [job_id, {"title": "streamed", "format": "png"}],
    )
    record_progress(page)
    page.reload()
    expect(card(page, job_id)).to_have_attribute("data-state", "finished")
    expect(card(page, job_id).locator(".job-figure")).to_be_visible()
    values, stages = progress_history(page, job_id)
    assert values == [0, 30, 70, 100], values
    assert stages == ["waiting for the job…", "queued — 2 ahead of you", "drawing", "encoding", "done"], stages
    assert polled == [], "the page polled although the stream answered"


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-job-id"])
def test_an_unknown_job_page_says_not_found(page: Page, console: Console, redis_connection: Redis, job_id: str) -> None:
    page.goto(f"/jobs/{job_id}")
    expect(page.locator(".job-note")).to_have_text(
        "This job is unknown or has expired: finished charts are kept for a limited time."
    )
    expect(page.locator(".job-badge")).to_have_text("not found")
    expect(page.get_by_role("progressbar")).to_be_hidden()
    assert console.violations() == []


def test_the_tutorial_page_works_and_falls_back_to_polling_without_a_stream(
    page: Page, redis_url: str, redis_connection: Redis
) -> None:
    # Whatever the server offers, this page must also work when no event stream answers.
    page.route(re.compile(r"/api/jobs/[^/]+/events$"), lambda route: route.fulfill(status=404, body="{}"))
    polled: list[str] = []
    status_url = re.compile(r"/api/jobs/[^/]+$")
    page.on("request", lambda request: polled.append(request.url) if status_url.search(request.url) else None)
    with running_worker(redis_url, redis_connection):
        page.goto("/image_page")
        expect(page.locator(".job-card")).to_have_attribute("data-state", "finished")
        expect(page.locator(".job-figure")).to_be_visible()
    assert polled, "the page never polled the status endpoint"
    job_id = page.locator(".job-card").get_attribute("data-job-id")
    assert decoded_png(page, f"/api/jobs/{job_id}/result").shape[:2] == (500, 800)


def test_a_browser_post_without_the_csrf_token_is_refused(page: Page, redis_connection: Redis) -> None:
    page.goto("/")
    answer = page.evaluate(
        """async () => {
        const post = (headers) => fetch('/api/jobs', {
            method: 'POST', headers: {'Content-Type': 'application/json', ...headers}, body: '{}',
        }).then(async (r) => [r.status, await r.json()]);
        const token = document.querySelector('meta[name="csrf-token"]').content;
        return {without: await post({}), forged: await post({'X-CSRF-Token': 'forged'}),
                with: await post({'X-CSRF-Token': token})};
    }"""
    )
    assert answer["without"][0] == answer["forged"][0] == 403
    assert answer["without"][1]["error"] == "csrf_failed"
    assert answer["with"][0] == 202


def test_the_page_headers_forbid_foreign_code(base_url: str) -> None:
    for path, policy in (("/", "default-src 'self'"), ("/static/js/index.js", "default-src 'self'"),
                         ("/api/workers", "default-src 'none'")):  # fmt: skip
        response = requests.get(base_url + path, timeout=5)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"].startswith(policy)
    assert (
        requests.get(base_url + "/static/js/index.js", timeout=5).headers["Content-Type"].startswith("text/javascript")
    )


def test_a_redis_outage_shows_a_banner_that_clears_when_it_returns(browser: Browser, tmp_path: Path) -> None:
    port = free_port()
    redis_server = EmbeddedRedis(data_dir=tmp_path, port=port).start()
    try:
        with running_gunicorn(redis_server.url) as url:
            context = browser.new_context(base_url=url, viewport=DESKTOP)
            context.set_default_timeout(DEADLINE_MS)
            try:
                page = context.new_page()
                # Polling meets the outage on its own; a stream's behaviour is the stream's tests' business.
                page.route(re.compile(r"/api/jobs/[^/]+/events$"), lambda route: route.fulfill(status=404, body="{}"))
                page.goto("/")
                page.get_by_role("button", name="Render chart").click()
                expect(page.locator(".job-card")).to_have_attribute("data-state", "queued")
                banner = page.locator("#service-banner")
                expect(banner).to_be_hidden()
                redis_server.stop()
                expect(banner).to_be_visible()
                expect(banner).to_contain_text("unavailable")
                page.get_by_role("button", name="Render chart").click()
                expect(page.locator("#form-error")).to_contain_text("unavailable")
                redis_server = EmbeddedRedis(data_dir=tmp_path, port=port).start()
                expect(banner).to_be_hidden()
            finally:
                context.close()
    finally:
        redis_server.stop()
