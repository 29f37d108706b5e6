"""Pushed progress: one Redis subscription per web process, fanned out as Server-Sent Events.

See docs/design.md, "Pushed progress".
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from redis import Redis
from redis.client import PubSub
from redis.exceptions import RedisError

from plotjobs import keys, states
from plotjobs.errors import JobNotFound
from plotjobs.queue import jobs, status

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0
SUBSCRIBE_TIMEOUT = 5.0
STOP_TIMEOUT = 10.0


class Watch:
    """One stream's interest in one job: woken by the hub, waited on by the stream."""

    def __init__(self, hub: EventHub, job_id: str) -> None:
        self.hub = hub
        self.job_id = job_id
        self._woken = threading.Event()

    def wake(self) -> None:
        """Tell the stream that the job may have changed."""
        self._woken.set()

    def wait(self, timeout: float) -> bool:
        """Block until woken or ``timeout`` seconds pass; True if woken."""
        woken = self._woken.wait(timeout)
        if woken:
            # Cleared before the stream reads, so a wake-up during the read is kept for the next wait.
            self._woken.clear()
        return woken

    def close(self) -> None:
        """Stop watching."""
        self.hub.unwatch(self)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class HubUnavailable(RedisError):
    """The hub could not subscribe to the events channel in time."""


class EventHub:
    """The per-process subscriber that wakes the watches of each job."""

    def __init__(
        self,
        connection: Redis,
        poll_interval: float = POLL_SECONDS,
        *,
        subscribe_timeout: float = SUBSCRIBE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.poll_interval = poll_interval
        self.subscribe_timeout = subscribe_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._watches: dict[str, set[Watch]] = {}
        self._last_states: dict[str, str | None] = {}
        # Per job: wake-ups so far, and the last status read with the count it covers, so
        # that the streams woken together share one read instead of one each.
        self._versions: dict[str, int] = {}
        self._snapshots: dict[str, tuple[int, dict[str, Any]]] = {}
        self._read_locks: dict[str, threading.Lock] = {}
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def watch(self, job_id: str) -> Watch:
        """Start watching ``job_id``; updates published from now on wake the returned watch."""
        self._ensure_running()
        watch = Watch(self, job_id)
        with self._lock:
            self._watches.setdefault(job_id, set()).add(watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        """Forget ``watch``."""
        with self._lock:
            watches = self._watches.get(watch.job_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[watch.job_id]
                    for per_job in (self._last_states, self._versions, self._snapshots, self._read_locks):
                        per_job.pop(watch.job_id, None)

    def status(self, job_id: str, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The job's status as of its latest wake-up, read once for all the streams that ask."""
        with self._lock:
            read_lock = self._read_locks.setdefault(job_id, threading.Lock())
        with read_lock:
            with self._lock:
                wanted = self._versions.get(job_id, 0)
                snapshot = self._snapshots.get(job_id)
            if snapshot is not None and snapshot[0] >= wanted:
                return snapshot[1]
            status = read()
            with self._lock:
                if job_id in self._watches:
                    self._snapshots[job_id] = (wanted, status)
            return status

    def watched(self) -> int:
        """How many streams are open in this process."""
        with self._lock:
            return sum(len(watches) for watches in self._watches.values())

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the background thread, waiting at most ``timeout`` seconds for it (tests and shutdown)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _ensure_running(self) -> None:
        with self._lock:
            # A forked child inherits the object but not the thread: start its own.
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._subscribed.clear()
                self._stopping.clear()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="plotjobs-events", daemon=True)
                self._thread.start()
        # Subscribing first is what closes the race with the stream's first read.
        if not self._subscribed.wait(self.subscribe_timeout):
            raise HubUnavailable("could not subscribe to job events")

    def _wake(self, job_ids: list[str] | None = None) -> None:
        with self._lock:
            woken = [job_id for job_id in self._watches if job_ids is None or job_id in job_ids]
            for job_id in woken:
                self._versions[job_id] = self._versions.get(job_id, 0) + 1
            targets = [watch for job_id in woken for watch in self._watches[job_id]]
        for watch in targets:
            watch.wake()

    def _run(self) -> None:
        while not self._stopping.is_set():
            pubsub = self.connection.pubsub()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            try:
                self._listen(pubsub)
            except RedisError as error:
                log.warning("job events subscription lost (%s); resubscribing", error)
            finally:
                self._subscribed.clear()
                pubsub.close()
            # Streams re-read on wake-up, so nothing published during the outage is lost to them.
            self._wake()
            self._stopping.wait(self.poll_interval)

    def _listen(self, pubsub: PubSub) -> None:
        pubsub.psubscribe(keys.EVENTS_PREFIX + "*")
        deadline = self.clock() + self.subscribe_timeout
        while not self._stopping.is_set() and self.clock() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "psubscribe":
                break
        else:
            return
        self._subscribed.set()
        next_poll = self.clock() + self.poll_interval
        while not self._stopping.is_set():
            # At most a second per wait, so that stop() is noticed soon whatever the poll interval.
            message = pubsub.get_message(timeout=min(1.0, max(0.0, next_poll - self.clock())))
            if message is not None and message["type"] == "pmessage":
                channel = message["channel"].decode()
                self._wake([channel[len(keys.EVENTS_PREFIX) :]])
            if self.clock() >= next_poll:
                self._poll_states()
                next_poll = self.clock() + self.poll_interval

    def _poll_states(self) -> None:
        with self._lock:
            job_ids = list(self._watches)
        if not job_ids:
            return
        current = jobs.read_states(self.connection, job_ids)
        with self._lock:
            # A job never read counts as changed, even when it is gone (None): its streams must learn that.
            changed = [
                job_id
                for job_id, state in current.items()
                if job_id not in self._last_states or self._last_states[job_id] != state
            ]
            for job_id in changed:
                if job_id in self._watches:
                    self._last_states[job_id] = current[job_id]
        if changed:
            self._wake(changed)


def sse_message(status: dict[str, Any]) -> str:
    """One ``status`` event carrying the job's status JSON."""
    return f"event: status\ndata: {json.dumps(status)}\n\n"


def open_stream(connection: Redis, hub: EventHub, job_id: str, keepalive: float = KEEPALIVE_SECONDS) -> Iterator[str]:
    """The SSE stream of a job, never idle ``keepalive`` seconds; JobNotFound (before anything is sent) if unknown."""
    if not jobs.is_job_id(job_id):
        raise JobNotFound(job_id)
    watch = hub.watch(job_id)
    try:
        first = status.current(connection, job_id)
    except BaseException:
        watch.close()
        raise
    return _stream(connection, watch, first, keepalive)


def _stream(connection: Redis, watch: Watch, first: dict[str, Any], keepalive: float) -> Iterator[str]:
    with watch:
        yield sse_message(first)
        last = first
        while not states.is_terminal(last["state"]):
            if not watch.wait(keepalive):
                # A comment line: keeps proxies from closing an idle stream and finds gone clients.
                yield ": keep-alive\n\n"
                continue
            try:
                current = watch.hub.status(watch.job_id, lambda: status.current(connection, watch.job_id))
            except JobNotFound:
                return
            except RedisError as error:
                log.warning("ending the event stream of job %s: %s", watch.job_id, error)
                return
            if current != last:
                yield sse_message(current)
                last = current
