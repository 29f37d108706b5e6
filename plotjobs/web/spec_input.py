"""Specs out of HTTP requests: a JSON body, or a multipart form with a spec and a CSV file.

A submission names its generator in a ``generator`` field (default: ``chart``) beside the spec's
own fields, or in a ``generator`` part of a form; the chart URLs read them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flask import Request
from pydantic import ValidationError
from werkzeug.datastructures import FileStorage, MultiDict

from plotjobs import generators
from plotjobs.config import DEFAULT_GENERATOR
from plotjobs.errors import InvalidForm, InvalidJSON, InvalidSpec, UnknownGeneratorError, UnsupportedMediaType
from plotjobs.generators import GENERATOR_FIELD, Generator
from plotjobs.spec import table
from plotjobs.spec.base import GeneratorSpec, violations

SPEC_PART = "spec"
CSV_PART = "csv"
GENERATOR_PART = GENERATOR_FIELD


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
        raise InvalidSpec("the spec must be a JSON object", field=field)
    return document


def validate_spec(generator: Generator, document: dict[str, Any], allowed: Iterable[str]) -> GeneratorSpec:
    """The generator's spec model of a parsed JSON document, or InvalidSpec naming each bad field.

    A spec that embeds another generator's work (a report's parts) is refused if that one is not allow-listed.
    """
    try:
        spec = generator.spec_model.model_validate(document)
    except ValidationError as error:
        raise spec_from_validation_error(error) from None
    generators.check_served(spec, allowed)
    return spec


def chosen_generator(document: dict[str, Any], allowed: Iterable[str]) -> Generator:
    """The allow-listed generator a document names, taken out of it (none: the chart); else UnknownGeneratorError."""
    name = document.pop(GENERATOR_FIELD) if GENERATOR_FIELD in document else DEFAULT_GENERATOR
    if not isinstance(name, str):
        raise UnknownGeneratorError(f"generator must be a generator's name, got {name!r}", field=GENERATOR_FIELD)
    return generators.get(name, allowed)


def _json_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    if not body.strip():
        return {}
    if _media_type(content_type) != "application/json":
        raise UnsupportedMediaType(
            "send the spec as application/json, or as multipart/form-data with a 'spec' part",
            field="Content-Type",
        )
    return json_document(body, "body")


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


def _form_document(request: Request) -> tuple[dict[str, Any], bytes | None]:
    """The spec document of a multipart form (its ``generator`` part as that field) and its CSV part."""
    form, files = _form_parts(request)
    try:
        spec_part = _form_part(form, files, SPEC_PART)
        csv_part = _form_part(form, files, CSV_PART)
        generator_part = _form_part(form, files, GENERATOR_PART)
    finally:
        # Parsed here rather than into request.files, so the request's end does not close them.
        for _, upload in files.items(multi=True):
            upload.close()
    if not (spec_part and spec_part.strip()) and csv_part is None:
        # Nothing to read: an empty body (not an empty form) is how to ask for the default chart.
        message = "a multipart submission needs a 'spec' part; send no body for the default chart"
        raise InvalidForm(message, field="spec")
    document = json_document(spec_part, SPEC_PART) if spec_part and spec_part.strip() else {}
    if generator_part is not None:
        document[GENERATOR_FIELD] = generator_part.decode("utf-8", "replace").strip()
    return document, csv_part


def _with_columns(document: dict[str, Any], csv_part: bytes | None) -> dict[str, Any]:
    """The document with the CSV columns its series name put in as inline data."""
    try:
        columns = table.parse_csv(csv_part) if csv_part is not None else None
        return table.resolve_columns(document, columns)
    except table.TableError as error:
        details = [{"field": error.field, "message": error.message}]
        raise InvalidSpec(f"{error.field}: {error.message}", field=error.field, details=details) from None


def submission_from_request(request: Request, allowed: Iterable[str]) -> GeneratorSpec:
    """The spec of a submission (POST /api/jobs) for the allow-listed generator it names, JSON or form."""
    csv_part = None
    if _media_type(request.content_type) == "multipart/form-data":
        document, csv_part = _form_document(request)
    else:
        document = _json_body(request.get_data(cache=False), request.content_type)
    generator = chosen_generator(document, allowed)
    if csv_part is not None:
        if generator.name != DEFAULT_GENERATOR:
            raise InvalidForm(f"the {generator.name} generator reads no CSV part", field=CSV_PART)
        document = _with_columns(document, csv_part)
    return validate_spec(generator, document, allowed)
