"""The start page asks for any served generator: a Vega-Lite document, a report, or the chart, in a real Chromium."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from redis import Redis

from tests.support.processes import running_worker
from tests.system import test_browser
from tests.system.test_browser import Console, card, decoded_png, save_screenshots, stored_spec, submitted_job

# The chart page's browser fixtures (one Chromium and one gunicorn for the module), found here by pytest.
playwright = test_browser.playwright
browser = test_browser.browser
base_url = test_browser.base_url
context = test_browser.context
console = test_browser.console
page = test_browser.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# An isolated render starts a child process of its own: seconds on a loaded machine.
RENDER_MS = 60_000

BARS = {
    "data": {"values": [{"a": "A", "b": 28}, {"a": "B", "b": 55}, {"a": "C", "b": 43}]},
    "mark": "bar",
    "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}},
    "width": 200,
    "height": 120,
}


def choose(page: Page, generator: str) -> Locator:
    """Choose ``generator`` in the page's own control; its form, the one shown."""
    page.get_by_label("What to make").select_option(generator)
    section = page.locator(f'.generator-form[data-generator="{generator}"]')
    expect(section).to_be_visible()
    return section


def visible_labels(page: Page) -> list[str]:
    """The labels of the form's controls a person can see, in order."""
    labels = page.locator("#chart-form label:visible, #chart-form legend:visible")
    return [text.strip() for text in labels.all_inner_texts()]


def test_a_vega_lite_document_is_rendered_and_shown_as_a_png(
    page: Page, console: Console, redis_url: str, redis_connection: Redis, base_url: str
) -> None:
    page.goto("/")
    form = choose(page, "vega-lite")
    expect(page.locator("#data-step")).to_be_hidden()
    document = form.get_by_label("Vega-Lite document")
    expect(document).to_have_attribute("placeholder", re.compile(r'"mark": "bar"'))
    save_screenshots(page, "generator-vega-lite")
    document.fill(json.dumps(BARS, indent=2))
    form.get_by_text("More options").click()
    form.get_by_label("Scale").fill("2")
    with running_worker(redis_url, redis_connection):
        page.get_by_role("button", name="Render Vega-Lite").click()
        job_id = submitted_job(page)
        shown = card(page, job_id)
        expect(shown.locator(".job-image")).to_be_visible(timeout=RENDER_MS)
    # Without a title of its own, a job is named after its generator.
    expect(shown.locator(".job-link")).to_have_text("Vega-Lite")
    expect(shown.locator(".download")).to_have_text("Download PNG")
    pixels = decoded_png(page, shown.locator(".job-image").get_attribute("src") or "")
    # Scale 2: the 200 x 120 view, axes and all, at twice its size.
    assert pixels.shape[1] > 400 and pixels.shape[0] > 240
    spec = stored_spec(base_url, job_id)
    assert (spec["generator"], spec["vega_lite"], spec["format"], spec["scale"]) == ("vega-lite", BARS, "png", 2)
    stored = json.loads(page.evaluate("localStorage.getItem('plotjobs.recent')"))
    assert stored[0]["spec"]["generator"] == "vega-lite"
    # The recent list names it the same way after a reload.
    page.reload()
    expect(card(page, job_id).locator(".job-link")).to_have_text("Vega-Lite")
    expect(card(page, job_id).locator(".job-image")).to_be_visible()
    # So does the job's own page.
    page.goto(f"/jobs/{job_id}")
    expect(card(page, job_id).locator(".job-link")).to_have_text("Vega-Lite")
    expect(card(page, job_id).locator(".job-image")).to_be_visible()
    assert console.violations() == []


def test_a_document_that_fetches_or_is_not_json_is_explained_at_its_field(page: Page, console: Console) -> None:
    page.goto("/")
    # A chart field the browser would refuse does not hold up another generator's form.
    page.get_by_text("More options").click()
    page.get_by_label("Width").fill("5")
    form = choose(page, "vega-lite")
    document = form.get_by_label("Vega-Lite document")
    error = form.locator("#error-vega-lite-vega_lite")
    # The page checks the JSON itself, before any request.
    document.fill('{"mark": "bar",}')
    page.get_by_role("button", name="Render Vega-Lite").click()
    expect(error).to_contain_text("Not valid JSON")
    expect(document).to_have_attribute("aria-invalid", "true")
    expect(document).to_have_attribute("aria-describedby", re.compile(r"\berror-vega-lite-vega_lite\b"))
    document.fill("[1, 2]")
    document.blur()
    expect(error).to_have_text("Expected a JSON object ({...}).")
    # The server refuses a document that would fetch: its dotted path is shown at the document.
    with_url = {"data": {"url": "https://example.com/data.csv"}, "mark": "bar"}
    document.fill(json.dumps(with_url))
    expect(error).to_be_hidden()
    page.get_by_role("button", name="Render Vega-Lite").click()
    expect(error).to_have_text(
        "vega_lite.data.url: nothing is fetched by URL: give data inline as data.values (no image marks)"
    )
    expect(document).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-error")).to_have_text("Please correct the fields marked above.")
    expect(page.locator(".job-card")).to_have_count(0)
    assert console.violations() == []


def test_a_report_of_two_parts_is_offered_as_a_pdf_download(
    page: Page, console: Console, redis_url: str, redis_connection: Redis, base_url: str
) -> None:
    page.goto("/")
    form = choose(page, "report")
    form.get_by_label("Title").fill("Quarterly")
    parts = [{"text": "Sales rose in March."}, {"generator": "vega-lite", "spec": {"vega_lite": BARS}}]
    form.get_by_label("Parts").fill(json.dumps(parts))
    with running_worker(redis_url, redis_connection):
        page.get_by_role("button", name="Render Report").click()
        job_id = submitted_job(page)
        shown = card(page, job_id)
        expect(shown).to_have_attribute("data-state", "finished", timeout=RENDER_MS)
    expect(shown.locator(".job-link")).to_have_text("Quarterly")
    download = shown.get_by_role("link", name="Download PDF")
    expect(download).to_be_visible()
    expect(shown.locator(".job-note")).to_have_text("Your PDF is ready to download.")
    expect(shown.locator(".job-figure")).to_be_hidden()
    answer = page.request.get(download.get_attribute("href") or "")
    assert answer.ok and answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == f'attachment; filename="report-{job_id}.pdf"'
    assert answer.body().startswith(b"%PDF-")
    assert stored_spec(base_url, job_id)["generator"] == "report"
    assert console.violations() == []


def test_switching_generators_shows_each_ones_fields_and_keeps_what_was_typed(page: Page, console: Console) -> None:
    page.goto("/")
    chart_labels = visible_labels(page)
    assert chart_labels[0] == "What to make" and "Your data" in " ".join(chart_labels)
    expect(page.get_by_role("button", name="Render chart")).to_be_visible()

    choose(page, "vega-lite")
    assert visible_labels(page) == ["What to make", "Vega-Lite", "Vega-Lite document"]
    page.locator(".generator-form:visible").get_by_label("Vega-Lite document").fill('{"mark": "point"}')

    report = choose(page, "report")
    assert visible_labels(page) == ["What to make", "Report", "Title", "Parts"]
    report.get_by_text("More options").click()
    expect(report.get_by_label("Format")).to_have_value("pdf")
    expect(page.get_by_role("button", name="Render Report")).to_be_visible()

    choose(page, "chart")
    assert visible_labels(page) == chart_labels
    expect(page.locator('.generator-form[data-generator="vega-lite"]')).to_be_hidden()
    choose(page, "vega-lite")
    expect(page.locator(".generator-form:visible").get_by_label("Vega-Lite document")).to_have_value(
        '{"mark": "point"}'
    )
    assert console.violations() == []


def test_keyboard_only_a_canceled_report_is_tried_again_with_its_generator(
    page: Page, console: Console, base_url: str
) -> None:
    # No worker: the job waits in the queue until it is canceled.
    page.goto("/")
    chooser = page.get_by_label("What to make")
    chooser.focus()
    page.keyboard.press("End")
    expect(chooser).to_have_value("report")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Title").locator("visible=true")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.type('[{"text": "Hello"}]')
    for _ in range(3):
        if page.evaluate("document.activeElement.id") == "submit-chart":
            break
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Render Report")).to_be_focused()
    page.keyboard.press("Enter")
    job_id = submitted_job(page)
    shown = card(page, job_id)
    expect(shown.locator(".job-link")).to_have_text("Report")
    shown.get_by_role("button", name="Cancel").click()
    expect(shown).to_have_attribute("data-state", "canceled")
    shown.get_by_role("button", name="Try again").click()
    retried = submitted_job(page, 2)
    assert retried != job_id
    spec: dict[str, Any] = stored_spec(base_url, retried)
    assert spec["generator"] == "report" and spec["parts"] == [{"text": "Hello", "generator": None, "spec": None}]
    assert console.violations() == []
