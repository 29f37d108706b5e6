"""The supervisor's restart delays: backoff after crashes in a row, afresh after a clean exit or a long run."""

from __future__ import annotations

import itertools
import signal
import sys
import time
from typing import Any

import fakeredis
import pytest
from redis import Redis

from plotjobs.config import Settings
from plotjobs.worker import supervisor as supervisor_module
from plotjobs.worker.policy import HEALTHY_AFTER_SECONDS
from plotjobs.worker.recovery import SweepReport
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


class FakeProcess:
    """A child worker the test controls: it runs until told how it exited."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)

    def kill(self) -> None:
        self.signals.append(signal.SIGKILL)


class Spawner:
    """Stands in for subprocess.Popen in the supervisor: records each command and returns a FakeProcess."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.processes: list[FakeProcess] = []

    def __call__(self, argv: list[str]) -> FakeProcess:
        self.commands.append(argv)
        self.processes.append(FakeProcess(1000 + len(self.processes)))
        return self.processes[-1]


@pytest.fixture
def spawner(monkeypatch: pytest.MonkeyPatch) -> Spawner:
    spawned = Spawner()
    monkeypatch.setattr(supervisor_module.subprocess, "Popen", spawned)
    return spawned


def _supervisor(processes: int = 2, **kwargs: Any) -> Supervisor:
    return Supervisor(Settings(), fakeredis.FakeRedis(), processes=processes, name_prefix="host.1", **kwargs)


def test_the_worker_command_runs_one_plotjobs_worker_by_name_in_burst_when_asked() -> None:
    prefix = [sys.executable, "-m", "plotjobs", "worker", "--single", "--name", "w"]
    assert supervisor_module.worker_command(burst=False)("w") == prefix
    assert supervisor_module.worker_command(burst=True)("w") == [*prefix, "--burst"]


def test_each_slot_starts_a_worker_named_after_host_slot_and_generation(spawner: Spawner) -> None:
    supervisor = _supervisor(command=lambda name: ["worker", name])
    supervisor._start_due()
    assert spawner.commands == [["worker", "host.1.1.1"], ["worker", "host.1.2.1"]]
    assert [slot.name for slot in supervisor.slots] == ["host.1.1.1", "host.1.2.1"]
    supervisor._start_due()
    assert len(spawner.commands) == 2, "a slot whose worker runs is not started again"
    spawner.processes[0].returncode = 0
    supervisor._ended(supervisor.slots[0])
    supervisor._start_due()
    assert spawner.commands[-1] == ["worker", "host.1.1.2"]
    assert supervisor.slots[0].started_at == pytest.approx(time.monotonic(), abs=1)


def test_a_crashed_slot_waits_for_its_restart_time(spawner: Spawner) -> None:
    supervisor = _supervisor(processes=1, command=lambda name: ["worker", name])
    supervisor._start_due()
    spawner.processes[0].returncode = 1
    supervisor._ended(supervisor.slots[0])
    supervisor._start_due()
    assert len(spawner.commands) == 1
    supervisor.slots[0].restart_at = time.monotonic()
    supervisor._start_due()
    assert len(spawner.commands) == 2


def test_a_burst_slot_that_exited_cleanly_is_done_and_not_restarted(spawner: Spawner) -> None:
    supervisor = _supervisor(processes=1, burst=True, command=lambda name: ["worker", name])
    supervisor._start_due()
    spawner.processes[0].returncode = 0
    assert supervisor._ended(supervisor.slots[0]) is True
    assert supervisor.slots[0].done
    supervisor._start_due()
    assert len(spawner.commands) == 1


def test_a_clean_exit_recovers_nothing_and_a_crash_or_early_stop_recovers_the_workers_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recovered: list[str] = []
    supervisor = _supervisor(processes=1)
    monkeypatch.setattr(supervisor, "_recover", recovered.append)
    slot = supervisor.slots[0]
    slot.name = "host.1.1.1"
    for returncode, recycling, clean, recovers in [
        (0, False, True, False),
        (0, True, True, False),
        (-signal.SIGTERM, True, True, True),
        (-signal.SIGKILL, False, False, True),
    ]:
        recovered.clear()
        slot.process = ExitedProcess(returncode)  # type: ignore[assignment]
        slot.recycling = recycling
        assert supervisor._ended(slot) is clean
        assert slot.process is None
        assert recovered == (["host.1.1.1"] if recovers else []), (returncode, recycling)


def test_recovering_declares_the_worker_dead_and_sweeps_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    supervisor = _supervisor(processes=1)
    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(
        supervisor_module.recovery, "declare_dead", lambda connection, name, settings: calls.append(("dead", name))
    )
    monkeypatch.setattr(
        supervisor_module.recovery,
        "sweep",
        lambda connection, settings, force=False: calls.append(("sweep", force)) or SweepReport(requeued=["j1"]),
    )
    supervisor._recover("w1")
    assert calls == [("dead", "w1"), ("sweep", True)]


def test_recovering_and_sweeping_survive_redis_being_down(plotjobs_logs: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor(Settings(), Redis(port=1, socket_connect_timeout=0.2), processes=1, name_prefix="x")
    supervisor._recover("w1")
    supervisor._sweep()
    messages = [record.getMessage() for record in plotjobs_logs.records]
    assert any("the next sweep recovers w1's job" in message for message in messages), messages
    assert any("sweep skipped, Redis unreachable" in message for message in messages), messages


def test_the_periodic_sweep_runs_once_per_sweep_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    supervisor = _supervisor(processes=1)
    sweeps: list[bool] = []
    monkeypatch.setattr(
        supervisor_module.recovery, "sweep", lambda connection, settings, force=False: sweeps.append(force)
    )
    supervisor._sweep()
    supervisor._sweep()
    assert sweeps == [False]
    assert supervisor._next_sweep == pytest.approx(time.monotonic() + Settings().sweep_interval, abs=1)
    supervisor._next_sweep = time.monotonic()
    supervisor._sweep()
    assert sweeps == [False, False]


class Memory:
    def __init__(self, rss: int) -> None:
        self.rss = rss


def test_a_beating_worker_over_its_memory_limit_is_recycled_once(
    spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = Settings().worker_max_memory_mb * 1024 * 1024
    rss = {1000: limit + 1, 1001: limit}
    monkeypatch.setattr(
        supervisor_module.psutil, "Process", lambda pid: type("P", (), {"memory_info": lambda self: Memory(rss[pid])})()
    )
    supervisor = _supervisor(command=lambda name: ["worker", name])
    supervisor._start_due()
    for slot in supervisor.slots:
        supervisor_module.recovery.beat(supervisor.connection, slot.name)
    supervisor._recycle_oversized()
    assert spawner.processes[0].signals == [signal.SIGTERM]
    assert spawner.processes[1].signals == []
    assert [slot.recycling for slot in supervisor.slots] == [True, False]
    supervisor._next_memory_check = 0.0
    supervisor._recycle_oversized()
    assert spawner.processes[0].signals == [signal.SIGTERM], "a worker being recycled is not signalled again"


def test_memory_is_checked_once_a_second_and_a_worker_not_yet_beating_is_left_to_start(
    spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[int] = []

    def process(pid: int) -> Any:
        checked.append(pid)
        return type("P", (), {"memory_info": lambda self: Memory(1 << 40)})()

    monkeypatch.setattr(supervisor_module.psutil, "Process", process)
    supervisor = _supervisor(processes=1, command=lambda name: ["worker", name])
    supervisor._start_due()
    supervisor._recycle_oversized()
    assert checked == [1000] and spawner.processes[0].signals == []
    supervisor._recycle_oversized()
    assert checked == [1000], "checked again before MEMORY_CHECK_SECONDS passed"
    assert supervisor._next_memory_check == pytest.approx(
        time.monotonic() + supervisor_module.MEMORY_CHECK_SECONDS, abs=0.5
    )


def test_a_vanished_process_is_skipped_by_the_memory_check(spawner: Spawner, monkeypatch: pytest.MonkeyPatch) -> None:
    def gone(pid: int) -> Any:
        raise supervisor_module.psutil.NoSuchProcess(pid)

    monkeypatch.setattr(supervisor_module.psutil, "Process", gone)
    supervisor = _supervisor(command=lambda name: ["worker", name])
    supervisor._start_due()
    supervisor._recycle_oversized()
    assert all(not slot.recycling for slot in supervisor.slots)


def test_the_first_stop_signal_asks_live_workers_to_finish_and_the_second_kills_them(spawner: Spawner) -> None:
    supervisor = _supervisor(command=lambda name: ["worker", name])
    supervisor._start_due()
    spawner.processes[1].returncode = 0  # already exited: not signalled
    supervisor.request_stop(signal.SIGTERM, None)
    assert supervisor.stop_requests == 1
    assert spawner.processes[0].signals == [signal.SIGTERM] and spawner.processes[1].signals == []
    assert supervisor._wake.is_set()
    supervisor.request_stop(signal.SIGTERM, None)
    assert supervisor.stop_requests == 2
    assert spawner.processes[0].signals == [signal.SIGTERM, signal.SIGKILL]


def test_ctrl_c_relayed_as_sigterm_is_one_stop_request(spawner: Spawner) -> None:
    supervisor = _supervisor(command=lambda name: ["worker", name])
    supervisor._start_due()
    supervisor.request_stop(signal.SIGINT, None)
    supervisor.request_stop(signal.SIGTERM, None)
    assert supervisor.stop_requests == 1
    assert spawner.processes[0].signals == [signal.SIGTERM]


def test_run_in_burst_ends_when_every_worker_is_done_and_starts_none_after_a_stop(
    spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor_module.signal, "signal", lambda signum, handler: None)
    supervisor = _supervisor(burst=True, command=lambda name: ["worker", name])
    monkeypatch.setattr(supervisor_module.recovery, "sweep", lambda connection, settings, force=False: None)
    original_start = supervisor._start_due

    def start_then_finish() -> None:
        original_start()
        for process in spawner.processes:
            process.returncode = 0

    monkeypatch.setattr(supervisor, "_start_due", start_then_finish)
    assert supervisor.run() == 0
    assert len(spawner.commands) == 2


def test_a_slot_restarts_exactly_at_its_restart_time(spawner: Spawner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module.time, "monotonic", lambda: 100.0)
    supervisor = _supervisor(processes=1, command=lambda name: ["worker", name])
    supervisor.slots[0].restart_at = 100.0
    supervisor._start_due()
    assert len(spawner.commands) == 1


def test_memory_is_checked_again_exactly_when_due_and_every_slot_is_looked_at(
    spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = Settings().worker_max_memory_mb * 1024 * 1024
    rss = {1000: limit, 1001: limit + 1}  # the first is under its limit, the second over
    monkeypatch.setattr(
        supervisor_module.psutil, "Process", lambda pid: type("P", (), {"memory_info": lambda self: Memory(rss[pid])})()
    )
    monkeypatch.setattr(supervisor_module.time, "monotonic", lambda: 100.0)
    supervisor = _supervisor(command=lambda name: ["worker", name])
    supervisor._start_due()
    for slot in supervisor.slots:
        supervisor_module.recovery.beat(supervisor.connection, slot.name)
    supervisor._next_memory_check = 100.0
    supervisor._recycle_oversized()
    assert [process.signals for process in spawner.processes] == [[], [signal.SIGTERM]]


def test_a_burst_run_whose_worker_crashed_once_exits_non_zero(
    spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor_module.signal, "signal", lambda signum, handler: None)
    monkeypatch.setattr(supervisor_module.recovery, "sweep", lambda connection, settings, force=False: None)
    monkeypatch.setattr(supervisor_module.recovery, "declare_dead", lambda connection, name, settings: None)
    supervisor = _supervisor(processes=1, burst=True, command=lambda name: ["worker", name])
    exits = iter([1, 0])
    original_start = supervisor._start_due

    def start_then_exit() -> None:
        started = len(spawner.processes)
        original_start()
        if len(spawner.processes) > started:
            spawner.processes[-1].returncode = next(exits)

    monkeypatch.setattr(supervisor, "_start_due", start_then_exit)
    assert supervisor.run() == 1
    assert len(spawner.commands) == 2
