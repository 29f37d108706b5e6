"""One log format: every line a JSON object with ts, level, logger, message and its own fields."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from plotjobs import logs
from plotjobs.config import Settings
from plotjobs.worker.render_worker import build_worker


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of ``output``, each parsed as JSON (a line that is not JSON fails the test)."""
    lines = [json.loads(text) for text in output.splitlines() if text.strip()]
    for line in lines:
        assert {"ts", "level", "logger", "message"} <= set(line), line
    return lines


def test_a_job_and_rqs_own_lines_are_json(
    fake_client: FlaskClient, fake_redis: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = fake_client.post("/api/jobs", json={"title": "logged"}).get_json()["id"]
    capsys.readouterr()
    # As `plotjobs worker --single` does: our handler is in place before RQ's work() sets up its logging.
    logs.configure("INFO")
    build_worker(fake_redis, Settings(redis_url="redis://fake")).work(burst=True, logging_level="INFO")
    lines = json_lines(capsys.readouterr().out)
    (job,) = [line for line in lines if line["logger"] == logs.JOB_LOGGER]
    assert (job["job_id"], job["kind"], job["queue"], job["outcome"]) == (job_id, "line", "default", "finished")
    assert job["duration_ms"] > 0
    rq_lines = [line for line in lines if line["logger"].startswith("rq.")]
    assert any(job_id in line["message"] for line in rq_lines), rq_lines
    assert not logging.getLogger("rq.worker").handlers, "RQ added a handler of its own"


def test_rq_handlers_added_before_configure_make_way_for_ours(capsys: pytest.CaptureFixture[str]) -> None:
    from rq.logutils import ColorizingStreamHandler

    rq_worker = logging.getLogger("rq.worker")
    # What a stock `rq worker --logging-level WARNING` has set up (rq.logutils.setup_loghandlers) before
    # our task first calls configure(): its handler, its level, and propagation off.
    rq_worker.addHandler(ColorizingStreamHandler())
    rq_worker.setLevel("WARNING")
    rq_worker.propagate = False
    logs.configure("INFO")
    assert not rq_worker.handlers
    capsys.readouterr()
    rq_worker.info("Worker %s: started", "w1")
    (line,) = json_lines(capsys.readouterr().out)
    assert (line["logger"], line["message"]) == ("rq.worker", "Worker w1: started")


def test_an_exception_is_part_of_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO")
    capsys.readouterr()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("plotjobs.test").exception("it failed")
    (line,) = json_lines(capsys.readouterr().out)
    assert line["level"] == "error" and "RuntimeError: boom" in line["exception"]


def _formatter(config: dict[str, Any], handler_name: str) -> logging.Formatter:
    handler = config["handlers"][handler_name]
    factory = config["formatters"][handler["formatter"]]["()"]
    module, _, name = factory.rpartition(".")
    formatter: logging.Formatter = getattr(__import__(module, fromlist=[name]), name)()
    return formatter


def test_gunicorn_logs_json_lines_too() -> None:
    config = logs.gunicorn_logconfig("INFO", "-")
    error_handler = config["loggers"]["gunicorn.error"]["handlers"][0]
    assert config["handlers"][error_handler]["stream"] == "ext://sys.stderr"
    started = logging.LogRecord("gunicorn.error", logging.INFO, "", 0, "Starting gunicorn %s", ("27",), None)
    assert json.loads(_formatter(config, error_handler).format(started))["message"] == "Starting gunicorn 27"

    access_handler = config["loggers"]["gunicorn.access"]["handlers"][0]
    atoms = {"h": "10.0.0.9", "m": "POST", "U": "/api/jobs", "s": "202", "D": 1500, "r": "POST /api/jobs HTTP/1.1"}
    served = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, '%(h)s "%(r)s" %(s)s', (atoms,), None)
    line = json.loads(_formatter(config, access_handler).format(served))
    assert line["message"] == '10.0.0.9 "POST /api/jobs HTTP/1.1" 202'
    assert (line["method"], line["path"], line["status"], line["remote_addr"], line["duration_ms"]) == (
        "POST", "/api/jobs", 202, "10.0.0.9", 1.5,
    )  # fmt: skip


def test_gunicorns_access_log_is_off_unless_asked_for() -> None:
    config = logs.gunicorn_logconfig("INFO", None)
    assert config["handlers"]["access"]["class"] == "logging.NullHandler"
    assert logs.gunicorn_logconfig("INFO", "/var/log/access.log")["handlers"]["access"]["filename"] == (
        "/var/log/access.log"
    )
