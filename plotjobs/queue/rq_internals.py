"""Every use of RQ's internals, in one place; each says why RQ 3.0's public API does not suffice.

Besides these, plotjobs uses RQ only through its public API (queues, jobs, registries,
executions, results, workers, commands).
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

from rq.timeouts import BaseDeathPenalty
from rq.worker import BaseWorker

from plotjobs.queue.serialization import MAX_FIELD_BYTES, FieldTooLargeError, JsonSerializer


class BoundedZlib:
    """The part of the ``zlib`` module RQ uses: decompression capped at MAX_FIELD_BYTES, the last pair remembered.

    RQ compresses a job's data whenever it saves the whole job, and its worker does so when the
    job ends, although the data has not changed since it was read: for a chart of 20,000 points
    (a 300 KB spec) that is 24 ms of a worker's time per job. So the last bytes compressed or
    decompressed in this process are remembered with their compressed form, which is given
    back when the same bytes are compressed again.
    """

    error = zlib.error
    MAX_WBITS = zlib.MAX_WBITS
    # (plain, compressed); replaced whole, so a thread reads either the old pair or the new one.
    _last: tuple[bytes, bytes] = (b"", zlib.compress(b""))

    @staticmethod
    def compress(data: bytes, /, level: int = -1) -> bytes:
        """``zlib.compress``, or the compressed form of the same bytes seen last."""
        plain, packed = BoundedZlib._last
        if data is plain or (len(data) == len(plain) and data == plain):
            return packed
        packed = zlib.compress(data, level)
        BoundedZlib._last = (data, packed)
        return packed

    @staticmethod
    def decompress(data: bytes, wbits: int = zlib.MAX_WBITS, bufsize: int = zlib.DEF_BUF_SIZE) -> bytes:
        """``zlib.decompress`` that stops at MAX_FIELD_BYTES instead of filling memory with a zip bomb."""
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(data, MAX_FIELD_BYTES + 1)
        if len(out) > MAX_FIELD_BYTES or inflater.unconsumed_tail:
            # Not a zlib.error: RQ would catch that and use the compressed bytes as they are.
            raise FieldTooLargeError(f"a compressed field expands beyond {MAX_FIELD_BYTES} bytes")
        if not inflater.eof:
            raise zlib.error("incomplete or truncated stream")
        BoundedZlib._last = (out, bytes(data))
        return out


@functools.cache
def harden_rq() -> None:
    """Make RQ's default serializer JSON and its zlib bounded in this process (once; later calls do nothing)."""
    import rq.job
    import rq.results
    import rq.serializers

    # RQ and rq-dashboard fall back to RQ's pickle DefaultSerializer wherever a code path
    # forgets ``serializer=`` (rq-dashboard's worker list and job view do); RQ has no setting
    # for the default. DefaultSerializer is PickleSerializer and rq-dashboard's default: every forgotten
    # ``serializer=`` resolves to this class, whose methods RQ looks up at call time.
    rq.serializers.DefaultSerializer.dumps = staticmethod(JsonSerializer.dumps)
    rq.serializers.DefaultSerializer.loads = staticmethod(JsonSerializer.loads)
    # RQ decompresses job data, exception text and failure results with no size limit, and
    # before any serializer sees the bytes; only the module's zlib can be bounded.
    rq.job.zlib = BoundedZlib  # type: ignore[attr-defined,assignment]  # a stand-in for the module, by design
    rq.results.zlib = BoundedZlib  # type: ignore[attr-defined,assignment]  # a stand-in for the module, by design


def mark_stopped(worker: BaseWorker, job_id: str) -> None:
    """Have RQ record the failing job as STOPPED, not FAILED, as it does for its own stop command.

    RQ 3.0 sets this private attribute from ``send_stop_job_command``; our workers stop a canceled
    job cooperatively (between render stages), and RQ has no public way to say so.
    """
    worker._stopped_job_id = job_id


def death_penalty_of(penalty: BaseDeathPenalty) -> tuple[type[BaseException], Any]:
    """The exception class and the timeout a death penalty was built with.

    RQ keeps both only as private attributes of ``BaseDeathPenalty``; our message names the timeout.
    """
    return penalty._exception, penalty._timeout


# The job hash fields RQ zlib-compresses, and what stands in for one that expands too far.
_COMPRESSED_FIELDS = {b"data": zlib.compress(b"null"), b"exc_info": b""}


def defuse_compressed_fields(raw_job: dict[bytes, bytes]) -> tuple[dict[bytes, bytes], str | None]:
    """The job hash with any zip bomb in a compressed field replaced, and why (None when there was none).

    RQ's ``Job.restore`` stops at the first field it cannot read, leaving the job half-loaded
    and unsavable; replacing the bomb lets it load every other field, so the worker can record
    the failure (and writing the job back defuses the bomb in Redis).
    """
    reason = None
    cleaned = dict(raw_job)
    for field, stand_in in _COMPRESSED_FIELDS.items():
        value = cleaned.get(field)
        if value is None:
            continue
        try:
            BoundedZlib.decompress(value)
        except FieldTooLargeError as error:
            reason = f"{field.decode()}: {error}"
            cleaned[field] = stand_in
        except zlib.error:
            pass  # stored uncompressed: RQ reads it as it is
    return cleaned, reason


def dependency_ids_are_ids(job: Any) -> bool:
    """Whether the dependency ids RQ read from the job hash are a list of ids (RQ does not check).

    RQ keeps them, as read, in a private attribute; its public ``dependency_ids`` reads another
    key (the dependencies set), not the hash field RQ later acts on.
    """
    loaded = job._dependency_ids
    return isinstance(loaded, list) and all(isinstance(item, str) for item in loaded)
