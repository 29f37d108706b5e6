"""Exponential backoff: how long to wait before trying again after failures in a row."""

from __future__ import annotations

INITIAL_SECONDS = 0.5
MAXIMUM_SECONDS = 30.0


class Backoff:
    """Doubling delays from ``initial`` up to ``maximum``, back to ``initial`` after a success."""

    def __init__(self, initial: float = INITIAL_SECONDS, maximum: float = MAXIMUM_SECONDS) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def delay(self, failures: int) -> float:
        """The delay after the ``failures``-th failure in a row: ``initial``, then twice as long each time."""
        return float(min(self.initial * 2 ** max(failures - 1, 0), self.maximum))

    def next(self) -> float:
        """Count one more failure and return the delay to wait now."""
        self.failures += 1
        return self.delay(self.failures)

    def reset(self) -> None:
        """A success: the next failure waits ``initial`` again."""
        self.failures = 0
