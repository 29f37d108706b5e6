"""Reading Server-Sent Events in tests, every read with a deadline."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tests.support.waiting import DeadlineExceeded

T = TypeVar("T")


def sse_blocks(chunks: Iterable[bytes]) -> Iterator[str]:
    """The raw blocks (events and comments) of an SSE byte stream, in order."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            yield block


def sse_events(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The status objects of an SSE byte stream, in order; comments are skipped."""
    for block in sse_blocks(chunks):
        lines = block.split("\n")
        if lines[0].startswith(":"):
            continue
        assert lines[0] == "event: status", block
        assert lines[1].startswith("data: "), block
        yield json.loads(lines[1][len("data: ") :])


def take(items: Iterator[T], timeout: float, count: int | None = None, what: str = "the stream") -> list[T]:
    """The next ``count`` items of ``items`` (all of them, to its end, if None); fail at the deadline.

    The iterator is read in a thread of its own, so a stream that stops sending cannot block the
    test: at the deadline the test fails and says what it had received. Once ``count`` items have
    arrived the thread is done and the iterator may be read again.
    """
    seen: list[T] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while count is None or len(seen) < count:
                try:
                    seen.append(next(items))
                except StopIteration:
                    return
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(error)

    reader = threading.Thread(target=read, name="sse-reader", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        wanted = "its end" if count is None else f"{count} item(s)"
        raise DeadlineExceeded(f"gave up after {timeout}s waiting for {wanted} of {what}; received {seen!r}")
    if errors:
        raise errors[0]
    if count is not None and len(seen) < count:
        raise AssertionError(f"{what} ended after {seen!r}, before {count} item(s)")
    return seen


def take_one(items: Iterator[T], timeout: float, what: str = "the stream") -> T:
    """The next item of ``items``; fail at the deadline or if it ends."""
    return take(items, timeout, count=1, what=what)[0]
