"""The generators benchmark keeps working: a short run of python -m bench.generators times both renders."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import generators as bench_generators
from bench import mixed_load
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


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_tiny_mixed_load_runs_through_gunicorn_and_two_workers_and_reads_every_figure() -> None:
    result = mixed_load.run(count=10, rounds=1, samples=3)
    assert len(result.chart_rates) == len(result.mixed_rates) == 1
    assert result.chart_rate > 0 and result.mixed_rate > 0
    # Every mixed job's log line was read: 7 charts and 3 vega-lite documents, each with its duration.
    assert len(result.durations_ms["chart"]) == 7 and len(result.durations_ms["vega-lite"]) == 3
    assert len(result.child_start_ms) == len(result.compiling_ms) == 3
    assert all(ms > 0 for ms in result.child_start_ms + result.compiling_ms)
    assert set(result.in_process_ms) == {"chart", "vega-lite"}
    rendered = mixed_load.table(result)
    assert "| 10 jobs, 70 % chart, 30 % vega-lite |" in rendered and "| child start:" in rendered
