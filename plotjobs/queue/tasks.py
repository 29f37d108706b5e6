"""The one task RQ workers run: validate a generator's spec again, render it with progress, store the file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job
from rq.queue import Queue

from plotjobs import generators, keys
from plotjobs import logs as logging_setup
from plotjobs.config import from_env as settings_from_env
from plotjobs.config import log_level_from_env
from plotjobs.errors import DataExpired, GeneratorNotServed, InvalidSpecError, JobCanceled, RenderRaised
from plotjobs.generators import Generator, RenderResult
from plotjobs.queue import data as data_store
from plotjobs.queue import isolation, metrics, results
from plotjobs.spec.base import GeneratorSpec, attach_arrays


def progress_meta(progress: float, stage: str) -> dict[str, object]:
    """The whole of ``job.meta``: this is its only shape."""
    return {
        "progress": round(progress, 3),
        "stage": stage,
        "updated_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def _event(job: Job) -> str:
    state = job.get_status(refresh=False)
    return json.dumps({"id": job.id, **(job.meta or {}), "state": state.value if state else None})


def announce(job: Job) -> None:
    """Publish the job's state and ``meta`` on its events channel, so listeners re-read its status.

    RQ publishes nothing when a job ends, is canceled or is recovered; we do.
    """
    job.connection.publish(keys.events(job.id), _event(job))


def report_progress(job: Job, progress: float, stage: str, *, check_cancel: bool = True) -> None:
    """Record progress in ``job.meta`` and publish it; with ``check_cancel``, raise JobCanceled if one was requested.

    The cancel check travels in the same round trip as the write; the stage is recorded either way.
    """
    job.meta = progress_meta(progress, stage)
    # What job.save_meta() writes, sent with the publish (and the check) in one round trip.
    with job.connection.pipeline(transaction=False) as pipeline:
        if check_cancel:
            pipeline.exists(keys.cancel(job.id))
        pipeline.hset(job.key, "meta", job.serializer.dumps(job.meta))
        pipeline.publish(keys.events(job.id), _event(job))
        replies = pipeline.execute()
    if check_cancel and replies[0]:
        raise JobCanceled("canceled on request")


# Between the first stage and storing, a render stage looks for a cancel only this long after the last look:
# a quick render looks twice, a long one at its first stage this long after the last look.
CANCEL_CHECK_INTERVAL_SECONDS = 0.5


class StageReporter:
    """Reports a render's stages; looks for a cancel at the first, before storing, and at most every interval."""

    def __init__(self, job: Job, interval: float = CANCEL_CHECK_INTERVAL_SECONDS) -> None:
        self.job = job
        self.interval = interval
        self.last_check: float | None = None
        # When each stage began, in order: the job's log line says how long each took.
        self.marks: list[tuple[str, float]] = []

    def report(self, progress: float, stage: str, *, must_check: bool = False) -> None:
        """Record a stage; look for a cancel when told to or when the interval has passed since the last look."""
        now = time.monotonic()
        self.marks.append((stage, now))
        check = must_check or self.last_check is None or now - self.last_check >= self.interval
        report_progress(self.job, progress, stage, check_cancel=check)
        if check:
            self.last_check = now

    def durations_ms(self) -> dict[str, float]:
        """Milliseconds from the start of each stage to the next (the last one: to now); none before the first."""
        if not self.marks:
            return {}
        ends = [moment for _, moment in self.marks[1:]] + [time.monotonic()]
        return {stage: round((end - start) * 1000, 1) for (stage, start), end in zip(self.marks, ends, strict=True)}


# The stage of every finished job (plotjobs.queue.status shows it); never stored.
DONE_STAGE = "done"


# A spec that fails validation has no trustworthy kind; user text never becomes a label.
INVALID_KIND = "invalid"


def record_outcome(
    job: Job,
    kind: str,
    outcome: str,
    seconds: float,
    error: BaseException | None = None,
    *,
    stages: dict[str, float] | None = None,
) -> None:
    """Count the job's outcome and render time in Redis and log one line for it (with each stage's milliseconds)."""
    if not logging_setup.is_configured():
        # A stock `rq worker` runs our task without our start-up code.
        logging_setup.configure(log_level_from_env())
    fields: dict[str, object] = {
        "job_id": job.id, "kind": kind, "queue": job.origin, "outcome": outcome,
        "duration_ms": round(seconds * 1000, 2),
    }  # fmt: skip
    if error is not None:
        fields["error"] = error.__class__.__name__
    if stages:
        fields["stages_ms"] = stages
    try:
        metrics.record_render(job.connection, kind, seconds, finished=outcome == "finished")
    except RedisError as redis_error:
        fields["metrics"] = f"not recorded: {redis_error.__class__.__name__}"
    logging_setup.log_event(
        logging_setup.JOB_LOGGER, "job", logging.INFO if error is None else logging.WARNING, **fields
    )


class _Served:
    """The generators this process renders: set by our worker at start, else read from the environment once."""

    names: tuple[str, ...] | None = None


def serve_only(names: tuple[str, ...]) -> None:
    """Render only jobs of these generators in this process (the worker's GENERATORS / WORKER_GENERATORS)."""
    _Served.names = names


def rendered_here() -> tuple[str, ...]:
    """The generators this process renders; a stock `rq worker` reads GENERATORS and WORKER_GENERATORS."""
    if _Served.names is None:
        _Served.names = settings_from_env().rendered_here
    return _Served.names


def served_generator(generator_name: str) -> Generator:
    """The generator of a job, if this process renders it; GeneratorNotServed (the job's reason) otherwise."""
    _check_rendered_here(generator_name)
    return generators.get(generator_name)


def _check_rendered_here(generator_name: str, field: str = "generator") -> None:
    served = rendered_here()
    if generator_name not in served:
        named = "" if field == "generator" else f" (in {field})"
        raise GeneratorNotServed(
            f"this worker does not render generator {generator_name!r}{named} (it renders: {', '.join(served)}; "
            "see GENERATORS and WORKER_GENERATORS)"
        )


def isolated_time_limit(generator: Generator, job_timeout: float | None) -> float:
    """Seconds an isolated render may take: its generator's limit, never past the job's own timeout (JOB_TIMEOUT)."""
    # A job without a timeout of its own runs under RQ's default one.
    job_limit = job_timeout if job_timeout is not None and job_timeout > 0 else Queue.DEFAULT_TIMEOUT
    return min(generator.time_limit or job_limit, job_limit)


def _run_render(job: Job, generator: Generator, validated: GeneratorSpec, stages: StageReporter) -> RenderResult:
    """The render's output, with its format: in this process, or in a child process for an isolated generator."""
    if generator.isolated:
        output = isolation.render_isolated(
            generator,
            validated.model_dump(mode="json"),
            stages.report,
            time_limit=isolated_time_limit(generator, job.timeout),
            canceled=lambda: bool(job.connection.exists(keys.cancel(job.id))),
        )
    else:
        output = generator.render()(validated, stages.report)
    if isinstance(output, bytes):
        return RenderResult(output, validated.output_format, validated.content_type)
    if not isinstance(output, RenderResult) or output.file_format not in generator.content_types:
        raise RenderRaised(f"the {generator.name} render returned no bytes in one of its formats")
    return output


def generate(
    generator_name: str, spec: dict[str, object], stored_data: data_store.DataReference | None = None
) -> results.ResultDescription:
    """Validate the spec again, render it with its generator, store the file and describe it.

    ``stored_data`` names the spec's arrays when they were stored apart (plotjobs.queue.data): they are
    loaded, and their life extended past this job's record, before the spec is validated.
    """
    job = get_current_job()
    if job is None:
        raise RuntimeError("generate runs inside an RQ worker; call the generator's render directly instead")
    started = time.perf_counter()
    label = INVALID_KIND
    stages = StageReporter(job)
    try:
        # Refused before anything is reported: a job this worker does not serve is not started here.
        generator = served_generator(generator_name)
        stages.report(0.05, "started", must_check=True)
        if stored_data is not None:
            stages.report(0.07, "loading data")
            spec = _with_stored_data(job, spec, stored_data)
            stages.report(0.08, "validating")
        validated = generator.validate(spec)
        for field, used in validated.generators_used():
            _check_rendered_here(used, field)
        label = validated.metric_label
        output = _run_render(job, generator, validated, stages)
        # The last chance to stop: a cancel seen here leaves no file behind.
        stages.report(0.9, "storing", must_check=True)
        ttl = job.result_ttl if job.result_ttl and job.result_ttl > 0 else 3600
        description = results.store(
            job.connection, output.data, content_type=output.content_type, file_format=output.file_format, ttl=ttl
        )
        # Not written: the status of a finished job reads "done" whatever its meta says, and the
        # worker's final announcement of this job publishes this meta with the finished state.
        job.meta = progress_meta(1.0, DONE_STAGE)
    except BaseException as error:
        # Counted and logged, then re-raised untouched: RQ records the failure on the job.
        record_outcome(job, label, "failed", time.perf_counter() - started, error, stages=stages.durations_ms())
        raise
    record_outcome(job, label, "finished", time.perf_counter() - started, stages=stages.durations_ms())
    return description


def _with_stored_data(job: Job, spec: dict[str, object], reference: data_store.DataReference) -> dict[str, object]:
    """The spec with its stored arrays in place; DataExpired when they outlived their life before the job started."""
    ttl = max(job.result_ttl or 0, job.failure_ttl or 0) + (job.timeout or 0)
    if not data_store.extend(job.connection, str(reference.get("key", "")), max(int(ttl), 1)):
        raise DataExpired(
            "the job's data expired before it started (it is kept for the job's result or failure TTL plus "
            "JOB_TIMEOUT from submission); submit it again"
        )
    arrays = data_store.load(job.connection, reference)
    try:
        attached: dict[str, object] = attach_arrays(spec, list(arrays))
    except KeyError as error:
        raise InvalidSpecError(f"the spec names data the job does not hold: {error}") from None
    return attached


REGISTERED_TASKS = frozenset({f"{generate.__module__}.{generate.__name__}"})
