"""Render times of the chart render itself, in-process: the default chart and scatters of 10^4..10^6 points.

    .venv/bin/python -m bench.render_times                 # about a minute on 2 cores
    .venv/bin/python -m bench.render_times --sizes 10000,100000 --repeat 5

Prints a Markdown table (median and fastest of the repeats, and the file's size). Scatters
beyond the spec's point limit are built without validation, as the render receives them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from plotjobs.render import chart
from plotjobs.spec.chart import ChartSpec, Series

FORMATS = ("png", "svg", "pdf")


def _timed(spec: ChartSpec, repeat: int) -> tuple[float, float, int]:
    """Median and fastest seconds of ``repeat`` renders of ``spec``, and the size of its file."""
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = len(chart.render(spec))
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), size


def _scatter(count: int, file_format: str) -> ChartSpec:
    rng = np.random.default_rng(0)
    series = Series.model_construct(
        name="", x=rng.normal(size=count).tolist(), y=rng.normal(size=count).tolist(), values=None
    )
    base = ChartSpec.model_validate({"kind": "scatter", "format": file_format})
    return ChartSpec.model_construct(**{**dict(base), "series": [series]})


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="scatter sizes, comma-separated (empty: none)")
    parser.add_argument("--repeat", type=int, default=3, help="renders per scatter (default 3)")
    parser.add_argument("--default-repeat", type=int, default=40, help="renders of the default chart (default 40)")
    options = parser.parse_args()

    started = time.perf_counter()
    chart.warm_up()
    print(f"warm-up (first renders, fonts registered): {time.perf_counter() - started:.2f} s\n")
    print("| chart | format | median | fastest | bytes |")
    print("|---|---|---|---|---|")
    for file_format in FORMATS:
        spec = ChartSpec.model_validate({"format": file_format, "seed": 1, "start": "2026-01-01", "title": "Sales"})
        median, fastest, size = _timed(spec, options.default_repeat)
        print(f"| default chart | {file_format} | {median * 1000:.1f} ms | {fastest * 1000:.1f} ms | {size:,} |")
    for count in (int(size) for size in options.sizes.split(",") if size):
        for file_format in FORMATS:
            median, fastest, size = _timed(_scatter(count, file_format), options.repeat)
            print(f"| scatter of {count:,} | {file_format} | {median:.2f} s | {fastest:.2f} s | {size:,} |", flush=True)


if __name__ == "__main__":
    main()
