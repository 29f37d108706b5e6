"""Chart specs and the pure render: spec in, bytes out. Knows nothing of web or queue."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Literal

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

ProgressCallback = Callable[[float, str], None]

CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}

# Fixed metadata keeps output byte-identical for an identical spec (no creation dates).
_SAVE_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}


class ChartSpec(BaseModel):
    """What to draw. The empty spec is the default chart: 10 random values over 10 days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["line"] = "line"
    title: StrictStr = Field(default="", max_length=200)
    seed: StrictInt | None = Field(default=None, ge=0, le=2**32 - 1, description="Random seed for the demo data.")
    start: dt.date | None = Field(default=None, description="First day of the demo data; today when absent.")
    format: Literal["png", "svg", "pdf"] = "png"
    width: StrictInt = Field(default=800, ge=100, le=4000, description="Width in pixels.")
    height: StrictInt = Field(default=500, ge=100, le=4000, description="Height in pixels.")
    dpi: StrictInt = Field(default=100, ge=50, le=300)

    @property
    def content_type(self) -> str:
        """The media type of the rendered bytes."""
        return CONTENT_TYPES[self.format]


def _demo_series(spec: ChartSpec) -> tuple[list[dt.date], np.ndarray]:
    rng = np.random.default_rng(spec.seed)
    start = spec.start or dt.datetime.now(dt.timezone.utc).date()
    days = [start + dt.timedelta(days=offset) for offset in range(10)]
    return days, rng.random(10)


def downsample_line(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` of a line that draw the same: each bucket's lowest and highest point.

    A line of a million points covers a few thousand pixel columns; drawing one minimum and
    one maximum per column keeps every peak and trough and makes the render cost follow the
    picture's size instead of the data's.
    """
    count = len(y)
    if count <= max_points or max_points < 4:
        return x, y
    buckets = max_points // 2
    size = -(-count // buckets)
    padded = np.pad(np.asarray(y, dtype=float), (0, buckets * size - count), mode="edge").reshape(buckets, size)
    offsets = np.arange(buckets) * size
    keep = np.concatenate(([0, count - 1], offsets + padded.argmin(axis=1), offsets + padded.argmax(axis=1)))
    indices = np.unique(np.minimum(keep, count - 1))
    return np.asarray(x)[indices], np.asarray(y)[indices]


def _ignore_progress(fraction: float, stage: str) -> None:
    return None


def render(spec: ChartSpec, progress: ProgressCallback | None = None) -> bytes:
    """Draw ``spec`` and return the encoded file; ``progress(fraction, stage)`` marks each step."""
    report = progress or _ignore_progress
    report(0.1, "preparing data")
    days, values = _demo_series(spec)

    report(0.3, "drawing")
    figure = Figure(figsize=(spec.width / spec.dpi, spec.height / spec.dpi), dpi=spec.dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(days, values, marker="o")
    axes.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    if spec.title:
        axes.set_title(spec.title, parse_math=False)
    figure.autofmt_xdate()

    report(0.7, "encoding")
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "plotjobs"}):
        figure.savefig(buffer, format=spec.format, metadata=_SAVE_METADATA[spec.format])
    return buffer.getvalue()


def warm_up() -> None:
    """Load fonts and caches once, so the first real job pays no start-up cost."""
    for file_format in CONTENT_TYPES:
        render(ChartSpec(format=file_format, seed=0, title="warm-up"))
