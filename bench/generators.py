"""Render time of one simple bar chart through the ``chart`` generator (matplotlib) and ``vega-lite`` (vl-convert).

Run it with ``python -m bench.generators`` (see bench/README.md). Both renders run in this
process, called directly as a worker calls them, after each generator's warm-up: no Redis, no
queue, no child process. The two specs draw the same five bars at about the same size
(600 x 400 pixels); samples alternate between the generators so both see the same machine
load, and each figure is the median of its samples.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plotjobs import generators

DEFAULT_SAMPLES = 30
FORMATS = ("png", "svg", "pdf")
CATEGORIES = ["north", "south", "east", "west", "centre"]
VALUES = [23.0, 41.0, 17.0, 35.0, 29.0]
# The same bars: matplotlib sizes the whole figure, Vega-Lite the plot area (its axes and title add about 80 px).
SPECS: dict[str, dict[str, Any]] = {
    "chart": {
        "kind": "bar",
        "title": "Sales by region",
        "series": [{"x": CATEGORIES, "y": VALUES}],
        "width": 600,
        "height": 400,
    },
    "vega-lite": {
        "vega_lite": {
            "title": "Sales by region",
            "width": 520,
            "height": 320,
            "data": {"values": [{"region": c, "sales": v} for c, v in zip(CATEGORIES, VALUES, strict=True)]},
            "mark": "bar",
            "encoding": {
                "x": {"field": "region", "type": "nominal", "sort": None},
                "y": {"field": "sales", "type": "quantitative"},
            },
        }
    },
}


@dataclass(frozen=True)
class Measurement:
    """The render times of one generator and format, in seconds, and the size of its output."""

    generator: str
    file_format: str
    seconds: list[float]
    size: int

    @property
    def median_ms(self) -> float:
        """The median render time in milliseconds."""
        return statistics.median(self.seconds) * 1000


def _renderer(name: str, file_format: str) -> Callable[[], bytes]:
    generator = generators.get(name)
    spec = generator.validate({**SPECS[name], "format": file_format})
    render = generator.render()
    return lambda: render(spec, None)


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(samples: int = DEFAULT_SAMPLES, formats: tuple[str, ...] = FORMATS) -> list[Measurement]:
    """Warm both generators up, then time ``samples`` interleaved renders of each format through each."""
    for name in SPECS:
        log(f"warming up {name}")
        generators.get(name).warm_up()
    measurements = []
    for file_format in formats:
        renderers = {name: _renderer(name, file_format) for name in SPECS}
        seconds: dict[str, list[float]] = {name: [] for name in SPECS}
        sizes: dict[str, int] = {}
        log(f"{samples} renders of each generator as {file_format}")
        for _ in range(samples):
            for name, render in renderers.items():
                started = time.perf_counter()
                sizes[name] = len(render())
                seconds[name].append(time.perf_counter() - started)
        measurements.extend(Measurement(name, file_format, seconds[name], sizes[name]) for name in SPECS)
    return measurements


def table(measurements: list[Measurement]) -> str:
    """The medians side by side, per format, as a Markdown table."""
    by_key = {(item.generator, item.file_format): item for item in measurements}
    formats = list(dict.fromkeys(item.file_format for item in measurements))
    lines = [
        "| format | chart (ms) | vega-lite (ms) | vega-lite / chart | chart bytes | vega-lite bytes |",
        "|---|---|---|---|---|---|",
    ]
    for file_format in formats:
        chart, vega_lite = by_key["chart", file_format], by_key["vega-lite", file_format]
        lines.append(
            f"| {file_format} | {chart.median_ms:.1f} | {vega_lite.median_ms:.1f} "
            f"| {vega_lite.median_ms / chart.median_ms:.2f} | {chart.size} | {vega_lite.size} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table (and write it to ``--output``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="renders per generator and format")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: png,svg,pdf")
    parser.add_argument("--output", help="also write the table to this file")
    args = parser.parse_args(argv)
    formats = tuple(name for name in args.formats.split(",") if name)
    unknown = set(formats) - set(FORMATS)
    if unknown or args.samples < 1:
        parser.error(f"formats are among {', '.join(FORMATS)} and samples at least 1")
    output = table(run(samples=args.samples, formats=formats))
    print(output)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(output + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
