"""The one backoff: doubling delays to a ceiling, afresh after a success."""

from __future__ import annotations

from plotjobs.backoff import Backoff


def test_backoff_doubles_to_a_ceiling_and_resets() -> None:
    backoff = Backoff(initial=0.5, maximum=3)
    assert [backoff.next() for _ in range(5)] == [0.5, 1, 2, 3, 3]
    backoff.reset()
    assert backoff.next() == 0.5


def test_default_delays_run_from_half_a_second_to_thirty() -> None:
    backoff = Backoff()
    assert [backoff.delay(failures) for failures in (0, 1, 2, 3, 7, 8, 50)] == [0.5, 0.5, 1, 2, 30, 30, 30]
