"""Chart specs out of HTTP requests: a JSON body, or a multipart form with a spec and a CSV file."""

from __future__ import annotations

import json
from typing import Any

from flask import Request
from pydantic import ValidationError
from werkzeug.datastructures import FileStorage, MultiDict

from plotjobs.errors import InvalidForm, InvalidJSON, InvalidSpec, UnsupportedMediaType
from plotjobs.spec import table
from plotjobs.spec.base import violations
from plotjobs.spec.chart import ChartSpec

SPEC_PART = "spec"
CSV_PART = "csv"


def spec_from_validation_error(error: ValidationError) -> InvalidSpec:
    """One 422 naming every bad field, the first one as ``field``."""
    details = [{"field": field, "message": message} for field, message in violations(error)]
    first = details[0]
    return InvalidSpec(f"{first['field']}: {first['message']}", field=first["field"], details=details)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def json_document(raw: bytes | str, field: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except RecursionError:
        raise InvalidJSON(f"the {field} nests too deeply to be a chart spec", field=field) from None
    except ValueError as error:
        # Malformed JSON, bytes that are not UTF-8, or a number of more digits than Python converts.
        raise InvalidJSON(f"the {field} is not valid JSON: {error}", field=field) from None
    if not isinstance(document, dict):
        raise InvalidSpec("the chart spec must be a JSON object", field=field)
    return document


def validate_document(document: dict[str, Any]) -> ChartSpec:
    """The spec model of a parsed JSON document, or InvalidSpec naming each bad field."""
    try:
        return ChartSpec.model_validate(document)
    except ValidationError as error:
        raise spec_from_validation_error(error) from None


def parse_spec(body: bytes, content_type: str | None) -> ChartSpec:
    """The chart spec in a JSON request body; an empty body is the default chart."""
    if not body.strip():
        return ChartSpec()
    if _media_type(content_type) != "application/json":
        raise UnsupportedMediaType(
            "send the chart spec as application/json, or as multipart/form-data with a 'spec' part",
            field="Content-Type",
        )
    return validate_document(json_document(body, "body"))


def _form_parts(request: Request) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
    # Werkzeug's own loading reads a malformed body as an empty form, which would queue the default chart.
    parser = request.make_form_data_parser()
    parser.silent = False
    try:
        _, form, files = parser.parse(request.stream, request.mimetype, request.content_length, request.mimetype_params)
    except ValueError as error:
        raise InvalidForm(f"the multipart body cannot be parsed: {error}", field="body") from None
    return form, files


def _form_part(form: MultiDict[str, str], files: MultiDict[str, FileStorage], name: str) -> bytes | None:
    upload = files.get(name)
    if upload is not None:
        data: bytes = upload.read()
        return data
    text = form.get(name)
    return text.encode() if text is not None else None


def parse_form(request: Request) -> ChartSpec:
    """The chart spec of a multipart form: a JSON ``spec`` part, and a ``csv`` file its series may name."""
    form, files = _form_parts(request)
    try:
        spec_part = _form_part(form, files, SPEC_PART)
        csv_part = _form_part(form, files, CSV_PART)
    finally:
        # Parsed here rather than into request.files, so the request's end does not close them.
        for _, upload in files.items(multi=True):
            upload.close()
    if not (spec_part and spec_part.strip()) and csv_part is None:
        # Nothing to read: an empty body (not an empty form) is how to ask for the default chart.
        message = "a multipart submission needs a 'spec' part; send no body for the default chart"
        raise InvalidForm(message, field="spec")
    document = json_document(spec_part, SPEC_PART) if spec_part and spec_part.strip() else {}
    try:
        columns = table.parse_csv(csv_part) if csv_part is not None else None
        document = table.resolve_columns(document, columns)
    except table.TableError as error:
        details = [{"field": error.field, "message": error.message}]
        raise InvalidSpec(f"{error.field}: {error.message}", field=error.field, details=details) from None
    return validate_document(document)


def spec_from_request(request: Request) -> ChartSpec:
    """The chart spec a submit request carries, whichever form it comes in."""
    if _media_type(request.content_type) == "multipart/form-data":
        return parse_form(request)
    return parse_spec(request.get_data(cache=False), request.content_type)
