"""JSON on the wire: nothing read from Redis is unpickled, and an oversized field is refused."""

from __future__ import annotations

import os
import pickle

import pytest

from plotjobs.queue.serialization import MAX_FIELD_BYTES, FieldTooLargeError, JsonSerializer


def test_plain_data_round_trips_as_json() -> None:
    value = {"a": [1, 2.5, "x", None, True], "nested": {"k": "v"}}
    encoded = JsonSerializer.dumps(value)
    assert encoded == b'{"a":[1,2.5,"x",null,true],"nested":{"k":"v"}}'
    assert JsonSerializer.loads(encoded) == value


@pytest.mark.parametrize("payload", [os.system, ValueError("x"), {"spec": 1}])
def test_a_pickle_is_refused_and_never_loaded(payload: object) -> None:
    with pytest.raises(ValueError):
        JsonSerializer.loads(pickle.dumps(payload))


def test_an_oversized_field_is_refused_before_parsing() -> None:
    with pytest.raises(FieldTooLargeError):
        JsonSerializer.loads(b" " * (MAX_FIELD_BYTES + 1))
