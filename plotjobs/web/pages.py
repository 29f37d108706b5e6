"""HTML pages, and the original tutorial's routes kept for clients written against it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request

from plotjobs import generators
from plotjobs.errors import JobNotFound, ResultNotReady
from plotjobs.queue import accepted, jobs, status
from plotjobs.spec.chart import ChartSpec
from plotjobs.web.api import file_response, queue_render
from plotjobs.web.extension import current_redis, current_settings
from plotjobs.web.form import CHART, CHART_LAYOUT, XY_KINDS, form_fields, generator_forms

blueprint = Blueprint("views", __name__)


@blueprint.get("/")
def index() -> str:
    """The page to ask for a chart (or anything another served generator makes) and watch it render."""
    served = generators.served(current_settings().generators)
    return render_template(
        "index.html",
        chart_served=CHART in served,
        chart_title=served[CHART].title if CHART in served else "",
        fields=form_fields(ChartSpec.model_json_schema(), CHART_LAYOUT),
        mapping_template="_chart_mapping.html",
        xy_kinds=XY_KINDS,
        generator_forms=generator_forms(served.values()),
    )


@blueprint.get("/jobs/<job_id>")
def job_page(job_id: str) -> str:
    """A bookmarkable page that follows one job until its image (or file) is ready."""
    served = generators.served(current_settings().generators)
    titles = {name: generator.title or name for name, generator in served.items()}
    return render_template("job.html", job_id=job_id, generator_titles=titles)


@blueprint.get("/image_page")
def image_page() -> str:
    """The tutorial's entry: queue the default chart and show the polling page."""
    return render_template("job.html", job_id=queue_render(ChartSpec()).job_id)


def _job_from_query() -> Any | None:
    """The job named by ``?jobid=``, or None while it is accepted through RabbitMQ but not yet in RQ."""
    found = accepted.fetch_or_pending(current_redis(), request.args.get("jobid", ""))
    return None if isinstance(found, dict) else found


@blueprint.get("/progress")
def progress() -> tuple[dict[str, Any], int]:
    """The tutorial's progress endpoint: its four states and a fraction, plus the error."""
    try:
        job = _job_from_query()
    except JobNotFound as error:
        return {"state": status.TutorialState.FAILURE.value, "progress": 0.0, "error": error.message}, 404
    if job is None:
        return {"state": status.TutorialState.PENDING.value, "progress": 0.0, "error": None}, 200
    described = status.describe(job)
    return {
        "state": status.tutorial_state(job).value,
        "progress": described["progress"],
        "error": described["error"],
    }, 200


@blueprint.get("/result.png")
def result_png() -> Response:
    """The tutorial's image endpoint."""
    job = _job_from_query()
    if job is None:
        raise ResultNotReady(request.args.get("jobid", ""), "queued")
    data, description = jobs.result_file(current_redis(), job)
    return file_response(data, dict(description), f"chart-{job.id}")
