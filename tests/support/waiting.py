"""Waiting on conditions with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(AssertionError):
    """The condition did not hold before the deadline."""


def wait_for(condition: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.02, what: str = "") -> T:
    """Call ``condition`` until it returns something truthy, and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"gave up after {timeout}s waiting for {what or condition}")
        time.sleep(interval)  # sleep-ok: the polling interval of a deadline loop
