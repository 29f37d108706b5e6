"""HTML pages, and the original tutorial's routes kept for clients written against it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request

from plotjobs import jobs
from plotjobs.api import admit, file_response
from plotjobs.charts import ChartSpec
from plotjobs.connections import current_redis, current_settings
from plotjobs.errors import JobNotFound

blueprint = Blueprint("views", __name__)


@blueprint.get("/")
def index() -> str:
    """The page to ask for a chart and watch it render."""
    return render_template("index.html")


@blueprint.get("/jobs/<job_id>")
def job_page(job_id: str) -> str:
    """A bookmarkable page that follows one job until its image appears."""
    return render_template("job.html", job_id=job_id)


@blueprint.get("/image_page")
def image_page() -> str:
    """The tutorial's entry: queue the default chart and show the polling page."""
    connection, settings = current_redis(), current_settings()
    job_id = jobs.new_job_id()
    admit(connection, settings, job_id)  # the same backpressure as POST /api/jobs
    job = jobs.enqueue_render(connection, settings, ChartSpec(), job_id=job_id)
    return render_template("job.html", job_id=job.id)


def _job_from_query() -> Any:
    return jobs.fetch(current_redis(), request.args.get("jobid", ""))


@blueprint.get("/progress")
def progress() -> tuple[dict[str, Any], int]:
    """The tutorial's progress endpoint: its four states and a fraction, plus the error."""
    try:
        job = _job_from_query()
    except JobNotFound as error:
        return {"state": jobs.TutorialState.FAILURE.value, "progress": 0.0, "error": error.message}, 404
    described = jobs.describe(job)
    return {
        "state": jobs.tutorial_state(job).value,
        "progress": described["progress"],
        "error": described["error"],
    }, 200


@blueprint.get("/result.png")
def result_png() -> Response:
    """The tutorial's image endpoint."""
    job = _job_from_query()
    data, description = jobs.result_file(current_redis(), job)
    return file_response(data, dict(description), f"chart-{job.id}")
