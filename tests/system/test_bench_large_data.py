"""The large-data benchmark keeps working: a short run of python -m bench.large_data at small sizes."""

from __future__ import annotations

import pytest

from bench import large_data

pytestmark = pytest.mark.integration

SIZES = (300, 30_000)


@pytest.mark.timeout(180)
def test_every_row_comes_back_and_every_figure_is_measured() -> None:
    result = large_data.run(SIZES, samples=2, json_rows=SIZES[-1])
    assert result["default"] > 0
    measured = result["measurements"]
    assert [(item.rows, item.form) for item in measured] == [(300, "csv"), (30_000, "csv"), (30_000, "json")]
    for item in measured:
        assert item.rows_back == item.rows, item
        assert item.end_to_end >= item.upload > 0 and item.parse > 0 and item.web_peak_bytes > 0
        assert {"drawing", "encoding", "storing"} <= set(item.stages_ms), item.stages_ms
    small, *large = measured
    assert "loading data" not in small.stages_ms  # small data stays inline in the job
    for item in large:
        assert "loading data" in item.stages_ms and item.data_ttl > 0 and item.job_data_bytes < 2_000
    assert "| 30,000 | 0.42 MB CSV |" in large_data.table(result)
