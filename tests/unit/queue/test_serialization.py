"""Job data crosses Redis as pickle that stock RQ can read, but we load only plain data."""

from __future__ import annotations

import os
import pickle

import pytest

from plotjobs.queue.serialization import ForbiddenObjectError, PlainDataSerializer


def test_plain_data_round_trips() -> None:
    value = {"a": [1, 2.5, "x", None, True, b"raw", (1, 2)], "nested": {"k": "v"}}
    assert PlainDataSerializer.loads(PlainDataSerializer.dumps(value)) == value


def test_output_is_ordinary_pickle() -> None:
    assert pickle.loads(PlainDataSerializer.dumps({"spec": {"title": "t"}})) == {"spec": {"title": "t"}}


@pytest.mark.parametrize("payload", [os.system, pickle.Pickler, ValueError("x")])
def test_any_object_is_refused(payload: object) -> None:
    with pytest.raises(ForbiddenObjectError):
        PlainDataSerializer.loads(pickle.dumps(payload))
