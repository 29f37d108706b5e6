"""The supervisor's restart delays: backoff after crashes in a row, afresh after a clean exit or a long run."""

from __future__ import annotations

import itertools
import signal
import sys
import time

import fakeredis
import pytest

from plotjobs.config import Settings
from plotjobs.worker import supervisor as supervisor_module
from plotjobs.worker.policy import HEALTHY_AFTER_SECONDS
from plotjobs.worker.supervisor import Slot, Supervisor


class ExitedProcess:
    """What ``Supervisor._ended`` reads of a child that has exited."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode


def _exit(supervisor: Supervisor, slot: Slot, returncode: int, ran_for: float = 1.0) -> float:
    """Let ``slot``'s worker exit after ``ran_for`` seconds; the delay before its restart."""
    slot.process = ExitedProcess(returncode)  # type: ignore[assignment]
    slot.started_at = time.monotonic() - ran_for
    supervisor._ended(slot)
    return slot.restart_at - time.monotonic()


def test_crashes_in_a_row_back_off_and_a_clean_exit_or_a_long_run_starts_afresh() -> None:
    supervisor = Supervisor(Settings(), fakeredis.FakeRedis(), processes=1, name_prefix="test")
    slot = supervisor.slots[0]
    delays = [_exit(supervisor, slot, returncode=1) for _ in range(4)]
    assert delays == pytest.approx([0.5, 1, 2, 4], abs=0.2)
    assert _exit(supervisor, slot, returncode=1, ran_for=HEALTHY_AFTER_SECONDS + 1) == pytest.approx(0.5, abs=0.2)
    assert _exit(supervisor, slot, returncode=1) == pytest.approx(1, abs=0.2)
    _exit(supervisor, slot, returncode=0)
    assert slot.restart_at == 0.0
    assert _exit(supervisor, slot, returncode=1) == pytest.approx(0.5, abs=0.2)


def test_a_worker_that_exits_at_once_is_restarted_after_delays_doubling_from_half_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real run: the supervisor spawns a command that fails at once; the gaps between spawns are the backoff."""
    monkeypatch.setattr(supervisor_module.signal, "signal", lambda signum, handler: None)  # keep pytest's handlers
    spawns: list[float] = []
    supervisor: Supervisor

    def crashing(name: str) -> list[str]:
        spawns.append(time.monotonic())  # the supervisor's own clock, read as it starts the process
        if len(spawns) == 4:
            supervisor.request_stop(signal.SIGTERM, None)
        return [sys.executable, "-c", "raise SystemExit(3)"]

    supervisor = Supervisor(Settings(), fakeredis.FakeRedis(), processes=1, name_prefix="test", command=crashing)
    assert supervisor.run() == 0  # the stop request came before the last crash: a warm stop
    gaps = [later - earlier for earlier, later in itertools.pairwise(spawns)]
    # Each gap is the delay plus the crash itself and up to two loop turns (0.25 s each); 1.5 s covers a loaded host.
    for gap, delay in zip(gaps, [0.5, 1.0, 2.0], strict=True):
        assert delay <= gap <= delay + 1.5, (gaps, [0.5, 1.0, 2.0])
