"""One hierarchy of errors, each with its HTTP status, its code and a JSON body."""

from __future__ import annotations

import inspect

import pytest

from plotjobs import errors

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.PlotjobsError) and cls.__module__ == errors.__name__
]


def test_the_hierarchy_is_found() -> None:
    assert len(ERROR_CLASSES) > 20 and errors.JobNotFound in ERROR_CLASSES


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_has_a_4xx_or_5xx_status_and_a_code(cls: type[errors.PlotjobsError]) -> None:
    assert 400 <= cls.status < 600
    assert cls.code and cls.code == cls.code.lower() and " " not in cls.code


def test_to_dict_has_error_and_message_and_field_only_when_given() -> None:
    assert errors.InvalidJSON("bad body").to_dict() == {"error": "invalid_json", "message": "bad body"}
    body = errors.InvalidSpec("width: too big", field="width", details=[{"field": "width"}]).to_dict()
    assert body == {
        "error": "invalid_spec",
        "message": "width: too big",
        "field": "width",
        "details": [{"field": "width"}],
    }


def test_errors_built_from_a_job_name_it_and_carry_their_extras() -> None:
    not_ready = errors.ResultNotReady("j1", "started")
    assert not_ready.to_dict() == {"error": "not_ready", "message": not_ready.message, "state": "started"}
    assert "j1" in not_ready.message and str(not_ready) == not_ready.message
    assert errors.CancelTokenRequired("j1").to_dict()["field"] == "X-Cancel-Token"
    busy = errors.TooManyRequests("full", code="queue_full", retry_after=7)
    assert (busy.status, busy.to_dict()["error"], busy.retry_after) == (429, "queue_full", 7)
    assert errors.BrokerUnavailable("down").status == 503
