"""The generators benchmark keeps working: a short run of python -m bench.generators times both renders."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import generators as bench_generators
from tests.support.processes import PROJECT_ROOT


@pytest.mark.timeout(120)
def test_a_short_run_times_the_same_chart_through_both_generators() -> None:
    measurements = bench_generators.run(samples=2, formats=("png", "svg"))
    assert [(item.generator, item.file_format) for item in measurements] == [
        ("chart", "png"),
        ("vega-lite", "png"),
        ("chart", "svg"),
        ("vega-lite", "svg"),
    ]
    for item in measurements:
        assert len(item.seconds) == 2 and all(seconds > 0 for seconds in item.seconds) and item.size > 0
    rendered = bench_generators.table(measurements)
    assert rendered.count("\n| png |") == rendered.count("\n| svg |") == 1


@pytest.mark.timeout(120)
def test_the_command_prints_the_table_and_refuses_an_unknown_format() -> None:
    command = [sys.executable, "-m", "bench.generators", "--samples", "1", "--formats", "png"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("| format | chart (ms) | vega-lite (ms) |")
    assert "| png |" in done.stdout
    refused = subprocess.run(
        [*command[:-1], "gif"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=100, check=False
    )
    assert refused.returncode == 2
    assert "formats are among" in refused.stderr
