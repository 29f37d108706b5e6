"""The running job's id on every log line written while RQ runs it."""

from __future__ import annotations

import logging

import pytest

from plotjobs import logs
from plotjobs.worker import job_log
from tests.unit.test_logs import json_lines


def test_lines_logged_while_a_job_runs_carry_its_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class RunningJob:
        id = "job-42"

    logs.configure("INFO")
    logs.add_filter(job_log.CurrentJobFilter())
    try:
        capsys.readouterr()
        monkeypatch.setattr(job_log, "get_current_job", RunningJob)
        logging.getLogger("rq.job").info("inside the job")
        logs.log_event(logs.JOB_LOGGER, "job", job_id="named-already")
        monkeypatch.setattr(job_log, "get_current_job", lambda: None)
        logging.getLogger("rq.worker").info("between jobs")
        inside, named, between = json_lines(capsys.readouterr().out)
    finally:
        handler = logging.getLogger(logs.LOGGER_NAME).handlers[0]
        for record_filter in handler.filters[:]:
            handler.removeFilter(record_filter)
    assert inside["job_id"] == "job-42" and named["job_id"] == "named-already" and "job_id" not in between


def test_the_filter_adds_job_id_and_keeps_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    class RunningJob:
        id = "job-7"

    record = logging.LogRecord("rq.job", logging.INFO, __file__, 1, "inside", None, None)
    monkeypatch.setattr(job_log, "get_current_job", RunningJob)
    assert job_log.CurrentJobFilter().filter(record) is True
    assert getattr(record, "job_id", None) == "job-7"
    outside = logging.LogRecord("rq.worker", logging.INFO, __file__, 1, "idle", None, None)
    monkeypatch.setattr(job_log, "get_current_job", lambda: None)
    assert job_log.CurrentJobFilter().filter(outside) is True
    assert not hasattr(outside, "job_id")
