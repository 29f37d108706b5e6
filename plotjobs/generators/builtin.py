"""The generators plotjobs ships, declared as any third-party one is (pyproject.toml names them as entry points)."""

from __future__ import annotations

from plotjobs.generators import Generator
from plotjobs.spec.chart import CONTENT_TYPES, ChartSpec
from plotjobs.spec.report import CONTENT_TYPES as REPORT_CONTENT_TYPES
from plotjobs.spec.report import ReportSpec
from plotjobs.spec.vega_lite import CONTENT_TYPES as VEGA_LITE_CONTENT_TYPES
from plotjobs.spec.vega_lite import VEGA_LITE_VERSION, VegaLiteSpec

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

# A vega-lite render runs a JavaScript engine that holds the GIL: only a child process can be stopped.
# Its spec's checks bound what it generates; this bounds the rest. A report holds at most a dozen
# drawings, any of them vega-lite. Both stay under the default JOB_TIMEOUT (60 s).
VEGA_LITE_TIME_LIMIT_SECONDS = 20
REPORT_TIME_LIMIT_SECONDS = 50

VEGA_LITE = Generator(
    "vega-lite",
    VegaLiteSpec,
    "plotjobs.render.vega_lite:render",
    "plotjobs.render.vega_lite:warm_up",
    title="Vega-Lite",
    description=f"A Vega-Lite {VEGA_LITE_VERSION} document rendered by vl-convert, with no network access.",
    content_types=VEGA_LITE_CONTENT_TYPES,
    isolated=True,
    time_limit=VEGA_LITE_TIME_LIMIT_SECONDS,
)

REPORT = Generator(
    "report",
    ReportSpec,
    "plotjobs.render.report:render",
    "plotjobs.render.report:warm_up",
    title="Report",
    description="A title, short text blocks and chart or Vega-Lite drawings in one PDF, or a PNG contact sheet.",
    content_types=REPORT_CONTENT_TYPES,
    isolated=True,
    time_limit=REPORT_TIME_LIMIT_SECONDS,
)
