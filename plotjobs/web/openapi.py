"""The OpenAPI 3.1 document of the JSON API, built from the same models that validate requests.

The generators served come from the registry: each one's spec model becomes a schema, and a
submission is one of them (with its ``generator`` field), so a new generator appears here as soon
as GENERATORS serves it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from plotjobs.config import DEFAULT_GENERATOR
from plotjobs.generators import GENERATOR_FIELD, Generator
from plotjobs.spec.chart import ChartSpec
from plotjobs.states import JobState

REF_TEMPLATE = "#/components/schemas/{model}"


class SubmittedJob(BaseModel):
    """The answer to a submitted chart."""

    id: str
    status_url: str
    result_url: str
    events_url: str
    reused: bool = Field(description="An identical reproducible spec was already queued or rendered: this is its job.")
    file_url: str | None = Field(default=None, description="The content-addressed file, when it exists already.")
    cancel_token: str | None = Field(
        default=None,
        description="This submission's own token for DELETE (X-Cancel-Token). Absent only when RabbitMQ took "
        "the job while Redis was down.",
    )


class JobStatus(BaseModel):
    """A job's state (RQ's own), progress and stage."""

    id: str
    state: JobState | None
    progress: float = Field(ge=0, le=1)
    stage: str | None
    error: str | None = Field(description="The exception of a failed job.")
    position: int | None = Field(description="Jobs ahead while queued.")
    created_at: str | None
    started_at: str | None
    ended_at: str | None


class CanceledJob(JobStatus):
    """The answer to a cancel: the job's status, and whether only this submitter's interest was withdrawn."""

    withdrawn: bool = Field(
        description="True: other submitters still want the job, so it goes on (state unchanged); "
        "false: nobody does, so it was canceled or stopped."
    )


class StoredChart(BaseModel):
    """The answer to a stored chart: its short URLs, one per format."""

    id: str = Field(description="The chart's id: named by its spec, so the same spec always gets the same id.")
    generator: str = Field(description="The generator that renders it (chart, vega-lite, report, ...).")
    url: str = Field(description="The absolute short URL in the spec's format, /c/<id>.<format>.")
    path: str = Field(description="The same URL's path.")
    urls: dict[str, str] = Field(description="The absolute short URL of each format its generator renders.")
    expires_in: int = Field(description="Seconds the stored spec is kept after its last view (CHART_URL_TTL).")
    created: bool = Field(description="False: the same spec was stored already (its expiry moved on).")


class GeneratorInfo(BaseModel):
    """One generator served here: what a client needs to offer it."""

    name: str = Field(description="The value of a submission's generator field.")
    title: str
    description: str
    formats: dict[str, str] = Field(description="Each format the generator renders, with its media type.")
    isolated: bool = Field(description="Renders in a child process with a hard time limit.")
    spec_schema: dict[str, Any] = Field(alias="schema", description="The JSON Schema of the generator's spec.")


class Generators(BaseModel):
    """The generators served here (GENERATORS), in the operator's order."""

    default: str | None = Field(description="The generator of a submission that names none, if served.")
    generators: list[GeneratorInfo]


class Workers(BaseModel):
    """How many render workers are alive."""

    alive: int = Field(ge=0)


class ErrorDetail(BaseModel):
    """One bad field of a refused spec."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error the API answers on purpose."""

    error: str = Field(description="A short code, e.g. invalid_spec.")
    message: str
    field: str | None = Field(default=None, description="The input at fault, as a dotted path (series.0.y).")
    details: list[ErrorDetail] | None = Field(default=None, description="Every bad field of a refused spec.")
    state: str | None = Field(default=None, description="The job's state, when its result is not ready.")
    limit: int | None = Field(
        default=None, description="The limit that was reached (MAX_REQUEST_BYTES for a 413, the job limits for a 429)."
    )


def component_schemas(served: Sequence[Generator] = ()) -> dict[str, Any]:
    """JSON Schemas of the request and response models, keyed by model name; a submission schema per generator."""
    spec_models: dict[type[BaseModel], None] = dict.fromkeys([ChartSpec, *(g.spec_model for g in served)])
    validation: Literal["validation", "serialization"] = "validation"
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        *((model, validation) for model in spec_models),
        (SubmittedJob, "serialization"),
        (JobStatus, "serialization"),
        (CanceledJob, "serialization"),
        (StoredChart, "serialization"),
        (Generators, "serialization"),
        (Workers, "serialization"),
        (ErrorBody, "serialization"),
    ]
    _, top = models_json_schema(models, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = top["$defs"]
    for generator in served:
        schemas[_submission_name(generator)] = _submission_schema(generator, schemas[generator.spec_model.__name__])
    return schemas


def _submission_name(generator: Generator) -> str:
    return f"{generator.spec_model.__name__}Submission"


def _submission_schema(generator: Generator, spec_schema: dict[str, Any]) -> dict[str, Any]:
    """The generator's spec with the request's ``generator`` field (optional for the default generator)."""
    schema = copy.deepcopy(spec_schema)
    name_field = {"const": generator.name, "description": f"The generator: {generator.name}."}
    if generator.name == DEFAULT_GENERATOR:
        name_field["description"] += " The default: it may be left out."
    else:
        schema["required"] = [GENERATOR_FIELD, *schema.get("required", [])]
    schema["properties"] = {GENERATOR_FIELD: name_field, **schema.get("properties", {})}
    schema["title"] = f"{generator.title or generator.name} submission"
    return schema


def _submission_body(served: Sequence[Generator], *, required: bool = False) -> dict[str, Any]:
    """POST /api/jobs and /api/charts: a served generator's submission as JSON, or a form of a spec (and a CSV)."""
    choices = [{"$ref": REF_TEMPLATE.format(model=_submission_name(generator))} for generator in served]
    schema = choices[0] if len(choices) == 1 else {"oneOf": choices}
    form: dict[str, Any] = copy.deepcopy(_SPEC_FORM)
    form["properties"][GENERATOR_FIELD] = {
        "type": "string",
        "enum": [generator.name for generator in served],
        "description": "The generator (default: chart); only the chart reads a csv part.",
    }
    return {
        "required": required,
        "content": {
            "application/json": {"schema": schema},
            "multipart/form-data": {"schema": form, "encoding": {"spec": {"contentType": "application/json"}}},
        },
    }


def _files(served: Sequence[Generator]) -> dict[str, Any]:
    """The media types of the served generators' files."""
    media_types = dict.fromkeys(media for generator in served for media in generator.content_types.values())
    return {media: {"schema": {"type": "string", "contentMediaType": media}} for media in media_types}


def _file_name_pattern(served: Sequence[Generator]) -> str:
    formats = dict.fromkeys(file_format for generator in served for file_format in generator.content_types)
    return "^[0-9a-f]{64}\\.(" + "|".join(formats) + ")$"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _error(description: str) -> dict[str, Any]:
    return _json(ErrorBody, description)


def _version() -> str:
    try:
        return metadata.version("plotjobs")
    except metadata.PackageNotFoundError:
        return "0+unknown"


_UNAVAILABLE = _error(
    "Redis is unreachable, or (REDIS_MIN_REPLICAS) the job was not confirmed on enough replicas;"
    " retry after Retry-After seconds."
)


_PRIORITY = {
    "name": "priority",
    "in": "query",
    "required": False,
    "description": "The queue to render on; a priority no worker serves here is refused with 422.",
    "schema": {"type": "string", "enum": ["high", "default", "low"], "default": "default"},
}

_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}

_CANCEL_TOKEN = {
    "name": "X-Cancel-Token",
    "in": "header",
    "required": False,
    "description": "The cancel_token the submission was answered with (or send it as ?token=).",
    "schema": {"type": "string"},
}

_CANCEL_TOKEN_QUERY = {
    "name": "token",
    "in": "query",
    "required": False,
    "description": "The cancel_token, for clients that cannot set a header.",
    "schema": {"type": "string"},
}

# A submission's answer leads to its job, and its cancel token to the cancel.
_SUBMISSION_LINKS = {
    "jobStatus": {"operationId": "jobStatus", "parameters": {"job_id": "$response.body#/id"}},
    "cancelJob": {
        "operationId": "cancelJob",
        "parameters": {"job_id": "$response.body#/id", "header.X-Cancel-Token": "$response.body#/cancel_token"},
    },
}

_SPEC_FORM = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": _ref(ChartSpec),
            "description": "The chart spec; its series name CSV columns with x_column, y_column, values_column.",
        },
        "csv": {
            "type": "string",
            "contentMediaType": "text/csv",
            "description": "UTF-8 CSV, first row the column names.",
        },
    },
}


def _chart_format(served: Sequence[Generator]) -> dict[str, Any]:
    """The extension of a chart URL: any served generator's format (the spec's generator must render it)."""
    formats = list(dict.fromkeys(file_format for generator in served for file_format in generator.content_types))
    return {
        "name": "file_format",
        "in": "path",
        "required": True,
        "description": "The format of the answer: one of the spec's generator's formats (a spec's own format must "
        "agree).",
        "schema": {"type": "string", "enum": formats},
    }


_SIGNATURE = {
    "name": "sig",
    "in": "query",
    "required": False,
    "description": "With CHART_URL_SECRET set, required: the HMAC-SHA256 signature (docs/embedding.md).",
    "schema": {"type": "string"},
}


def _chart_image_answers(served: Sequence[Generator], extra: dict[str, Any]) -> dict[str, Any]:
    still_rendering = {
        "description": "Still rendering after EMBED_WAIT_SECONDS: a small image saying so (an SVG for .svg, else a "
        "PNG), Cache-Control: no-store and Retry-After; or Redis is unreachable (JSON).",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {**_files(served), "application/json": {"schema": _ref(ErrorBody)}},
    }
    return {
        "200": {
            "description": "The picture. ETag: its SHA-256; immutable when the spec pins everything.",
            "content": _files(served),
        },
        "304": {"description": "Not modified (If-None-Match matched the ETag)."},
        **extra,
        "422": _error(
            "The spec breaks a rule, its generator is not served (field: generator), does not render the "
            "extension's format (field: format), the spec is not reproducible (not_reproducible), or its render failed."
        ),
        "429": _error("The queues are full, or this URL's signing key or client has CHART_URL_MAX_RENDERS renders."),
        "503": still_rendering,
    }


def document(served: Sequence[Generator]) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document, for the generators ``served`` (GENERATORS, in order)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "plotjobs",
            "version": _version(),
            "description": "Charts and other content rendered in the background by generators: submit a spec, "
            "follow the job, fetch the file.",
        },
        "paths": {
            "/api/jobs": {
                "post": {
                    "operationId": "submitJob",
                    "summary": "Validate a spec for the generator it names (default: chart) and queue its render; "
                    "an empty body is the demo chart.",
                    "parameters": [_PRIORITY],
                    "requestBody": _submission_body(served),
                    "responses": {
                        "200": {
                            **_json(SubmittedJob, "An identical reproducible spec is rendered already: file_url."),
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "links": _SUBMISSION_LINKS,
                        },
                        "202": {
                            **_json(SubmittedJob, "Queued; follow status_url."),
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "links": _SUBMISSION_LINKS,
                        },
                        "400": _error("The spec is not valid JSON, or the multipart body cannot be parsed."),
                        "413": _error("Larger than MAX_REQUEST_BYTES (request_too_large; limit says how large)."),
                        "415": _error("The body is neither JSON nor a multipart form."),
                        "422": _error(
                            "The spec or its CSV breaks a rule, the generator is not served here (field: generator), "
                            "or no worker serves the priority."
                        ),
                        "429": _error("The queues are full, or this client has MAX_JOBS_PER_CLIENT jobs; Retry-After."),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/jobs/{job_id}": {
                "get": {
                    "operationId": "jobStatus",
                    "summary": "A job's state, progress, stage and queue position.",
                    "parameters": [_JOB_ID],
                    "responses": {
                        "200": _json(JobStatus, "The job's status."),
                        "404": _error("Unknown, expired or malformed id."),
                        "503": _UNAVAILABLE,
                    },
                },
                "delete": {
                    "operationId": "cancelJob",
                    "summary": "Withdraw this submission's interest (its cancel_token); cancel a waiting job or "
                    "stop a running one once no other submitter wants it.",
                    "parameters": [_JOB_ID, _CANCEL_TOKEN, _CANCEL_TOKEN_QUERY],
                    "responses": {
                        "200": _json(
                            CanceledJob, "The job has ended (canceled or stopped), or withdrawn: others want it."
                        ),
                        "202": _json(CanceledJob, "The job is still stopping; follow its status."),
                        "403": _error(
                            "No cancel token (cancel_token_required), or not one of the job's (cancel_token_invalid)."
                        ),
                        "404": _error("Unknown, expired or malformed id."),
                        "409": _error("The job had already ended; state says how."),
                        "503": _UNAVAILABLE,
                    },
                },
            },
            "/api/jobs/{job_id}/spec": {
                "get": {
                    "operationId": "jobSpec",
                    "summary": "The spec the job was submitted with (with its generator field, unless the chart's).",
                    "parameters": [_JOB_ID],
                    "responses": {
                        "200": {
                            "description": "The submitted spec, as JSON, its data inline (also data stored apart).",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "404": _error("Unknown, expired or malformed id."),
                        "409": _error("The job's record or stored data cannot be read (unreadable_job)."),
                        "410": _error("The job's data, stored apart from it, has expired (data_expired)."),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/jobs/{job_id}/events": {
                "get": {
                    "operationId": "jobEvents",
                    "summary": "Server-Sent Events: `event: status` with the job's status now, then at each change, "
                    "until it ends.",
                    "parameters": [_JOB_ID],
                    "responses": {
                        "200": {
                            "description": "The stream; each data line is the JSON of GET /api/jobs/{job_id}.",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "404": _error("Unknown, expired or malformed id."),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/jobs/{job_id}/result": {
                "get": {
                    "operationId": "jobResult",
                    "summary": "The rendered file, in the format the spec asked for.",
                    "parameters": [
                        _JOB_ID,
                        {
                            "name": "download",
                            "in": "query",
                            "required": False,
                            "description": "1, true or yes: ask the browser to save the file.",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The file, with a download filename and an ETag.",
                            "content": _files(served),
                        },
                        "304": {"description": "Not modified (If-None-Match matched the ETag)."},
                        "404": _error("Unknown job, or its file has expired."),
                        "409": _error("The job has not finished; state says where it is."),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/results/{name}": {
                "get": {
                    "operationId": "storedFile",
                    "summary": "A rendered file by its content address, the same bytes for every job that made them.",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "description": "The file's SHA-256 (64 lowercase hex digits), a dot and its format.",
                            "schema": {"type": "string", "pattern": _file_name_pattern(served)},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The file, cached forever; its ETag is its SHA-256.",
                            "content": _files(served),
                        },
                        "304": {"description": "Not modified (If-None-Match matched the ETag)."},
                        "404": _error("No stored file has this name, or it has expired."),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/charts": {
                "post": {
                    "operationId": "storeChart",
                    "summary": "Store a reproducible spec of any served generator (generator field, default chart) for "
                    "CHART_URL_TTL and answer its short URLs.",
                    "parameters": [_SIGNATURE],
                    "requestBody": _submission_body(served, required=True),
                    "responses": {
                        "200": _json(StoredChart, "Stored (created), or stored already: its expiry moved on."),
                        "400": _error("The spec is not valid JSON, or the multipart body cannot be parsed."),
                        "403": _error("CHART_URL_SECRET is set and sig is missing or wrong."),
                        "413": _error("Larger than MAX_REQUEST_BYTES (request_too_large; limit says how large)."),
                        "415": _error("The body is neither JSON nor a multipart form."),
                        "422": _error(
                            "The spec breaks a rule, its generator is not served (field: generator), or it is not "
                            "reproducible (not_reproducible)."
                        ),
                        "429": _error("This client (or key) stored CHART_URL_STORES_PER_HOUR charts this hour."),
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/chart.{file_format}": {
                "get": {
                    "operationId": "chartImage",
                    "summary": "A URL's picture, of any served generator: served when rendered, else rendered while "
                    "the request waits.",
                    "parameters": [
                        _chart_format(served),
                        {
                            "name": "c",
                            "in": "query",
                            "required": True,
                            "description": "The spec as for POST /api/jobs, its generator field included (default "
                            "chart): JSON, or base64url-encoded JSON.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "w",
                            "in": "query",
                            "required": False,
                            "description": "Overrides the spec's width (pixels), for a spec that has one (the chart).",
                            "schema": {"type": "string", "pattern": "^[0-9]+$"},
                        },
                        {
                            "name": "h",
                            "in": "query",
                            "required": False,
                            "description": "Overrides the spec's height (pixels), for a spec that has one.",
                            "schema": {"type": "string", "pattern": "^[0-9]+$"},
                        },
                        _SIGNATURE,
                    ],
                    "responses": _chart_image_answers(
                        served,
                        {
                            "400": _error(
                                "c is not JSON (nor base64url JSON), or w or h is given for a spec without a size "
                                "(size_not_applicable, field: w or h)."
                            ),
                            "403": _error("CHART_URL_SECRET is set and sig is missing or does not match."),
                            "404": _error("Not a format any served generator renders."),
                            "414": _error("The URL is longer than CHART_URL_MAX_BYTES."),
                        },
                    ),
                }
            },
            "/c/{chart_id}.{file_format}": {
                "get": {
                    "operationId": "storedChartImage",
                    "summary": "A stored chart (POST /api/charts): served, or rendered again after its file expired.",
                    "parameters": [
                        {
                            "name": "chart_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
                        },
                        _chart_format(served),
                    ],
                    "responses": _chart_image_answers(
                        served, {"404": _error("No stored chart has this id (unknown, or expired unviewed).")}
                    ),
                }
            },
            "/api/generators": {
                "get": {
                    "operationId": "generators",
                    "summary": "The generators served here: names, titles, formats and the JSON Schema of each spec.",
                    "responses": {"200": _json(Generators, "The served generators."), "503": _UNAVAILABLE},
                }
            },
            "/api/workers": {
                "get": {
                    "operationId": "workers",
                    "summary": "How many render workers are alive.",
                    "responses": {"200": _json(Workers, "The count of live workers."), "503": _UNAVAILABLE},
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                }
            },
        },
        "components": {"schemas": component_schemas(served)},
    }
