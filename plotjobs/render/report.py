"""The report generator's render: a validated ReportSpec in, a PDF of A4 pages or a PNG contact sheet out.

Each drawn part is rendered by its own generator as a PNG and placed as a picture; text is set by
matplotlib. The PDF carries no dates or producer, so an identical spec gives identical bytes. Pure:
no Redis, no queue, no web.
"""

from __future__ import annotations

import io
import math
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from PIL import Image

from plotjobs.generators import ProgressCallback
from plotjobs.render import chart, vega_lite
from plotjobs.spec.chart import ChartSpec
from plotjobs.spec.report import MAX_PART_PIXELS, ReportPart, ReportSpec
from plotjobs.spec.vega_lite import BASE_PPI

# A4 portrait, in inches, and its margins.
PAGE_WIDTH, PAGE_HEIGHT = 8.27, 11.69
MARGIN = 0.6
TITLE_HEIGHT = 0.7
GAP = 0.25
TEXT_SIZE = 10
LINE_HEIGHT = 0.19
WRAP_COLUMNS = 90
# A picture takes the page's width, but at most this share of its height, so two fit on a page.
MAX_PICTURE_SHARE = 0.48
# The contact sheet: cells of this many pixels, at most this many across.
CELL_WIDTH, CELL_HEIGHT = 480, 360
SHEET_COLUMNS = 3
SHEET_DPI = 100
SHEET_TITLE_PIXELS = 60

_STYLE: list[Any] = ["default", {"text.usetex": False}]
_PDF_METADATA = {"CreationDate": None, "Creator": None, "Producer": None}


@dataclass(frozen=True)
class Placed:
    """A rendered part: a picture (RGB pixels, and the pixels per inch its spec drew it at) or lines of wrapped text."""

    picture: np.ndarray | None = None
    dpi: float = 100.0
    lines: tuple[str, ...] = ()


def _ignore_progress(fraction: float, stage: str) -> None:
    return None


def wrapped(text: str, columns: int = WRAP_COLUMNS) -> tuple[str, ...]:
    """The text's lines wrapped to ``columns``, keeping its own line breaks."""
    lines: list[str] = []
    for paragraph in text.expandtabs(4).splitlines() or [""]:
        lines.extend(textwrap.wrap(paragraph, columns) or [""])
    return tuple(lines)


def picture_size(pixels_wide: int, pixels_high: int, dpi: float) -> tuple[float, float]:
    """Inches on the page: the picture's own size, shrunk to the page's width and a share of its height.

    A higher dpi or ppi in a part's spec makes it sharper in print, not larger.
    """
    natural_width, natural_height = pixels_wide / dpi, pixels_high / dpi
    room_width, room_height = PAGE_WIDTH - 2 * MARGIN, (PAGE_HEIGHT - 2 * MARGIN) * MAX_PICTURE_SHARE
    shrink = min(1.0, room_width / natural_width, room_height / natural_height)
    return natural_width * shrink, natural_height * shrink


def render_part(part: ReportPart) -> Placed:
    """One part, ready to place: a drawing as pixels (rendered by its generator), text as wrapped lines."""
    drawing = part.drawing()
    if drawing is None:
        return Placed(lines=wrapped(part.text or ""))
    if isinstance(drawing, ChartSpec):
        data, dpi = chart.render(drawing), float(drawing.dpi)
    else:
        data, dpi = vega_lite.render(drawing, max_pixels=MAX_PART_PIXELS), BASE_PPI * drawing.pixel_factor
    with Image.open(io.BytesIO(data)) as image:
        # Onto white: an alpha channel would double every picture in the PDF (an image and its mask).
        opaque = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
        return Placed(picture=np.asarray(opaque.convert("RGB")), dpi=dpi)


def _parts(spec: ReportSpec, report: ProgressCallback) -> Iterator[Placed]:
    count = len(spec.parts)
    for number, part in enumerate(spec.parts):
        report(0.05 + 0.75 * number / count, f"part {number + 1} of {count}: {part.kind}")
        yield render_part(part)


@contextmanager
def _drawing_context() -> Iterator[None]:
    with matplotlib.style.context(_STYLE), warnings.catch_warnings():
        # Text in a script the bundled fonts lack is drawn as boxes: expected, not worth a log line per job.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        yield


class _Pages:
    """Parts set from the top of A4 pages down, a new page when the next part does not fit."""

    def __init__(self, pdf: PdfPages, title: str) -> None:
        self.pdf = pdf
        self.figure = self._new_page()
        self.top = PAGE_HEIGHT - MARGIN
        if title:
            self.figure.text(
                MARGIN / PAGE_WIDTH, self.top / PAGE_HEIGHT, title, va="top", fontsize=18, parse_math=False
            )
            self.top -= TITLE_HEIGHT

    @staticmethod
    def _new_page() -> Figure:
        figure = Figure(figsize=(PAGE_WIDTH, PAGE_HEIGHT))
        FigureCanvasAgg(figure)
        return figure

    def _room_for(self, height: float) -> None:
        if self.top - height < MARGIN and self.top < PAGE_HEIGHT - MARGIN:
            self.pdf.savefig(self.figure)
            self.figure = self._new_page()
            self.top = PAGE_HEIGHT - MARGIN

    def place(self, placed: Placed) -> None:
        if placed.picture is None:
            height = LINE_HEIGHT * len(placed.lines)
            self._room_for(height)
            text = "\n".join(placed.lines)
            self.figure.text(
                MARGIN / PAGE_WIDTH, self.top / PAGE_HEIGHT, text, va="top", fontsize=TEXT_SIZE,
                linespacing=1.3, parse_math=False,
            )  # fmt: skip
        else:
            pixels_high, pixels_wide = placed.picture.shape[:2]
            picture_width, height = picture_size(pixels_wide, pixels_high, placed.dpi)
            self._room_for(height)
            left = (PAGE_WIDTH - picture_width) / 2
            axes = self.figure.add_axes(
                (left / PAGE_WIDTH, (self.top - height) / PAGE_HEIGHT, picture_width / PAGE_WIDTH, height / PAGE_HEIGHT)
            )
            axes.imshow(placed.picture, interpolation="none")
            axes.set_axis_off()
        self.top -= height + GAP

    def finish(self) -> None:
        self.pdf.savefig(self.figure)


def _pdf(spec: ReportSpec, report: ProgressCallback) -> bytes:
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata=_PDF_METADATA) as pdf:
        pages = _Pages(pdf, spec.title)
        for placed in _parts(spec, report):
            pages.place(placed)
        report(0.85, "encoding")
        pages.finish()
    return buffer.getvalue()


def _thumbnail(picture: np.ndarray) -> np.ndarray:
    """The picture shrunk to fit a cell (never enlarged)."""
    image = Image.fromarray(picture)
    image.thumbnail((CELL_WIDTH, CELL_HEIGHT), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _sheet(spec: ReportSpec, report: ProgressCallback) -> bytes:
    count = len(spec.parts)
    columns = min(SHEET_COLUMNS, count)
    rows = math.ceil(count / columns)
    title_pixels = SHEET_TITLE_PIXELS if spec.title else 0
    width, height = columns * CELL_WIDTH, rows * CELL_HEIGHT + title_pixels
    figure = Figure(figsize=(width / SHEET_DPI, height / SHEET_DPI), dpi=SHEET_DPI)
    FigureCanvasAgg(figure)
    if spec.title:
        figure.text(0.5, 1 - 12 / height, spec.title, ha="center", va="top", fontsize=16, parse_math=False)
    padding = 8
    for number, placed in enumerate(_parts(spec, report)):
        row, column = divmod(number, columns)
        left = column * CELL_WIDTH + padding
        top = title_pixels + row * CELL_HEIGHT + padding
        cell = (left / width, 1 - (top + CELL_HEIGHT - 2 * padding) / height)
        size = ((CELL_WIDTH - 2 * padding) / width, (CELL_HEIGHT - 2 * padding) / height)
        axes = figure.add_axes((*cell, *size))
        axes.set_axis_off()
        if placed.picture is None:
            text = "\n".join(wrapped("\n".join(placed.lines), 60)[:20])
            axes.text(0, 1, text, va="top", fontsize=9, transform=axes.transAxes, parse_math=False)
        else:
            axes.imshow(_thumbnail(placed.picture))
    report(0.85, "encoding")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def render(spec: ReportSpec, progress: ProgressCallback | None = None) -> bytes:
    """Render every part, lay them out and return the PDF or PNG; ``progress`` names each part as it starts."""
    report = progress or _ignore_progress
    with _drawing_context():
        return _pdf(spec, report) if spec.format == "pdf" else _sheet(spec, report)


def warm_up() -> None:
    """Render a small report with a chart part in each format once, loading the page layout and PDF writer here.

    Vega-Lite is not loaded. The built-in report is isolated: each of its renders runs in a fresh child
    process, so a worker's warm-up leaves that child nothing warm; it shows at start that the render works.
    """
    parts = [{"text": "warm-up"}, {"generator": "chart", "spec": {"seed": 0, "width": 200, "height": 150}}]
    for file_format in ("pdf", "png"):
        render(ReportSpec.model_validate({"title": "warm-up", "parts": parts, "format": file_format}))
