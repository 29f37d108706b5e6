"""The built-in generators (chart, vega-lite, report) through the whole service: gunicorn, real workers, Redis.

One gunicorn and one worker serve the whole module (a worker's start and warm-up cost seconds);
the recovery tests kill that worker mid-render and leave their rescuer serving in its place.
Every spec is small, so the module stays within about a minute and a half.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from xml.etree import ElementTree

import psutil
import pytest
import requests
from PIL import Image
from pypdf import PdfReader
from redis import Redis

from plotjobs import generators, keys
from plotjobs.queue import jobs
from plotjobs.render.report import CELL_HEIGHT, CELL_WIDTH, SHEET_TITLE_PIXELS
from tests.support.processes import running_gunicorn, running_worker
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TERMINAL = {"finished", "failed", "canceled", "stopped"}
# Short liveness and sweep periods keep the recovery quick, as in test_faults.py.
FAST = {"WORKER_LIVENESS_TIMEOUT": "3", "SWEEP_INTERVAL": "1"}
ISOLATED_CHILD = "plotjobs.queue.isolation"


def bars(label: str) -> dict[str, Any]:
    """A small Vega-Lite bar chart; ``label`` makes each test's document (and so its job) its own."""
    return {
        "title": label,
        "width": 120,
        "height": 80,
        "data": {"values": [{"a": "A", "b": 3}, {"a": "B", "b": 5}]},
        "mark": "bar",
        "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}},
    }


def report(label: str, file_format: str) -> dict[str, Any]:
    """A three-part report: text, a seeded chart and a Vega-Lite document (reproducible)."""
    return {
        "generator": "report",
        "title": label,
        "format": file_format,
        "parts": [
            {"text": f"Hello from {label}"},
            {"generator": "chart", "spec": {"seed": 3, "width": 300, "height": 200}},
            {"generator": "vega-lite", "spec": {"vega_lite": bars(label)}},
        ],
    }


class Events:
    """Every job's progress events, subscribed to before anything is submitted, kept by job id.

    Pub/sub channels are shared by all databases of the server: events of other jobs are set aside.
    """

    def __init__(self, connection: Redis) -> None:
        self.pubsub = connection.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(keys.events("*"))
        self.seen: dict[str, list[dict[str, Any]]] = {}

    def _read(self) -> None:
        message = self.pubsub.get_message(timeout=0.2)
        if message is not None and message["type"] == "pmessage":
            event = json.loads(message["data"])
            self.seen.setdefault(str(event.get("id")), []).append(event)

    def until_end(self, job_id: str, timeout: float = 60) -> list[dict[str, Any]]:
        """The job's events, in order, up to and including the one that says it ended."""

        def ended() -> bool:
            self._read()
            return any(event.get("state") in TERMINAL for event in self.seen.get(job_id, []))

        wait_for(ended, timeout=timeout, interval=0, what=f"job {job_id}'s last event")
        return self.seen[job_id]

    def close(self) -> None:
        self.pubsub.close()


class Service:
    """gunicorn and the module's current worker, on the test database."""

    def __init__(self, redis_url: str, connection: Redis, stack: ExitStack) -> None:
        self.redis_url = redis_url
        self.connection = connection
        self.stack = stack
        self.base_url = stack.enter_context(running_gunicorn(redis_url, workers=1, **FAST))
        self.worker = self.start_worker("builtin-1")
        self.events = Events(connection)
        stack.callback(self.events.close)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """A single render worker serving every generator; it becomes the module's worker."""
        command = [sys.executable, "-m", "plotjobs", "worker", "--single", "--name", name]
        self.worker = self.stack.enter_context(running_worker(self.redis_url, self.connection, command=command, **FAST))
        return self.worker

    def submit(self, document: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.base_url}/api/jobs", json=document, timeout=30)

    def accepted(self, document: dict[str, Any]) -> dict[str, Any]:
        answer = self.submit(document)
        assert answer.status_code in (200, 202), answer.text
        body: dict[str, Any] = answer.json()
        return body

    def status(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = requests.get(f"{self.base_url}/api/jobs/{job_id}", timeout=10).json()
        return body

    def wait_for_end(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            status = self.status(job_id)
            return status if status["state"] in TERMINAL else None

        return wait_for(ended, timeout=timeout, interval=0.05, what=f"job {job_id} to end")

    def result(self, job_id: str) -> requests.Response:
        answer = requests.get(f"{self.base_url}/api/jobs/{job_id}/result", timeout=30)
        assert answer.status_code == 200, answer.text
        return answer


@pytest.fixture(scope="module")
def service(redis_url: str) -> Iterator[Service]:
    connection = Redis.from_url(redis_url)
    connection.flushdb()
    try:
        with ExitStack() as stack:
            yield Service(redis_url, connection, stack)
    finally:
        connection.flushdb()
        connection.close()


def stage_names(events: list[dict[str, Any]]) -> list[str]:
    return [str(event["stage"]) for event in events]


CHART_STAGES = ["started", "preparing data", "drawing", "encoding", "storing", "done"]
VEGA_LITE_STAGES = ["started", "compiling", "checking size", "encoding", "storing", "done"]
REPORT_STAGES = [
    "started", "part 1 of 3: text", "part 2 of 3: chart", "part 3 of 3: vega-lite", "encoding", "storing", "done",
]  # fmt: skip


def decode_png(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def svg_size(data: bytes) -> tuple[float, float]:
    root = ElementTree.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
    return float(root.attrib["width"].removesuffix("pt")), float(root.attrib["height"].removesuffix("pt"))


def pdf_pages(data: bytes) -> PdfReader:
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 1
    return reader


def render(service: Service, document: dict[str, Any], stages: list[str]) -> tuple[requests.Response, list[str]]:
    """Submit, wait for the job to finish, check its stages in order; its file and content type."""
    job_id = service.accepted(document)["id"]
    events = service.events.until_end(job_id)
    assert events[-1]["state"] == "finished", events[-1]
    assert stage_names(events) == stages
    fractions = [float(event["progress"]) for event in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0, fractions
    return service.result(job_id), stage_names(events)


@pytest.mark.parametrize("file_format", ["png", "svg", "pdf"])
def test_every_chart_format_is_rendered_by_a_worker_and_decodes(service: Service, file_format: str) -> None:
    document = {"seed": 1, "width": 320, "height": 200, "dpi": 100, "format": file_format, "title": "formats"}
    answer, _ = render(service, document, CHART_STAGES)
    assert answer.headers["Content-Type"].startswith(generators.get("chart").content_types[file_format])
    if file_format == "png":
        assert decode_png(answer.content) == (320, 200)
    elif file_format == "svg":
        assert svg_size(answer.content) == pytest.approx((320 / 100 * 72, 200 / 100 * 72))
    else:
        reader = pdf_pages(answer.content)
        assert len(reader.pages) == 1
        box = reader.pages[0].mediabox
        assert (float(box.width), float(box.height)) == pytest.approx((230.4, 144.0))


@pytest.mark.parametrize("file_format", ["png", "svg", "pdf"])
def test_every_vega_lite_format_is_rendered_by_a_worker_and_decodes(service: Service, file_format: str) -> None:
    document = {"generator": "vega-lite", "vega_lite": bars(f"vega-lite {file_format}"), "format": "svg"}
    svg, _ = render(service, document, VEGA_LITE_STAGES)
    width, height = svg_size(svg.content)  # the drawing's own size: the document's view plus its axes and title
    assert width > 120 and height > 80
    if file_format == "svg":
        assert svg.headers["Content-Type"].startswith("image/svg+xml")
        return
    extra = {"ppi": 144} if file_format == "png" else {}
    answer, _ = render(service, {**document, "format": file_format, **extra}, VEGA_LITE_STAGES)
    assert answer.headers["Content-Type"].startswith(generators.get("vega-lite").content_types[file_format])
    if file_format == "png":
        assert decode_png(answer.content) == (round(width * 2), round(height * 2))  # 144 ppi: two pixels a point
    else:
        reader = pdf_pages(answer.content)
        assert len(reader.pages) == 1
        box = reader.pages[0].mediabox
        assert (float(box.width), float(box.height)) == pytest.approx((width, height))


def test_a_report_pdf_has_its_pages_and_text_and_its_png_is_a_contact_sheet(service: Service) -> None:
    answer, _ = render(service, report("report pdf", "pdf"), REPORT_STAGES)
    assert answer.headers["Content-Type"].startswith("application/pdf")
    reader = pdf_pages(answer.content)
    assert len(reader.pages) == 1
    assert "Hello from report pdf" in reader.pages[0].extract_text()

    # Long enough for three A4 pages: a part that does not fit what is left of a page starts the next one.
    long = report("report pages", "pdf")
    long["parts"] += [
        {"text": "line\n" * 30},
        {"generator": "chart", "spec": {"seed": 4, "width": 900, "height": 900, "dpi": 100}},
    ]
    stages = [*REPORT_STAGES[:4], "part 4 of 5: text", "part 5 of 5: chart", *REPORT_STAGES[4:]]
    stages[1:4] = [name.replace("of 3", "of 5") for name in stages[1:4]]
    answer, _ = render(service, long, stages)
    assert len(pdf_pages(answer.content).pages) == 3

    sheet, _ = render(service, report("report png", "png"), REPORT_STAGES)
    assert sheet.headers["Content-Type"].startswith("image/png")
    assert decode_png(sheet.content) == (3 * CELL_WIDTH, CELL_HEIGHT + SHEET_TITLE_PIXELS)


URL = "https://example.com/data.csv"
BAD_SPECS = [
    ({"kind": "pie-chart"}, "kind"),
    ({"width": 5}, "width"),
    ({"generator": "vega-lite", "vega_lite": {**bars("bad"), "data": {"url": URL}}}, "vega_lite.data.url"),
    ({"generator": "vega-lite", "vega_lite": {"$schema": "https://vega.github.io/schema/vega-lite/v4.json"}},
     "vega_lite.$schema"),
    ({"generator": "vega-lite", "vega_lite": bars("bad"), "format": "svg", "ppi": 144}, "ppi"),
    ({"generator": "vega-lite", "format": "png"}, "vega_lite"),
    ({"generator": "report", "parts": []}, "parts"),
    ({"generator": "report", "parts": [{"text": "a"}, {"generator": "chart", "spec": {"kind": "nope"}}]},
     "parts.1.spec.kind"),
    ({"generator": "report", "parts": [{"generator": "vega-lite", "spec": {"vega_lite": {"data": {"url": URL}}}}]},
     "parts.0.spec.vega_lite.data.url"),
    ({"generator": "report", "parts": [{"text": "a"}], "format": "svg"}, "format"),
]  # fmt: skip


@pytest.mark.parametrize(("document", "field"), BAD_SPECS, ids=[field for _, field in BAD_SPECS])
def test_a_bad_spec_is_refused_at_the_web_naming_the_field(
    service: Service, document: dict[str, Any], field: str
) -> None:
    answer = service.submit(document)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["field"] == field and body["message"], body
    assert service.connection.llen("rq:queue:default") == 0 and not service.connection.keys("rq:queue:*.default*")


# The model accepts it; only Vega-Lite's own parser, in the render, finds the broken expression.
UNPARSABLE = {**bars("unparsable"), "transform": [{"calculate": "datum.b * (", "as": "c"}]}


@pytest.mark.parametrize(
    "document",
    [
        {"generator": "vega-lite", "vega_lite": UNPARSABLE},
        {
            "generator": "report",
            "parts": [{"text": "a"}, {"generator": "vega-lite", "spec": {"vega_lite": UNPARSABLE}}],
        },
    ],
    ids=["vega-lite", "report"],
)
def test_a_spec_the_converter_rejects_fails_its_job_with_the_reason(service: Service, document: dict[str, Any]) -> None:
    answer = service.submit(document)
    assert answer.status_code == 202, answer.text
    status = service.wait_for_end(answer.json()["id"])
    assert status["state"] == "failed", status
    assert status["error"].startswith("RenderRaised: RenderRefused: Vega-Lite could not draw this document:"), status
    assert "Traceback" not in status["error"] and len(status["error"]) < 500
    assert service.worker.poll() is None  # the worker carries on


DEDUPE = [
    {"seed": 5, "title": "dedupe", "format": "png"},
    {"generator": "vega-lite", "vega_lite": bars("dedupe"), "format": "png"},
    {"generator": "vega-lite", "vega_lite": bars("dedupe"), "format": "svg"},
    report("dedupe", "pdf"),
    report("dedupe", "png"),
]


@pytest.mark.parametrize("document", DEDUPE, ids=["chart-png", "vega-lite-png", "vega-lite-svg", "report-pdf",
                                                   "report-png"])  # fmt: skip
def test_identical_reproducible_specs_share_one_job_and_its_file(service: Service, document: dict[str, Any]) -> None:
    name = str(document.get("generator", "chart"))
    spec = {key: value for key, value in document.items() if key != "generator"}
    assert generators.get(name).validate(spec).is_reproducible()
    first, second = service.accepted(document), service.accepted(document)
    assert second["id"] == first["id"] and second["reused"] is True and first["reused"] is False
    assert service.wait_for_end(first["id"])["state"] == "finished"
    again = service.submit(document)
    assert again.status_code == 200 and again.json()["id"] == first["id"], again.text
    stored = requests.get(f"{service.base_url}{again.json()['file_url']}", timeout=10)
    assert stored.status_code == 200 and stored.content == service.result(first["id"]).content


def test_a_vega_lite_pdf_is_not_reproducible_so_identical_requests_render_twice(service: Service) -> None:
    document = {"generator": "vega-lite", "vega_lite": bars("pdf twice"), "format": "pdf"}
    assert not generators.get("vega-lite").validate({"vega_lite": bars("x"), "format": "pdf"}).is_reproducible()
    first, second = service.accepted(document), service.accepted(document)
    assert first["id"] != second["id"] and not first["reused"] and not second["reused"]
    for answer in (first, second):
        assert service.wait_for_end(answer["id"])["state"] == "finished"
        assert len(pdf_pages(service.result(answer["id"]).content).pages) == 1


def isolated_children(worker: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The worker's isolated render processes that are still there."""
    found = []
    for child in psutil.Process(worker.pid).children(recursive=True):
        try:
            if ISOLATED_CHILD in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


RECOVERED = [
    ({"generator": "vega-lite", "vega_lite": bars("recovered"), "format": "png"}, VEGA_LITE_STAGES),
    (report("recovered", "pdf"), REPORT_STAGES),
]


@pytest.mark.parametrize(("document", "stages"), RECOVERED, ids=["vega-lite", "report"])
def test_an_isolated_render_of_a_killed_worker_is_recovered_and_finished_with_no_process_left(
    service: Service, document: dict[str, Any], stages: list[str]
) -> None:
    doomed = service.worker
    job_id = service.accepted(document)["id"]
    render_process = wait_for(lambda: isolated_children(doomed), timeout=30, what="the isolated render to start")[0]
    doomed.send_signal(signal.SIGSTOP)  # frozen mid-render: it cannot finish before the kill
    assert service.status(job_id)["state"] == "started"
    rescuer = f"rescuer-{document['generator']}"
    service.start_worker(rescuer)
    doomed.kill()
    doomed.wait(timeout=15)
    killed_at = time.monotonic()

    events = service.events.until_end(job_id, timeout=60)
    assert events[-1]["state"] == "finished", events[-1]
    names = stage_names(events)
    requeued = next(index for index, name in enumerate(names) if name.startswith("requeued: worker lost"))
    assert names[requeued + 1 :] == stages, names  # the rescuer's render, every stage in order
    assert jobs.fetch(service.connection, job_id).worker_name == rescuer
    print(f"{document['generator']}: finished by {rescuer} {time.monotonic() - killed_at:.1f} s after the kill")

    # The killed worker's render process does not outlive it, and the rescuer leaves none behind.
    wait_for(lambda: gone(render_process), timeout=30, what="the killed worker's render process to end")
    wait_for(lambda: not isolated_children(service.worker), timeout=10, what="the rescuer's render process to end")
    data = service.result(job_id).content
    if document["generator"] == "report":
        assert len(pdf_pages(data).pages) == 1
    else:
        assert decode_png(data)[0] > 0
