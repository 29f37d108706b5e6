"""The chart URL benchmark keeps working: a short run of python -m bench.embed_ttfb measures both servers."""

from __future__ import annotations

import pytest

from bench import embed_ttfb

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_a_cached_chart_url_answers_before_a_render_in_the_request() -> None:
    # One process per gunicorn: quicker to start, and the same code path.
    measurements = embed_ttfb.run(samples=3, web_processes=1)
    assert [item.name for item in measurements] == list(embed_ttfb.SPECS)
    for item in measurements:
        assert len(item.cached) == len(item.synchronous) == 3 and item.size > 0
        # A render takes tens of milliseconds; reading a stored file a few: far apart even on a busy machine.
        assert item.ratio > 2, embed_ttfb.table(measurements)
    assert "| ratio |" in embed_ttfb.table(measurements)
