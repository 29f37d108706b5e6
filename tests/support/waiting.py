"""Waiting on conditions with a deadline, never a fixed sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

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


class Background(Generic[T]):
    """A call running in a daemon thread, so that a test can wait for it with a deadline."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._value: list[T] = []
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(call,), name="test-background", daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], T]) -> None:
        try:
            self._value.append(call())
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread by result()
            self._errors.append(error)

    def done(self) -> bool:
        """Whether the call has returned or raised."""
        return not self._thread.is_alive()

    def result(self, timeout: float = 20.0, what: str = "the call") -> T:
        """What the call returned (or raise what it raised); fail if it has not ended within ``timeout``."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise DeadlineExceeded(f"gave up after {timeout}s waiting for {what} to return")
        if self._errors:
            raise self._errors[0]
        return self._value[0]
