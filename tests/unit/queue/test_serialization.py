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


def test_a_field_of_exactly_the_limit_is_read() -> None:
    at_limit = b'"' + b"a" * (MAX_FIELD_BYTES - 2) + b'"'
    assert len(at_limit) == MAX_FIELD_BYTES
    assert JsonSerializer.loads(at_limit) == "a" * (MAX_FIELD_BYTES - 2)


def test_the_refusal_says_how_large_the_field_was_and_the_limit() -> None:
    with pytest.raises(FieldTooLargeError) as refused:
        JsonSerializer.loads(b" " * (MAX_FIELD_BYTES + 1))
    assert str(refused.value) == f"a {MAX_FIELD_BYTES + 1}-byte field; at most {MAX_FIELD_BYTES} are read"
