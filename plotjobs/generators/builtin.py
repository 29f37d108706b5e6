"""The generators plotjobs ships, declared as any third-party one is (pyproject.toml names them as entry points)."""

from __future__ import annotations

from plotjobs.generators import Generator
from plotjobs.spec.chart import CONTENT_TYPES, ChartSpec

CHART = Generator(
    "chart",
    ChartSpec,
    "plotjobs.render.chart:render",
    "plotjobs.render.chart:warm_up",
    title="Chart",
    description="Line, bar, scatter, area, histogram and pie charts of inline, CSV or demo data, drawn by matplotlib.",
    content_types=CONTENT_TYPES,
    bare_queues=True,
)
