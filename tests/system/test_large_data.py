"""A million-row CSV through a real gunicorn and a real worker: charted, the job hash small, the data apart."""

from __future__ import annotations

import io
import json
from typing import Any

import matplotlib.image
import numpy as np
import pytest
import requests
from redis import Redis

from plotjobs import keys
from plotjobs.queue import data
from tests.support.processes import running_gunicorn, running_worker
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.serving]

ROWS = 1_000_000
SPEC = {"kind": "line", "title": "a million rows", "series": [{"x_column": "t", "y_column": "value"}]}
# A job names its data by reference: its hash stays this small whatever the data's size.
MAX_JOB_HASH_BYTES = 4096
SECONDS_TO_CHART = 90


def _table(rows: int, bad_row: int | None = None) -> bytes:
    buffer = io.StringIO()
    buffer.write("t,value\n")
    walk = np.cumsum(np.random.default_rng(11).normal(size=rows)).round(3)
    np.savetxt(buffer, np.column_stack([np.arange(rows), walk]), fmt=["%d", "%.3f"], delimiter=",")
    text = buffer.getvalue()
    if bad_row is not None:
        lines = text.split("\n")
        lines[bad_row] = f"{bad_row - 1},not-a-number"
        text = "\n".join(lines)
    return text.encode()


def _post(base_url: str, table: bytes) -> requests.Response:
    files = {"spec": (None, json.dumps(SPEC), "application/json"), "csv": ("data.csv", table, "text/csv")}
    return requests.post(f"{base_url}/api/jobs", files=files, timeout=60)


def _finished(base_url: str, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = requests.get(f"{base_url}/api/jobs/{job_id}", timeout=10).json()
        return status if status["state"] in ("finished", "failed", "canceled", "stopped") else None

    status = wait_for(ended, timeout=SECONDS_TO_CHART, what="the million-row chart")
    assert status["state"] == "finished", status
    return status


@pytest.mark.timeout(240)
def test_a_million_row_csv_charts_with_its_data_stored_apart(redis_url: str, redis_connection: Redis) -> None:
    table = _table(ROWS)
    with running_worker(redis_url, redis_connection), running_gunicorn(redis_url, workers=1) as base_url:
        answer = _post(base_url, table)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        job_key = f"rq:job:{job_id}"
        assert int(redis_connection.memory_usage(job_key, samples=0) or 0) < MAX_JOB_HASH_BYTES
        (data_key,) = redis_connection.scan_iter(keys.DATA_PREFIX + "*")
        assert redis_connection.ttl(data_key) > 0
        blob = redis_connection.get(data_key)
        assert blob is not None and [len(column) for column in data.unpack(blob)] == [ROWS, ROWS]
        _finished(base_url, job_id)
        chart = requests.get(f"{base_url}/api/jobs/{job_id}/result", timeout=30)
        assert chart.status_code == 200
        assert matplotlib.image.imread(io.BytesIO(chart.content), format="png").shape[:2] == (500, 800)
        assert int(redis_connection.memory_usage(job_key, samples=0) or 0) < MAX_JOB_HASH_BYTES
        spec = requests.get(f"{base_url}/api/jobs/{job_id}/spec", timeout=60)
        assert spec.status_code == 200
        series = spec.json()["series"][0]
        assert len(series["x"]) == len(series["y"]) == ROWS and series["x"][-1] == ROWS - 1


@pytest.mark.timeout(120)
def test_a_bad_cell_on_row_700000_is_named_before_anything_is_queued(redis_url: str, redis_connection: Redis) -> None:
    with running_gunicorn(redis_url, workers=1) as base_url:
        answer = _post(base_url, _table(ROWS, bad_row=700_000))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["field"] == "csv"
    assert body["message"] == "csv: data row 700000 of column 'value' is 'not-a-number', not a number"
    assert not list(redis_connection.scan_iter("rq:job:*")) and not list(redis_connection.scan_iter("plotjobs:data:*"))


@pytest.mark.timeout(120)
def test_an_upload_over_the_limit_is_413_with_the_limit(redis_url: str, redis_connection: Redis) -> None:
    with running_gunicorn(redis_url, workers=1, MAX_REQUEST_BYTES="1000000") as base_url:
        answer = _post(base_url, _table(100_000))
    assert answer.status_code == 413
    assert answer.json()["error"] == "request_too_large" and answer.json()["limit"] == 1_000_000
    assert not list(redis_connection.scan_iter("rq:job:*"))
