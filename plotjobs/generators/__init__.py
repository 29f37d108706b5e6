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

ProgressCallback = Callable[[float, str], None]
Render = Callable[[Any, ProgressCallback | None], bytes]


@dataclass(frozen=True)
class Generator:
    """One kind of content: its spec model, and where its render and warm-up live (``module:function``)."""

    name: str
    spec_model: type[GeneratorSpec]
    render_path: str
    warm_up_path: str | None = None

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


BUILTIN: Mapping[str, Generator] = {
    "chart": Generator("chart", ChartSpec, "plotjobs.render.chart:render", "plotjobs.render.chart:warm_up"),
}


def get(name: str) -> Generator:
    """The generator called ``name``; UnknownGeneratorError when there is none."""
    try:
        return BUILTIN[name]
    except KeyError:
        raise UnknownGeneratorError(f"no generator {name!r} is served here (known: {', '.join(BUILTIN)})") from None
