"""One JSON log line per request."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from plotjobs import logs
from tests.unit.test_logs import json_lines


def test_a_request_logs_one_json_line(fake_client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    fake_client.get("/healthz")
    (line,) = [line for line in json_lines(capsys.readouterr().out) if line["logger"] == logs.REQUEST_LOGGER]
    assert line["level"] == "info" and line["message"] == "request"
    assert (line["method"], line["path"], line["endpoint"], line["status"]) == (
        "GET",
        "/healthz",
        "monitoring.healthz",
        200,
    )
    assert line["remote_addr"] == "127.0.0.1" and line["duration_ms"] >= 0


def test_each_request_has_its_own_line_with_its_status(
    fake_client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    fake_client.get("/healthz")
    fake_client.get("/api/jobs/no-such-job")
    lines = [line for line in json_lines(capsys.readouterr().out) if line["logger"] == logs.REQUEST_LOGGER]
    assert [(line["path"], line["status"]) for line in lines] == [("/healthz", 200), ("/api/jobs/no-such-job", 404)]
