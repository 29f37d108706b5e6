"""The Celery side of the comparison: the Flask + Celery tutorial's stack with our render.

Started by bench/run.py as ``celery -A bench.celery_app worker``; the broker, result
backend and queue come from the environment the runner sets. The task does what
plotjobs' task does: validate the spec, render with a progress report per stage
(``update_state``, as the tutorial does), store the bytes in Redis and return their
description.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from redis import Redis

from plotjobs.queue import results
from plotjobs.render import chart as charts
from plotjobs.spec.chart import ChartSpec

app = Celery(
    "plotjobs_bench",
    broker=os.environ.get("BENCH_CELERY_BROKER", "memory://"),
    backend=os.environ.get("BENCH_CELERY_BACKEND", "cache+memory://"),
)
app.conf.update(
    task_default_queue=os.environ.get("BENCH_CELERY_QUEUE", "plotjobs-bench"),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,
    task_acks_late=False,
    broker_connection_retry_on_startup=True,
)

_store: dict[str, Redis] = {}


@worker_process_init.connect
def _warm(**_: Any) -> None:
    # Each prefork child renders once before its first task, as RenderWorker does.
    charts.warm_up()
    _store["redis"] = Redis.from_url(os.environ["BENCH_STORE_URL"])


@app.task(bind=True, name="bench.render")
def render(self: Task, spec: dict[str, Any]) -> dict[str, Any]:
    """Validate, render with progress, store the bytes, describe them."""
    chart = ChartSpec.model_validate(spec)

    def progress(fraction: float, stage: str) -> None:
        self.update_state(state="PROGRESS", meta={"progress": fraction, "stage": stage})

    data = charts.render(chart, progress)
    description = results.store(
        _store["redis"], data, content_type=chart.content_type, file_format=chart.format, ttl=600
    )
    return dict(description)
