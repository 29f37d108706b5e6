"""Isolated renders: a real child process renders, reports its stages, and is always gone afterwards."""

from __future__ import annotations

import dataclasses
import io

import matplotlib.image
import psutil
import pytest

from plotjobs.errors import JobCanceled, RenderRaised, RenderTimedOut
from plotjobs.generators.builtin import CHART
from plotjobs.queue.isolation import render_isolated
from plotjobs.queue.tasks import isolated_time_limit

SPEC = {"width": 320, "height": 200, "seed": 3, "title": "isolated"}


def no_children() -> bool:
    return not psutil.Process().children(recursive=True)


@pytest.mark.timeout(60)
def test_the_child_renders_and_its_stages_arrive_in_order() -> None:
    seen: list[tuple[float, str]] = []
    output = render_isolated(
        CHART, SPEC, lambda fraction, stage: seen.append((fraction, stage)), time_limit=50, canceled=lambda: False
    )
    assert isinstance(output, bytes)
    assert matplotlib.image.imread(io.BytesIO(output), format="png").shape[:2] == (200, 320)
    assert seen[0][1] == "preparing data" and len(seen) >= 3
    assert [fraction for fraction, _ in seen] == sorted(fraction for fraction, _ in seen)
    assert no_children()


@pytest.mark.timeout(60)
def test_an_exception_in_the_child_becomes_the_reason() -> None:
    with pytest.raises(RenderRaised, match=r"^InvalidSpecError: invalid chart spec: width: "):
        render_isolated(CHART, {**SPEC, "width": -1}, lambda *_: None, time_limit=50, canceled=lambda: False)
    assert no_children()


@pytest.mark.timeout(60)
def test_a_child_past_its_time_limit_is_killed() -> None:
    # Starting Python and matplotlib alone takes longer than this.
    with pytest.raises(RenderTimedOut, match=r"render timed out after 0.2 s \(the generator's time limit\); killed"):
        render_isolated(CHART, SPEC, lambda *_: None, time_limit=0.2, canceled=lambda: False)
    assert no_children()


@pytest.mark.timeout(60)
def test_a_cancel_while_the_child_is_silent_kills_it() -> None:
    def progress(fraction: float, stage: str) -> None:
        if stage == "canceling":
            raise JobCanceled("canceled on request")

    with pytest.raises(JobCanceled):
        render_isolated(CHART, SPEC, progress, time_limit=50, canceled=lambda: True)
    assert no_children()


def test_the_time_limit_is_the_generators_never_past_the_jobs_timeout() -> None:
    limited = dataclasses.replace(CHART, isolated=True, time_limit=30)
    assert isolated_time_limit(limited, 60) == 30
    assert isolated_time_limit(limited, 10) == 10
    assert isolated_time_limit(CHART, 45) == 45
    # A job without a timeout of its own runs under RQ's default one.
    assert isolated_time_limit(CHART, None) == isolated_time_limit(CHART, -1) == 180
