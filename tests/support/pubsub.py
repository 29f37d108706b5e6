"""A Redis whose pub/sub the test drives step by step, on a clock the test moves."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import fakeredis
from rq.job import Job

from plotjobs import keys
from tests.support.waiting import DeadlineExceeded

# No answer comes this long after a test gave up: the subscriber is then let go (it sees no message).
ABANDONED_SECONDS = 60.0
# How long a test waits for the subscriber's next step.
STEP_SECONDS = 10.0


class FakeClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` ahead."""
        with self._lock:
            self.now += seconds


def subscribed_message(pattern: str = keys.EVENTS_PREFIX + "*") -> dict[str, Any]:
    """What Redis sends when a pattern subscription is in place."""
    return {"type": "psubscribe", "pattern": None, "channel": pattern.encode(), "data": 1}


def published_message(job_id: str, data: bytes = b"{}") -> dict[str, Any]:
    """What Redis sends a pattern subscriber for a message published on the job's events channel."""
    channel = keys.events(job_id).encode()
    return {"type": "pmessage", "pattern": (keys.EVENTS_PREFIX + "*").encode(), "channel": channel, "data": data}


@dataclass
class Wait:
    """One ``get_message`` call, blocked until the test answers it."""

    timeout: float | None
    clock: FakeClock
    _answers: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)

    def times_out(self, seconds: float | None = None) -> None:
        """Let the wait end without a message, ``seconds`` (its whole timeout by default) later."""
        if seconds is None:
            assert self.timeout is not None, "the subscriber asked to wait forever"
            seconds = self.timeout
        self.clock.advance(seconds)
        self._answers.put(("message", None))

    def receives(self, message: dict[str, Any], after: float = 0.0) -> None:
        """End the wait with ``message``, ``after`` seconds later."""
        self.clock.advance(after)
        self._answers.put(("message", message))

    def fails(self, error: Exception) -> None:
        """End the wait by raising ``error`` in the subscriber, as a lost connection would."""
        self._answers.put(("error", error))

    def answer(self) -> dict[str, Any] | None:
        """The subscriber's side: block until the test answers, then return or raise what it gave."""
        try:
            kind, value = self._answers.get(timeout=ABANDONED_SECONDS)
        except queue.Empty:
            return None
        if kind == "error":
            raise value
        message: dict[str, Any] | None = value
        return message


class ScriptedPubSub:
    """A pub/sub connection whose every wait for a message is answered by the test."""

    def __init__(self, clock: FakeClock, confirm: bool) -> None:
        self.clock = clock
        self.patterns: list[str] = []
        self.opened_by = threading.current_thread()
        self.closed = threading.Event()
        self._confirm = confirm
        self._pending: list[dict[str, Any]] = []
        self._waits: queue.Queue[Wait] = queue.Queue()
        self._lock = threading.Lock()
        self._every_wait: list[Wait] = []
        self._released = False

    def psubscribe(self, *patterns: str) -> None:
        """Subscribe to ``patterns``; confirmed at once when the Redis confirms by itself."""
        self.patterns.extend(patterns)
        if self._confirm:
            self._pending.extend(subscribed_message(pattern) for pattern in patterns)

    def get_message(self, timeout: float | None = 0.0) -> dict[str, Any] | None:
        """The next message: a pending confirmation, else whatever the test answers."""
        if self._pending:
            return self._pending.pop(0)
        with self._lock:
            if self._released:
                return None
            wait = Wait(timeout, self.clock)
            self._every_wait.append(wait)
        self._waits.put(wait)
        return wait.answer()

    def close(self) -> None:
        """Close the connection."""
        self.closed.set()

    def next_wait(self, seconds: float = STEP_SECONDS) -> Wait:
        """The subscriber's next wait for a message; fail if it does not come within ``seconds``."""
        try:
            return self._waits.get(timeout=seconds)
        except queue.Empty:
            raise DeadlineExceeded(f"the subscriber did not wait for a message within {seconds}s") from None

    def release(self) -> None:
        """Answer every wait, now and from now on, at once with no message (the test is done with the connection)."""
        with self._lock:
            self._released = True
            waits = list(self._every_wait)
        for wait in waits:
            wait.times_out(0.0)  # a second answer to a wait already answered is never read


class ScriptedRedis(fakeredis.FakeRedis):
    """fakeredis for commands; each ``pubsub()`` is a ScriptedPubSub on the shared fake clock."""

    def __init__(self, clock: FakeClock, *, confirm: bool = True) -> None:
        self.server = fakeredis.FakeServer()
        super().__init__(server=self.server)
        self.clock = clock
        self.confirm = confirm
        self.pubsubs: list[ScriptedPubSub] = []
        self._opened = threading.Condition()

    def pubsub(self, **kwargs: Any) -> ScriptedPubSub:  # type: ignore[override]
        """A new scripted pub/sub connection."""
        pubsub = ScriptedPubSub(self.clock, self.confirm)
        with self._opened:
            self.pubsubs.append(pubsub)
            self._opened.notify_all()
        return pubsub

    def opened(self, count: int, seconds: float = STEP_SECONDS) -> ScriptedPubSub:
        """The ``count``-th pub/sub connection opened; fail if it is not within ``seconds``."""
        with self._opened:
            if not self._opened.wait_for(lambda: len(self.pubsubs) >= count, timeout=seconds):
                raise DeadlineExceeded(f"pub/sub connection {count} was not opened within {seconds}s")
            return self.pubsubs[count - 1]

    def set_state(self, job_id: str, state: str) -> None:
        """Give a job the RQ status ``state`` (all the hub's periodic read looks at)."""
        self.hset(Job.key_for(job_id), "status", state)

    def release_all(self) -> None:
        """Let every subscriber go (see ScriptedPubSub.release)."""
        for pubsub in self.pubsubs:
            pubsub.release()
