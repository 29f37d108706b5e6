"""The baseline status endpoint: what a Flask + RQ tutorial serves, on the same gunicorn settings.

``GET /api/jobs/<id>``: ``Job.fetch``, ``get_status``, ``meta``, JSON. It reads plotjobs' own jobs,
so it uses RQ's JSON serializer (the jobs hold no pickle); nothing else differs from the tutorial's
endpoint. bench/run.py serves it with the settings plotjobs is served with:
``gunicorn -c python:plotjobs.web.gunicorn_config 'bench.naive_status:create_app()'``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer


def create_app() -> Flask:
    """The tutorial's app: one Redis connection, one route."""
    app = Flask(__name__)
    connection = Redis.from_url(os.environ["REDIS_URL"])

    @app.get("/api/jobs/<job_id>")
    def job_status(job_id: str) -> dict[str, Any]:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        return {"id": job.id, "state": job.get_status(), "meta": job.meta}

    return app
