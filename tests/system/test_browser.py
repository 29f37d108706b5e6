"""The pages in a real headless Chromium, against a real gunicorn, worker and Redis."""

from __future__ import annotations

import csv
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


def open_more_options(page: Page) -> None:
    """Unfold the rarely changed fields (size, dpi, theme, format, the demo's seed)."""
    page.get_by_text("More options").click()
    expect(page.locator("details.more-options")).to_have_attribute("open", "")


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
    open_more_options(page)
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
    open_more_options(page)
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
    expect(page.locator("#form-error")).to_have_text("Please correct the fields marked above.")
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


# The data step and the mapping step of the start page.

# A stored series holds its data: the web app replaced every column reference with it.
NO_COLUMNS = {"x_column": None, "y_column": None, "values_column": None}
SALES_TSV = "day\tnorth\tsouth\n2024-03-01\t3\t5.5\n2024-03-02\t4\t2\n2024-03-03\t1.25\t7\n"


def paste(page: Page, text: str) -> None:
    page.get_by_label("CSV, or cells copied from a spreadsheet").fill(text)


def submitted_job(page: Page, count: int = 1) -> str:
    """The id of the newest card once there are ``count`` cards."""
    expect(page.locator(".job-card")).to_have_count(count)
    return page.locator(".job-card").first.get_attribute("data-job-id") or ""


# Chromium does not hand a multipart body with files to Playwright: the page's own fetch records it.
_RECORD_FORMS = """(() => {
    window.sentForms = [];
    const original = window.fetch;
    window.fetch = (url, options = {}) => {
        if (options.body instanceof FormData) {
            window.sentForms.push(Promise.all([...options.body.entries()].map(async ([name, value]) =>
                typeof value === 'string' ? {name, value} : {
                    name, filename: value.name, type: value.type, size: value.size,
                    text: await value.slice(0, 4096).text(),
                })));
        }
        return original(url, options);
    };
})()"""


def record_forms(page: Page) -> None:
    """From the next load of ``page`` on, keep every multipart form it sends."""
    page.add_init_script(_RECORD_FORMS)


def sent_forms(page: Page) -> list[dict[str, dict[str, Any]]]:
    """Each multipart form the page sent: its parts by name."""
    forms = page.evaluate("Promise.all(window.sentForms)")
    return [{part["name"]: part for part in form} for form in forms]


def stored_spec(base_url: str, job_id: str) -> dict[str, Any]:
    response = requests.get(f"{base_url}/api/jobs/{job_id}/spec", timeout=5)
    assert response.status_code == 200, response.text
    spec: dict[str, Any] = response.json()
    return spec


def preview_header(page: Page) -> list[str]:
    return [text.strip() for text in page.locator("#preview-table thead th").all_text_contents()]


def save_screenshots(page: Page, name: str) -> list[Path]:
    """The page at desktop and phone width, for a person to look at; the phone view must not scroll sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    paths = [SCREENSHOTS / f"{name}-desktop.png", SCREENSHOTS / f"{name}-phone.png"]
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(paths[0]), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(paths[1]), full_page=True)
    page.set_viewport_size(DESKTOP)
    print("screenshots:", *paths)
    return paths


SALES_CSV = "day,north,south\r\n2024-03-01,3,5.5\r\n2024-03-02,4,2\r\n2024-03-03,1.25,7\r\n"


@pytest.mark.parametrize(("pasted", "separator"), [(SALES_TSV, "tab"), (SALES_CSV.replace("\r\n", "\n"), "comma")])
def test_pasted_csv_or_spreadsheet_cells_map_to_two_series_sent_as_the_documented_form(
    page: Page, console: Console, base_url: str, redis_url: str, redis_connection: Redis, pasted: str, separator: str
) -> None:
    record_forms(page)
    page.goto("/")
    paste(page, pasted)
    expect(page.locator("#data-summary")).to_have_text(f"3 rows · 3 columns · {separator}-separated")
    assert preview_header(page) == ["Row", "day date", "north number", "south number"]
    expect(page.locator("#preview-table tbody tr")).to_have_count(3)
    # The x column is the first, the first number column is a series; add the second.
    expect(page.get_by_label("X column")).to_have_value("day")
    expect(page.get_by_role("checkbox", name="north")).to_be_checked()
    page.get_by_role("checkbox", name="south").check()
    page.get_by_label("Title").fill("North & south")
    # Only what applies: no bins for a line, no demo seed once there is data.
    expect(page.get_by_label("Bins")).to_be_hidden()
    expect(page.locator(".field:has(#field-seed)")).to_have_attribute("hidden", "")
    page.get_by_role("button", name="Render chart").click()
    job_id = submitted_job(page)
    [form] = sent_forms(page)
    assert set(form) == {"spec", "csv"}
    assert json.loads(form["spec"]["value"])["series"] == [
        {"x_column": "day", "y_column": "north"},
        {"x_column": "day", "y_column": "south"},
    ]
    # Pasted CSV goes out as it is; a spreadsheet's tabs as CSV, which is what the API reads.
    assert form["csv"]["filename"] == "data.csv" and form["csv"]["type"] == "text/csv"
    assert form["csv"]["text"] == (pasted if separator == "comma" else SALES_CSV)
    with running_worker(redis_url, redis_connection):
        expect(card(page, job_id)).to_have_attribute("data-state", "finished")
        expect(card(page, job_id).locator(".job-figure")).to_be_visible()
    save_screenshots(page, f"index-data-{separator}")
    expect(card(page, job_id).locator(".job-link")).to_have_text("North & south")
    spec = stored_spec(base_url, job_id)
    days = ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert spec["kind"] == "line" and spec["title"] == "North & south"
    assert spec["series"] == [
        {**NO_COLUMNS, "name": "north", "x": days, "y": [3.0, 4.0, 1.25], "values": None},
        {**NO_COLUMNS, "name": "south", "x": days, "y": [5.5, 2.0, 7.0], "values": None},
    ]
    assert spec["seed"] is None and spec["start"] is None
    assert console.violations() == []


def test_a_file_chosen_or_dropped_is_read_with_its_bom_crlf_and_quotes_and_charted(
    page: Page, console: Console, base_url: str, redis_url: str, redis_connection: Redis, tmp_path: Path
) -> None:
    upload = tmp_path / "fruit.csv"
    upload.write_bytes(
        '\ufefffruit,"sold, kg",note\r\n'
        '"Apples, green",3,"said ""fresh"""\r\nPears,2,"two\r\nlines"\r\n\r\nPlums,5,\r\n'.encode()
    )
    record_forms(page)
    page.goto("/")
    page.get_by_label("Upload a file").check()
    page.get_by_label("A CSV or TSV file (UTF-8), chosen or dropped here").set_input_files(str(upload))
    expect(page.locator("#data-summary")).to_have_text("fruit.csv · 3 rows · 3 columns · comma-separated")
    assert preview_header(page) == ["Row", "fruit text", "sold, kg number", "note text"]
    rows = page.locator("#preview-table tbody tr")
    expect(rows.nth(0).locator("td")).to_have_text(["Apples, green", "3", 'said "fresh"'])
    expect(rows.nth(1).locator("td")).to_have_text(["Pears", "2", "two\nlines"])
    expect(page.locator("#data-errors li")).to_have_count(0)
    page.get_by_label("Chart kind").select_option("pie")
    expect(page.get_by_label("Labels column")).to_have_value("fruit")
    expect(page.get_by_label("Values column")).to_have_value("sold, kg")
    page.get_by_role("button", name="Render chart").click()
    pie_id = submitted_job(page)
    [form] = sent_forms(page)
    # A CSV file goes out as it is, byte for byte.
    assert form["csv"]["size"] == upload.stat().st_size

    # A TSV file dropped on the data step replaces the upload.
    page.evaluate(
        """() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(['size\\tweight\\n1\\t2.5\\n2\\t3.5\\n3\\t3\\n'], 'dropped.tsv'));
        const step = document.getElementById('data-step');
        for (const type of ['dragenter', 'dragover', 'drop']) {
            step.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }
    }"""
    )
    expect(page.locator("#data-summary")).to_have_text("dropped.tsv · 3 rows · 2 columns · tab-separated")
    expect(page.locator("#data-file-name")).to_contain_text("dropped.tsv")
    assert page.get_by_label("A CSV or TSV file (UTF-8), chosen or dropped here").evaluate(
        "input => input.files[0].name"
    ) == ("dropped.tsv")
    page.get_by_label("Chart kind").select_option("histogram")
    page.get_by_label("Values column").select_option("weight")
    page.get_by_label("Bins").fill("4")
    page.get_by_role("button", name="Render chart").click()
    histogram_id = submitted_job(page, 2)
    with running_worker(redis_url, redis_connection):
        for job_id in (pie_id, histogram_id):
            expect(card(page, job_id)).to_have_attribute("data-state", "finished")
    pie = stored_spec(base_url, pie_id)
    assert pie["kind"] == "pie"
    assert pie["series"] == [
        {
            **NO_COLUMNS,
            "name": "sold, kg",
            "x": ["Apples, green", "Pears", "Plums"],
            "y": [3.0, 2.0, 5.0],
            "values": None,
        }
    ]
    histogram = stored_spec(base_url, histogram_id)
    assert (histogram["kind"], histogram["bins"]) == ("histogram", 4)
    assert histogram["series"] == [{**NO_COLUMNS, "name": "weight", "x": None, "y": None, "values": [2.5, 3.5, 3.0]}]
    assert console.violations() == []


def test_a_broken_csv_shows_each_error_at_its_row_before_and_after_submitting(page: Page, console: Console) -> None:
    page.goto("/")
    good = "".join(f"2024-01-{day:02d},{day},{day * 2}\n" for day in range(1, 14))
    paste(page, "day,north,south\n" + good + "2024-01-14,14\n" + "2024-01-15,x,30\n")
    expect(page.locator("#data-summary")).to_have_text("15 rows · 3 columns · comma-separated · 1 error")
    # Row 14 lies past the ten-row preview: it is shown anyway, in its place, with its error.
    faulty = page.locator('#preview-table tbody tr[data-row="14"]')
    expect(faulty).to_have_class(re.compile(r"\binvalid\b"))
    expect(faulty.locator("xpath=following-sibling::tr[1]")).to_have_text("Row 14, line 15: 2 fields; the header has 3")
    expect(page.locator("#data-errors li")).to_have_text(["Row 14, line 15: 2 fields; the header has 3"])
    expect(page.locator("#preview-table .row-gap").first).to_have_text("⋯ 3 more rows")
    # A y column with text in it is flagged as soon as it is chosen.
    page.get_by_role("checkbox", name="north").check()
    expect(page.locator("#mapping-hint")).to_have_text("Column north holds “x” in row 15: it needs numbers.")

    # The server's 422 names the same line; the page puts it on that row.
    page.get_by_role("button", name="Render chart").click()
    expect(page.locator("#data-server-error")).to_have_text(
        "The server refused the data (line 15): line 15 has 2 fields; the header has 3"
    )
    expect(faulty.locator("xpath=following-sibling::tr[2]")).to_have_text(
        "Refused by the server: line 15 has 2 fields; the header has 3"
    )
    expect(page.locator("#form-error")).to_have_text("Please correct the fields marked above.")
    expect(page.locator(".job-card")).to_have_count(0)
    save_screenshots(page, "index-data-errors")

    # Fixed, the text in north is the next thing the server names: by its data row and column.
    paste(page, "day,north,south\n" + good + "2024-01-15,x,30\n")
    expect(page.locator("#data-errors li")).to_have_count(0)
    page.get_by_role("button", name="Render chart").click()
    expect(page.locator("#data-server-error")).to_contain_text("(Row 14, column north): data row 14 of column 'north'")
    expect(page.locator('#preview-table tbody tr[data-row="14"]')).to_have_class(re.compile(r"\brefused\b"))

    # A rule about a series is named at the columns that fill it.
    paste(page, "fruit,change\napples,-1\npears,2\n")
    page.get_by_label("Chart kind").select_option("pie")
    page.get_by_role("button", name="Render chart").click()
    expect(page.locator("#error-mapping")).to_have_text("Series change: pie wedge sizes cannot be negative")
    page.get_by_label("Chart kind").select_option("line")

    # A field of the chart is named next to that field, as before.
    paste(page, "day,north\n2024-01-01,1\n")
    page.get_by_label("Title").fill("bell \u0007")
    page.get_by_role("button", name="Render chart").click()
    expect(page.locator("#error-title")).to_contain_text("control character U+0007")
    expect(page.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".job-card")).to_have_count(0)
    assert console.violations() == []


def visible_fields(page: Page) -> list[str]:
    """The names of the spec inputs and mapping controls a person can reach now (with "more options" open)."""
    names: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('#chart-step [data-spec-field], #chart-step select, #map-y')]
            .filter((control) => !control.disabled && !control.closest('[hidden]'))
            .map((control) => control.name || control.id)"""
    )
    return sorted(set(names))


def test_each_kind_shows_only_its_fields_and_the_rare_ones_fold_away(page: Page) -> None:
    page.goto("/")
    save_screenshots(page, "index-start")
    more = page.locator("details.more-options")
    expect(more).not_to_have_attribute("open", "")
    for name in ("width", "height", "dpi", "theme", "format"):
        expect(more.locator(f"#field-{name}")).to_be_hidden()
    # No data: the demo chart, with its seed and first day, and no columns to map.
    assert visible_fields(page) == sorted(
        ["kind", "title", "x_label", "y_label", "x_type", "legend", "theme", "seed", "start", "format", "width",
         "height", "dpi"]
    )  # fmt: skip
    more.locator("summary").click()
    expect(page.get_by_label("Width")).to_be_visible()
    paste(page, SALES_TSV)
    expect(page.get_by_label("X column")).to_be_visible()
    common = ["kind", "title", "legend", "theme", "format", "width", "height", "dpi"]
    expected = {
        "line": [*common, "map-x", "map-y", "x_label", "y_label", "x_type"],
        "scatter": [*common, "map-x", "map-y", "x_label", "y_label", "x_type"],
        "histogram": [*common, "map-values", "x_label", "y_label", "bins"],
        "pie": [*common, "map-labels", "map-values"],
    }
    for kind, names in expected.items():
        page.get_by_label("Chart kind").select_option(kind)
        assert visible_fields(page) == sorted(names), kind
    expect(page.get_by_label("Bins")).to_be_hidden()
    page.get_by_label("Chart kind").select_option("histogram")
    expect(page.get_by_label("Bins")).to_be_visible()
    expect(page.get_by_label("X column")).to_be_hidden()
    # Back to no data: the demo's own fields return.
    paste(page, "")
    expect(page.get_by_label("Random seed")).to_be_visible()
    expect(page.locator("#mapping")).to_be_hidden()


def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until the element ``selector`` names has the focus."""
    passed = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return
        passed.append(
            page.evaluate("() => document.activeElement.id || document.activeElement.getAttribute('aria-label')")
        )
    raise AssertionError(f"Tab never reached {selector}; it went through {passed}")


def test_keyboard_only_a_typed_table_becomes_a_bar_chart(
    page: Page, console: Console, base_url: str, redis_url: str, redis_connection: Redis
) -> None:
    page.goto("/")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#chart-form :is(input, select, textarea, button, summary)')]
            .filter((control) => !(control.labels && control.labels.length) && !control.getAttribute('aria-label')
                                 && !control.textContent.trim())
            .map((control) => control.outerHTML)"""
    )
    assert unlabelled == []
    tab_to(page, "#source-paste")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_label("Type a table")).to_be_checked()
    for selector, text in (
        ('[aria-label="Name of column 1"]', "item"),
        ('[aria-label="Name of column 2"]', "price"),
        ('[aria-label="Row 1, column item"]', "Tea"),
        ('[aria-label="Row 1, column price"]', "3"),
        ('[aria-label="Row 2, column item"]', "Cake"),
        ('[aria-label="Row 2, column price"]', "4.5"),
    ):
        tab_to(page, selector)
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(text)
    # A new row takes the focus; the empty third row goes.
    tab_to(page, "#add-row")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Row 4, column item")).to_be_focused()
    page.keyboard.type("Jam")
    page.keyboard.press("Tab")
    page.keyboard.type("2")
    page.get_by_label("Row 4, column item").focus()
    tab_to(page, '[aria-label="Remove row 3"]')
    page.keyboard.press("Enter")
    expect(page.locator("#data-table tbody tr")).to_have_count(3)
    expect(page.locator("#data-summary")).to_have_text("3 rows · 2 columns · comma-separated")
    # A column can be added and removed again.
    tab_to(page, "#add-column")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name of column 3")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Remove column 3")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#data-table thead input")).to_have_count(2)
    save_screenshots(page, "index-table")

    tab_to(page, "#field-kind")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Chart kind")).to_have_value("bar")
    tab_to(page, "#map-x")
    expect(page.get_by_label("X column")).to_have_value("item")
    tab_to(page, 'input[name="y-column"][value="price"]')
    expect(page.get_by_role("checkbox", name="price")).to_be_checked()
    tab_to(page, "#field-title")
    page.keyboard.type("Prices")
    tab_to(page, ".more-options summary")
    tab_to(page, "#submit-chart")
    page.keyboard.press("Enter")
    job_id = submitted_job(page)
    with running_worker(redis_url, redis_connection):
        expect(card(page, job_id)).to_have_attribute("data-state", "finished")
    spec = stored_spec(base_url, job_id)
    assert (spec["kind"], spec["title"], spec["legend"]) == ("bar", "Prices", None)
    assert spec["series"] == [
        {**NO_COLUMNS, "name": "price", "x": ["Tea", "Cake", "Jam"], "y": [3.0, 4.5, 2.0], "values": None}
    ]
    assert console.violations() == []


# A task longer than this is felt as a page that stops answering; reading the 30 MB file
# below in one go takes about twice as long on a 2-core machine, in slices about 60 ms.
LONGEST_TASK_MS = 500
_RECORD_LONG_TASKS = """(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => list.getEntries().forEach((entry) => window.longTasks.push(entry.duration)))
        .observe({type: 'longtask'});
})()"""


def test_a_million_row_file_is_checked_without_freezing_the_page_and_sent_whole(
    page: Page, console: Console, tmp_path: Path
) -> None:
    big = tmp_path / "million.csv"
    with big.open("w") as out:
        out.write("n,value,share,label\n")
        out.writelines(f"{n},{n % 997 / 7:.3f},{n * 3 % 1000 / 9:.4f},label {n % 50}\n" for n in range(1_000_000))
        out.write("1000000,oops,extra\n")
    page.add_init_script(_RECORD_LONG_TASKS)
    record_forms(page)
    page.goto("/")
    page.get_by_label("Upload a file").check()
    page.get_by_label("A CSV or TSV file (UTF-8), chosen or dropped here").set_input_files(str(big))
    expect(page.locator("#data-summary")).to_have_text(
        "million.csv · 1,000,001 rows · 4 columns · comma-separated · 1 error", timeout=120_000
    )
    # The preview holds ten rows and the faulty last one, not a million.
    assert page.locator("#preview-table tbody tr[data-row]").count() == 11
    expect(page.locator("#data-errors li")).to_have_text(["Row 1,000,001, line 1,000,002: 3 fields; the header has 4"])
    longest = max(page.evaluate("window.longTasks"), default=0)
    assert longest < LONGEST_TASK_MS, f"the page stopped answering for {longest} ms"
    with page.expect_response(lambda response: response.url.endswith("/api/jobs"), timeout=60_000) as answer:
        page.get_by_role("button", name="Render chart").click()
    # The whole file goes to the server, which reads it to its last line and refuses it there.
    assert answer.value.status == 422, answer.value.status
    [detail] = answer.value.json()["details"]
    assert detail["field"] == "csv" and "line 1000002" in detail["message"]
    expect(page.locator("#data-server-error")).to_contain_text(detail["message"])
    expect(page.locator(".job-card")).to_have_count(0)
    [form] = sent_forms(page)
    assert form["csv"]["size"] == big.stat().st_size
    assert console.violations() == []


def test_a_million_row_file_charts_through_the_page(
    page: Page, console: Console, base_url: str, redis_url: str, redis_connection: Redis, tmp_path: Path
) -> None:
    big = tmp_path / "readings.csv"
    with big.open("w") as out:
        out.write("second,reading\n")
        out.writelines(f"{n},{(n * 7919) % 10007 / 100:.2f}\n" for n in range(1_000_000))
    page.goto("/")
    page.get_by_label("Upload a file").check()
    page.get_by_label("A CSV or TSV file (UTF-8), chosen or dropped here").set_input_files(str(big))
    expect(page.locator("#data-summary")).to_have_text(
        "readings.csv · 1,000,000 rows · 2 columns · comma-separated", timeout=120_000
    )
    expect(page.get_by_label("X column")).to_have_value("second")
    expect(page.get_by_role("checkbox", name="reading")).to_be_checked()
    page.get_by_label("Title").fill("A million readings")
    page.get_by_role("button", name="Render chart").click()
    job_id = submitted_job(page)
    with running_worker(redis_url, redis_connection):
        expect(card(page, job_id)).to_have_attribute("data-state", "finished", timeout=60_000)
        expect(card(page, job_id).locator(".job-figure")).to_be_visible()
    # The job holds a reference, not the data: its hash stays small whatever the upload's size.
    assert redis_connection.memory_usage(f"rq:job:{job_id}", samples=0) < 8_000
    spec = stored_spec(base_url, job_id)
    [series] = spec["series"]
    assert (len(series["x"]), len(series["y"])) == (1_000_000, 1_000_000)
    assert series["y"][:3] == [0.0, 79.19, 58.31] and series["x"][-1] == 999_999
    assert console.violations() == []


# Text the page and the server must read alike: quotes, doubled quotes, CRLF, lone CR,
# newlines inside quotes, blank lines, no final newline, and two malformed ones.
TRICKY_CSV = [
    "a,b\r\n1,2\r\n",
    'a,b\n"x\r\ny",2\n',
    '"a""b",c\r\n,\r\n\r\n  \r\n',
    "a,b",
    'a,"b"\n"",""\n',
    "a,b\r1,2\r3,4",
    '"q","r"\r\n"1\n2\n3",4\r\n5,6',
    "tab\tseparated,still one\n1\t2\n",
    'a,b\n"x"y,2\n',
    'a,b\n1,"never closed\n2,3\n',
]


def python_csv(text: str, separator: str) -> dict[str, Any]:
    """What the server's strict csv.reader makes of ``text``: records with their lines, or the error's line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    records: list[list[Any]] = []
    try:
        for row in reader:
            records.append([row, reader.line_num])
    except csv.Error:
        return {"records": records, "error_line": reader.line_num}
    return {"records": records, "error_line": None}


_READ_IN_CHUNKS = """async ([text, separator, size]) => {
    const { CsvReader } = await import('/static/js/table.js');
    const records = [];
    let errorLine = null;
    const reader = new CsvReader(separator, {
        onRecord: (fields, line) => records.push([fields, line]),
        onError: (line) => { if (errorLine === null) errorLine = line; },
    });
    for (let at = 0; at < text.length; at += size) reader.feed(text.slice(at, at + size));
    reader.end();
    return { records, errorLine };
}"""


@pytest.mark.parametrize("text", TRICKY_CSV)
def test_the_page_reads_csv_as_the_server_does_in_chunks_of_any_size(page: Page, text: str) -> None:
    page.goto("/")
    for separator in (",", "\t"):
        expected = python_csv(text, separator)
        for size in (1, 2, 3, 5, len(text)):
            read = page.evaluate(_READ_IN_CHUNKS, [text, separator, size])
            if expected["error_line"] is None:
                assert read["errorLine"] is None, (separator, size)
                assert read["records"] == expected["records"], (separator, size)
            else:
                # Python stops at its first error; the page reads on, to list every one.
                assert read["errorLine"] == expected["error_line"], (separator, size)
                assert read["records"][: len(expected["records"])] == expected["records"], (separator, size)


def test_a_data_chart_tried_again_is_asked_again_with_the_data_its_job_read(
    page: Page, console: Console, base_url: str
) -> None:
    page.goto("/")
    paste(page, SALES_TSV)
    expect(page.get_by_label("X column")).to_have_value("day")
    page.get_by_role("button", name="Render chart").click()
    first = submitted_job(page)
    card(page, first).get_by_role("button", name="Cancel").click()
    expect(card(page, first)).to_have_attribute("data-state", "canceled")
    # The list keeps the small spec that names the columns, never the data.
    stored = json.loads(page.evaluate("localStorage.getItem('plotjobs.recent')"))
    assert stored[0]["spec"]["series"] == [{"x_column": "day", "y_column": "north"}]
    card(page, first).get_by_role("button", name="Try again").click()
    second = submitted_job(page, 2)
    assert second != first
    assert stored_spec(base_url, second)["series"] == stored_spec(base_url, first)["series"]
    assert stored_spec(base_url, second)["series"][0]["y"] == [3, 4, 1.25]
    assert console.violations() == []


def test_the_recent_list_keeps_a_small_spec_and_leaves_a_large_one_with_its_job(page: Page) -> None:
    page.goto("/")
    kept = page.evaluate(
        """async () => {
        const { loadRecent, remember } = await import('/static/js/recent.js');
        const y = Array.from({length: 5000}, (_, n) => n);
        remember('small', {title: 't', series: [{x_column: 'a', y_column: 'b'}]});
        remember('large', {title: 't', series: [{y}]});
        return Object.fromEntries(loadRecent().map((item) => [item.id, item.spec]));
    }"""
    )
    assert kept == {"small": {"title": "t", "series": [{"x_column": "a", "y_column": "b"}]}, "large": None}
