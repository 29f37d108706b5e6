"""Every Redis key plotjobs creates is under its prefix, and every lifetime is positive."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from plotjobs import keys

KEY_HELPERS = [
    function for _, function in inspect.getmembers(keys, inspect.isfunction) if function.__module__ == keys.__name__
]
CONSTANTS = {name: value for name, value in vars(keys).items() if name.isupper()}


def test_the_helpers_and_constants_are_found() -> None:
    assert len(KEY_HELPERS) >= 10
    assert {"ACCEPTED_TTL", "METRICS_TTL", "RESULT_PREFIX"} <= set(CONSTANTS)


@pytest.mark.parametrize("helper", KEY_HELPERS, ids=lambda helper: helper.__name__)
def test_every_key_helper_has_the_prefix_and_keeps_its_argument(helper: Callable[[str], str]) -> None:
    key = helper("abc")
    assert key.startswith(keys.PREFIX) and key.endswith(":abc")


def test_every_key_constant_has_the_prefix_and_every_ttl_is_positive() -> None:
    for name, value in CONSTANTS.items():
        if name.endswith("_TTL") or name == "DAY":
            assert isinstance(value, int) and value > 0, name
        elif name != "PREFIX":
            assert isinstance(value, str) and value.startswith(keys.PREFIX), name
