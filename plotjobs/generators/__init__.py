"""The generator registry: each generator is a name, a spec model and a pure render, loaded only where needed.

The job layer (``plotjobs.queue``, ``plotjobs.worker``) knows generators only through this
module; the spec models import nothing heavy, and a render (matplotlib, for the chart) is
imported by the processes that render, never by the web app. See docs/design.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from plotjobs.errors import InvalidSpecError, UnknownGeneratorError
from plotjobs.spec.base import GeneratorSpec, violations_text
from plotjobs.spec.chart import ChartSpec
from plotjobs.spec.report import ReportSpec
from plotjobs.spec.vega_lite import VegaLiteSpec

ProgressCallback = Callable[[float, str], None]
Render = Callable[[Any, ProgressCallback | None], bytes]


@dataclass(frozen=True)
class Generator:
    """One kind of content: its spec model, and where its render and warm-up live (``module:function``).

    ``isolated`` asks for each render to run in a child process that is killed after ``time_limit_seconds``:
    for renders whose cost the spec's checks cannot bound, or that run code (a JavaScript engine) which a
    job timeout inside the worker's own process could not interrupt. Such a child must be started fresh
    (spawned) and warm up itself: a process forked after vl-convert's first use hangs (docs/vega-lite.md).
    """

    name: str
    spec_model: type[GeneratorSpec]
    render_path: str
    warm_up_path: str | None = None
    isolated: bool = False
    time_limit_seconds: float | None = None

    def validate(self, document: Mapping[str, Any]) -> GeneratorSpec:
        """The spec as its model; InvalidSpecError naming every bad field."""
        try:
            return self.spec_model.model_validate(document)
        except ValidationError as error:
            raise InvalidSpecError(f"invalid {self.name} spec: {violations_text(error)}") from None

    def render(self) -> Render:
        """The render function (imported on first use: only rendering processes pay for it)."""
        render: Render = _load(self.render_path)
        return render

    def warm_up(self) -> None:
        """Load what the render needs before the first job, so that job pays no start-up cost."""
        if self.warm_up_path is not None:
            _load(self.warm_up_path)()


def _load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


# A vega-lite render is bounded by the spec's checks and then by this hard limit; a report holds at most
# MAX_PARTS of them. Both stay under the default JOB_TIMEOUT (60 s).
VEGA_LITE_TIME_LIMIT_SECONDS = 20.0
REPORT_TIME_LIMIT_SECONDS = 50.0

BUILTIN: Mapping[str, Generator] = {
    "chart": Generator("chart", ChartSpec, "plotjobs.render.chart:render", "plotjobs.render.chart:warm_up"),
    "vega-lite": Generator(
        "vega-lite",
        VegaLiteSpec,
        "plotjobs.render.vega_lite:render",
        "plotjobs.render.vega_lite:warm_up",
        isolated=True,
        time_limit_seconds=VEGA_LITE_TIME_LIMIT_SECONDS,
    ),
    # Isolated as a whole, since its parts may be vega-lite documents.
    "report": Generator(
        "report",
        ReportSpec,
        "plotjobs.render.report:render",
        "plotjobs.render.report:warm_up",
        isolated=True,
        time_limit_seconds=REPORT_TIME_LIMIT_SECONDS,
    ),
}


def get(name: str) -> Generator:
    """The generator called ``name``; UnknownGeneratorError when there is none."""
    try:
        return BUILTIN[name]
    except KeyError:
        raise UnknownGeneratorError(f"no generator {name!r} is served here (known: {', '.join(BUILTIN)})") from None
