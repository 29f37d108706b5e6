"""Isolated renders: a generator's render in a child process the worker kills when it overruns.

A render that holds the GIL (a long C call) cannot be interrupted by RQ's SIGALRM, and one that
crashes would take the worker with it. An ``isolated`` generator's render therefore runs in a
fresh Python process (``python -m plotjobs.queue.isolation``), started for the job and waited
for: the parent reads its progress and its result from a pipe, and kills it once the
generator's time limit has passed, when the job is canceled, or when the parent itself is
interrupted (RQ's own timeout). Nothing is pickled: the child gets its job as JSON on stdin and
answers in frames of a JSON header, followed by the file's bytes for the result.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from plotjobs import generators
from plotjobs.errors import RenderCrashed, RenderRaised, RenderTimedOut
from plotjobs.generators import Generator, ProgressCallback, RenderResult

_HEADER = struct.Struct(">I")
# The longest a message from the child may be: its file, at most, plus the header.
MAX_FRAME_BYTES = 512 * 1024 * 1024
# How often the parent looks for a cancel while the child is silent.
POLL_SECONDS = 0.25
# How long after its time limit a child whose parent is gone ends itself.
ORPHAN_GRACE_SECONDS = 2
# The child's file descriptor for its answers (its stdout goes to stderr, so stray prints cannot corrupt them).
_ANSWER_FD_ENV = "PLOTJOBS_ISOLATED_ANSWER_FD"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Frames:
    """Reads length-prefixed frames from a pipe, with a deadline on each wait."""

    def __init__(self, stream: BinaryIO) -> None:
        self.fd = stream.fileno()
        self.buffer = bytearray()
        self.closed = False

    def next(self, timeout: float) -> bytes | None:
        """The next whole frame, or None when none arrived within ``timeout`` or the pipe closed."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._take()
            if frame is not None or self.closed:
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if readable:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    self.closed = True
                self.buffer.extend(chunk)

    def _take(self) -> bytes | None:
        if len(self.buffer) < _HEADER.size:
            return None
        (length,) = _HEADER.unpack_from(self.buffer)
        if length > MAX_FRAME_BYTES:
            raise RenderRaised(f"the render process sent a message of {length} bytes, more than it may")
        if len(self.buffer) < _HEADER.size + length:
            return None
        frame = bytes(self.buffer[_HEADER.size : _HEADER.size + length])
        del self.buffer[: _HEADER.size + length]
        return frame


def render_isolated(
    generator: Generator,
    spec: dict[str, Any],
    progress: ProgressCallback,
    *,
    time_limit: float,
    canceled: Callable[[], bool],
) -> RenderResult | bytes:
    """Render ``spec`` in a child process; its exception, crash or overrun becomes an error raised here.

    ``progress`` receives the child's stages; ``canceled`` is asked while the child is silent. The
    child is always gone when this returns or raises (killed if need be, and waited for).
    """
    read_end, write_end = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-m", "plotjobs.queue.isolation"],
        stdin=subprocess.PIPE,
        stdout=None,
        stderr=None,
        pass_fds=(write_end,),
        env={**os.environ, _ANSWER_FD_ENV: str(write_end)},
        close_fds=True,
    )
    os.close(write_end)
    answers = os.fdopen(read_end, "rb", buffering=0)
    try:
        assert child.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            job = {"generator": generator.name, "spec": spec, "time_limit": time_limit}
            child.stdin.write(json.dumps(job).encode())
            child.stdin.close()
        return _follow(child, _Frames(answers), progress, time_limit=time_limit, canceled=canceled)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        answers.close()


def _follow(
    child: subprocess.Popen[bytes],
    frames: _Frames,
    progress: ProgressCallback,
    *,
    time_limit: float,
    canceled: Callable[[], bool],
) -> RenderResult | bytes:
    deadline = time.monotonic() + time_limit
    reached = 0.0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RenderTimedOut(f"render timed out after {time_limit:g} s (the generator's time limit); killed")
        frame = frames.next(min(POLL_SECONDS, remaining))
        if frame is None:
            if frames.closed:
                code = child.wait()
                how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
                raise RenderCrashed(f"the render process {how} before it answered")
            if canceled():
                # Raises JobCanceled (within its cancel-check interval): the job ends stopped, the child is killed.
                progress(reached, "canceling")
            continue
        header_length = frame.index(b"\n") if b"\n" in frame else len(frame)
        message = json.loads(frame[:header_length])
        if message["type"] == "progress":
            reached = float(message["progress"])
            progress(reached, str(message["stage"]))
        elif message["type"] == "error":
            raise RenderRaised(f"{message['error']}: {message['message']}")
        else:
            data = frame[header_length + 1 :]
            if message.get("format"):
                return RenderResult(data, str(message["format"]), str(message["content_type"]))
            return data


def _send(answers: BinaryIO, message: dict[str, Any], data: bytes = b"") -> None:
    header = json.dumps(message).encode()
    payload = header + b"\n" + data if data else header
    answers.write(_HEADER.pack(len(payload)) + payload)
    answers.flush()


def _limit_memory(megabytes: int) -> None:
    import resource

    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def child_main() -> None:
    """The child's side: read the job from stdin, render it, answer on the answer pipe."""
    answers = os.fdopen(int(os.environ[_ANSWER_FD_ENV]), "wb")
    # What the render prints must not land in the answers: stdout goes where stderr goes.
    os.dup2(2, 1)
    job = json.loads(sys.stdin.buffer.read())
    # A backstop should the worker die without killing this process: the kernel ends it (SIGALRM's
    # default action, which holding the GIL cannot delay) a little after the parent would have.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(math.ceil(float(job["time_limit"])) + ORPHAN_GRACE_SECONDS)
    generator = generators.get(job["generator"])
    try:
        spec = generator.validate(job["spec"])
        render = generator.render()
        if generator.memory_limit_mb is not None:
            _limit_memory(generator.memory_limit_mb)

        def report(fraction: float, stage: str) -> None:
            _send(answers, {"type": "progress", "progress": fraction, "stage": stage})

        output = render(spec, report)
    except BaseException as error:  # noqa: BLE001  # every failure is the job's reason, sent to the parent
        _send(answers, {"type": "error", "error": type(error).__name__, "message": str(error)[:1000]})
        raise SystemExit(1) from None
    if isinstance(output, RenderResult):
        message: dict[str, Any] = {"type": "result", "format": output.file_format, "content_type": output.content_type}
        data = output.data
    else:
        message, data = {"type": "result"}, output
    _send(answers, message, data)


if __name__ == "__main__":
    child_main()
