"""A render worker whose chart render draws nothing, for the scale figures of bench/run.py.

``python -m bench.noop_worker`` runs one plotjobs render worker (``plotjobs worker --single``)
in which the chart generator reports the chart's stages and returns the same few bytes at once.
Everything around the render is the real worker's, so a job costs Redis exactly what a chart's
job costs; only the drawing is gone, which is what lets a few cores show how many jobs per
second one Redis can serve.
"""

from __future__ import annotations

import dataclasses

from plotjobs import generators
from plotjobs.cli.main import run_single_worker
from plotjobs.generators import ProgressCallback
from plotjobs.spec.chart import ChartSpec

# The stages plotjobs.render.chart.render reports, so that each job writes and publishes as many.
CHART_STAGES = ((0.1, "preparing data"), (0.3, "drawing"), (0.7, "encoding"))
NOOP_FILE = b"\x89PNG\r\n\x1a\nplotjobs bench: no-op render"


def render(spec: ChartSpec, progress: ProgressCallback | None = None) -> bytes:
    """Report the chart's stages and return the same bytes every time."""
    for fraction, stage in CHART_STAGES:
        if progress is not None:
            progress(fraction, stage)
    return NOOP_FILE


def main() -> None:
    """Serve the chart generator with the no-op render, then run one worker."""
    installed = generators.load
    noop_chart = dataclasses.replace(installed("chart"), render_path="bench.noop_worker:render", warm_up_path=None)

    def load(name: str) -> generators.Generator:
        return noop_chart if name == "chart" else installed(name)

    generators.load = load  # type: ignore[assignment]  # the registry's lookup, for this process only
    run_single_worker()


if __name__ == "__main__":
    main()
