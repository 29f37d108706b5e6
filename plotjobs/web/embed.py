"""Charts as URLs: ``GET /chart.png?c=<spec>`` is the image, ``POST /api/charts`` stores a spec behind ``/c/<id>.png``.

Any served generator's spec may be a URL: ``c`` names it in a ``generator`` field (none: the chart),
and the URL's extension must be one of that generator's formats. A URL's spec is validated as
``POST /api/jobs`` validates it, and must be reproducible. The
answer is the stored, content-addressed file when the spec was rendered already; otherwise the
render is queued through the same dedupe as every job (identical requests share it) and the
request waits for it on the job events the worker publishes, up to EMBED_WAIT_SECONDS, then
answers 503 with a "still rendering" image. See docs/embedding.md.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Request, Response, request, url_for
from redis import Redis

from plotjobs import chart_urls, generators, keys, states
from plotjobs.config import DEFAULT_GENERATOR, Settings
from plotjobs.errors import (
    ChartNotFound,
    DataExpired,
    InvalidJSON,
    InvalidSignature,
    InvalidSpec,
    NotReproducible,
    RenderFailed,
    SignatureRequired,
    SizeNotApplicable,
    TooManyRequests,
    UnknownPage,
    URLTooLong,
)
from plotjobs.generators import GENERATOR_FIELD, Generator
from plotjobs.queue import data, dedupe, jobs, results, status
from plotjobs.spec.base import GeneratorSpec, attach_arrays, detached_document
from plotjobs.spec.chart import ChartSpec, Series
from plotjobs.web import api, placeholder, spec_input
from plotjobs.web.extension import current_event_hub, current_redis, current_settings

blueprint = Blueprint("embed", __name__)

# Seconds a reader (or its mail proxy) is told to wait before asking again for a chart still rendering.
STILL_RENDERING_RETRY_AFTER = 5
# A failed render is answered as failed this long, then a request for the same spec renders it again.
FAILED_RENDER_HOLD_SECONDS = 60
_CHART_ID = re.compile(rf"^[0-9a-f]{{{chart_urls.CHART_ID_HEX}}}$")
SIZE_PARAMETERS = {"w": "width", "h": "height"}
# More digits than any size the spec allows (at most 4000 pixels); the spec's own check names the range.
MAX_SIZE_DIGITS = 5
# The field of a stored chart's JSON that names its data stored apart (plotjobs.queue.data), when it has any.
STORED_DATA_FIELD = "$data"
# The spec field the URL's extension sets, in the models that have one.
FORMAT_FIELD = "format"


def _check_served_format(file_format: str) -> None:
    """404 for an extension no served generator renders (before anything else is read)."""
    formats = api.served_content_types()
    if file_format not in formats:
        raise UnknownPage(f"no chart format {file_format[:20]!r}: use {', '.join(formats)}", field="format")


def check_url_length(settings: Settings) -> None:
    """Refuse with 414 a URL whose path and query exceed CHART_URL_MAX_BYTES bytes."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        size = len(raw.encode("latin-1", "replace"))
    else:
        size = len(request.environ.get("PATH_INFO", "").encode("latin-1", "replace")) + 1 + len(request.query_string)
    if size > settings.chart_url_max_bytes:
        raise URLTooLong(
            f"this chart URL is {size} bytes; CHART_URL_MAX_BYTES is {settings.chart_url_max_bytes}: "
            "store the spec with POST /api/charts and use its short URL",
            field="c", size=size, limit=settings.chart_url_max_bytes,
        )  # fmt: skip


def check_url_signature(settings: Settings, file_format: str) -> None:
    """With CHART_URL_SECRET set, refuse with 403 a URL whose ``sig`` is missing or wrong."""
    secret = settings.chart_url_secret
    if not secret:
        return
    given = request.args.get("sig")
    if not given:
        raise SignatureRequired("this service renders signed chart URLs only: the URL needs its &sig=", field="sig")
    args = request.args
    expected = chart_urls.url_signature(secret, file_format, args.get("c", ""), args.get("w"), args.get("h"))
    if not chart_urls.signatures_match(given, expected):
        raise InvalidSignature("the URL's sig does not match its chart: sign it again (plotjobs url)", field="sig")


def url_document(c: str | None) -> dict[str, Any]:
    """The spec document a chart URL's ``c`` carries (JSON, or base64url JSON), its ``generator`` field included."""
    if c is None or not c.strip():
        raise InvalidSpec("the chart spec goes in ?c= (JSON, or base64url JSON)", field="c")
    try:
        text = chart_urls.decode_spec(c)
    except ValueError as error:
        raise InvalidJSON(str(error), field="c") from None
    return spec_input.json_document(text, "c")


def in_format(generator: Generator, document: dict[str, Any], file_format: str) -> dict[str, Any]:
    """The document with the URL's format in it; InvalidSpec when the generator does not render that format."""
    if file_format not in generator.content_types:
        raise InvalidSpec(
            f"the {generator.name} generator renders {', '.join(generator.content_types)}, not {file_format}: "
            "change the URL's extension",
            field="format",
        )
    given = document.get(FORMAT_FIELD)
    if given is not None and given != file_format:
        raise InvalidSpec(
            f"the spec asks for format {given!r} but the URL is /chart.{file_format}: drop 'format' or change the URL",
            field="format",
        )
    if FORMAT_FIELD in generator.spec_model.model_fields:
        return {**document, FORMAT_FIELD: file_format}
    return document


def sized(generator: Generator, document: dict[str, Any], sizes: dict[str, str | None]) -> dict[str, Any]:
    """The document with the URL's ``w``/``h`` in place of its width/height; 400 for a spec that has neither."""
    document = dict(document)
    for parameter, field in SIZE_PARAMETERS.items():
        value = sizes.get(parameter)
        if value is None:
            continue
        if field not in generator.spec_model.model_fields:
            raise SizeNotApplicable(
                f"{parameter} overrides a {field}, and a {generator.name} spec has none: drop {parameter} from the URL",
                field=parameter,
            )
        # ASCII digits only (str.isdigit takes '²' too, which int() refuses), and few: sizes are at most 4 digits.
        if not (value.isascii() and value.isdigit() and len(value) <= MAX_SIZE_DIGITS):
            raise InvalidSpec(f"{parameter} is the {field} in pixels, a whole number; got {value[:20]!r}", field=field)
        document[field] = int(value)
    return document


def reproducible_spec(
    generator: Generator, document: dict[str, Any], file_format: str, allowed: Iterable[str]
) -> GeneratorSpec:
    """The spec, validated as POST /api/jobs validates it, in ``file_format``; NotReproducible if it draws anew."""
    spec = spec_input.validate_spec(generator, document, allowed)
    if spec.output_format != file_format:
        # A model without a format field renders one format of its own.
        raise InvalidSpec(f"this {generator.name} spec renders {spec.output_format}, not {file_format}", field="format")
    if not spec.is_reproducible():
        field, reason = spec.irreproducibility()
        raise NotReproducible(f"a chart URL must draw the same picture every time it is loaded: {reason}", field=field)
    return spec


def url_spec(settings: Settings, file_format: str) -> GeneratorSpec:
    """The spec of this request's chart URL, for the served generator its ``c`` names, in the extension's format."""
    document = url_document(request.args.get("c"))
    generator = spec_input.chosen_generator(document, settings.generators)
    document = in_format(generator, document, file_format)
    document = sized(generator, document, {name: request.args.get(name) for name in SIZE_PARAMETERS})
    return reproducible_spec(generator, document, file_format, settings.generators)


@blueprint.get("/chart.<file_format>")
def chart_image(file_format: str) -> Response:
    """The picture ``?c=`` describes, of any served generator, in the extension's format; ``w``/``h`` size it."""
    settings = current_settings()
    _check_served_format(file_format)
    check_url_length(settings)
    check_url_signature(settings, file_format)
    spec = url_spec(settings, file_format)
    secret = settings.chart_url_secret
    # Signed URLs are counted against their key, whoever loads them; unsigned ones against the address.
    identity = f"url-key:{chart_urls.key_id(secret)}" if secret else f"url:{api.client_address()}"
    return serve(spec, api.Admission(identity, settings.chart_url_max_renders, "CHART_URL_MAX_RENDERS"))


@blueprint.get("/c/<chart_id>.<file_format>")
def stored_chart_image(chart_id: str, file_format: str) -> Response:
    """The stored chart ``chart_id`` in the format its extension names; it renders again after its file expired."""
    settings = current_settings()
    _check_served_format(file_format)
    if not _CHART_ID.match(chart_id):
        raise ChartNotFound(chart_id)
    connection = current_redis()
    with connection.pipeline(transaction=False) as pipe:
        pipe.get(keys.chart(chart_id))
        # A view keeps the stored chart for another CHART_URL_TTL: links in use do not expire.
        pipe.expire(keys.chart(chart_id), settings.chart_url_ttl)
        stored, _ = pipe.execute()
    if stored is None:
        raise ChartNotFound(chart_id)
    document = json.loads(stored)
    # Charts stored before other generators could be have no generator field: they are charts.
    generator = spec_input.chosen_generator(document, settings.generators)
    document = in_format(generator, _with_stored_data(connection, settings, document), file_format)
    spec = reproducible_spec(generator, document, file_format, settings.generators)
    # Each stored chart renders at most once per format at a time, whoever (and however many) ask.
    limit = len(generator.content_types)
    admission = api.Admission(f"chart:{chart_id}", limit, "the limit of one stored chart's renders")
    return serve(spec, admission)


def _without_defaults(document: dict[str, Any]) -> dict[str, Any]:
    """A detached spec document without its format and the fields left at their defaults, as a stored chart keeps it."""
    defaults = ChartSpec().model_dump(mode="json")
    series_defaults = Series().model_dump(mode="json")
    kept = {name: value for name, value in document.items() if name != "format" and value != defaults.get(name)}
    kept["series"] = [
        {name: value for name, value in series.items() if value != series_defaults.get(name)}
        for series in document["series"]
    ]
    return kept


def _with_stored_data(connection: Redis, settings: Settings, document: dict[str, Any]) -> dict[str, Any]:
    """A stored chart's spec with its data in place; the view pushes the data's expiry back with the chart's."""
    reference = document.pop(STORED_DATA_FIELD, None)
    if reference is None:
        return document
    if not data.is_reference(reference) or not data.extend(connection, reference["key"], settings.chart_url_ttl):
        raise DataExpired("the stored chart's data has expired")
    try:
        stored = data.load(connection, reference)
    except data.UnreadableData as error:
        # Bytes we did not write are as good as gone: the chart must be stored again.
        raise DataExpired(f"the stored chart's data cannot be read ({error}); store the chart again") from None
    attached: dict[str, Any] = attach_arrays(document, list(stored))
    return attached


def serve(spec: GeneratorSpec, admission: api.Admission) -> Response:
    """The file of ``spec``: stored already, rendered by a job in flight, or by a job queued now; else 503."""
    connection = current_redis()
    found = dedupe.lookup(connection, spec)
    if found is not None and found.result is not None:
        return file_answer(connection, spec, found.result)
    if found is not None and found.state == states.JobState.FAILED and not _failure_expired(found):
        raise _render_failed(connection, found.job_id)
    if found is not None and found.state != states.JobState.FAILED:
        # Joining a render in flight adds no work: nobody's share is charged.
        return wait_for(connection, spec, found.job_id)
    submission = api.queue_render(spec, admission=admission, direct=True)
    if submission.result is not None:
        return file_answer(connection, spec, submission.result)
    return wait_for(connection, spec, submission.job_id)


def _failure_expired(found: dedupe.Found) -> bool:
    if found.ended_at is None:
        return True
    ended = found.ended_at if found.ended_at.tzinfo else found.ended_at.replace(tzinfo=dt.UTC)
    return (dt.datetime.now(dt.UTC) - ended).total_seconds() >= FAILED_RENDER_HOLD_SECONDS


def _render_failed(connection: Redis, job_id: str) -> RenderFailed:
    error = status.describe(jobs.fetch(connection, job_id)).get("error") or "no reason recorded"
    return RenderFailed(
        f"the render of this chart failed: {error}; it is tried again {FAILED_RENDER_HOLD_SECONDS} s after it failed",
        job_id=job_id,
    )


def wait_for(connection: Redis, spec: GeneratorSpec, job_id: str) -> Response:
    """Wait for job ``job_id`` on its events (never polling Redis), at most EMBED_WAIT_SECONDS; serve its file."""
    hub = current_event_hub()
    deadline = time.monotonic() + current_settings().embed_wait_seconds

    def read() -> dict[str, Any]:
        return {"state": jobs.read_states(connection, [job_id])[job_id]}

    # Watching before the first read: an update published in between still wakes this request.
    with hub.watch(job_id) as watch:
        while True:
            state = hub.status(job_id, read)["state"]
            if state == states.JobState.FINISHED:
                described = jobs.stored_result(connection, jobs.fetch(connection, job_id))
                if described is not None:
                    return file_answer(connection, spec, described)
                return still_rendering(spec)
            if state == states.JobState.FAILED:
                raise _render_failed(connection, job_id)
            remaining = deadline - time.monotonic()
            if states.is_terminal(state) or remaining <= 0:
                # Canceled, stopped or gone (a reload renders again), or still on its way.
                return still_rendering(spec)
            watch.wait(remaining)


def cache_control(spec: GeneratorSpec, now: dt.datetime | None = None) -> str:
    """``immutable`` when the spec pins everything; a seed without ``start`` draws from today: cached till midnight."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.date()
    pinned = spec.pinned(today)
    # A chart's pinned() answers the spec itself when nothing is left to pin (identity: no comparison of large
    # arrays); other specs (a report of parts) may write themselves out anew: the same tomorrow means no date in it.
    if pinned is spec or pinned == spec.pinned(today + dt.timedelta(days=1)):
        return api.RESULT_CACHE_CONTROL
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return f"public, max-age={max(1, int((midnight - now).total_seconds()))}"


def file_answer(connection: Redis, spec: GeneratorSpec, description: results.ResultDescription) -> Response:
    """The stored file, with its SHA-256 as ETag and 304 for a matching If-None-Match."""
    data = results.load(connection, description)
    if data is None:
        # Expired between the lookup and now: the next request renders it again.
        return still_rendering(spec)
    response = api.file_response(data, dict(description), f"{spec.generator_name}-{description['sha256'][:12]}")
    response.headers["Cache-Control"] = cache_control(spec)
    return response


def still_rendering(spec: GeneratorSpec) -> Response:
    """503, Retry-After and a small image saying so, never cached: a reload shows the chart."""
    if spec.output_format == "svg":
        # The size of the picture to come when the spec says it (a chart), else the PNG's.
        width = getattr(spec, "width", placeholder.PNG_WIDTH)
        height = getattr(spec, "height", placeholder.PNG_HEIGHT)
        response = Response(placeholder.svg(width, height), mimetype="image/svg+xml")
    else:
        # A PDF viewer (or any other format's) shows nothing useful for a 503 either way; an <img> shows the PNG.
        response = Response(placeholder.PNG, mimetype="image/png")
    response.status_code = 503
    response.headers["Retry-After"] = str(STILL_RENDERING_RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    return response


def _upload_body() -> bytes:
    body: bytes = request.get_data(cache=True)
    return body


def _spec_of_upload(body: bytes, allowed: tuple[str, ...]) -> GeneratorSpec:
    """The spec of an upload for the served generator it names, read as POST /api/jobs reads it (JSON, or a form)."""
    environ = dict(request.environ)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return spec_input.submission_from_request(Request(environ), allowed)


def stored_document(spec: GeneratorSpec) -> tuple[dict[str, Any], bytes]:
    """What a stored chart keeps: the spec without its format and defaults, with its generator unless a chart.

    A chart's large arrays go apart (``$data``), as the bytes returned; the generator field is left out
    for the chart so a chart stored before other generators existed keeps its id.
    """
    document, arrays = detached_document(spec)
    blob = b""
    if arrays:
        document = _without_defaults(document)
        blob, document[STORED_DATA_FIELD] = data.packed(arrays)
    else:
        document = spec.model_dump(mode="json", exclude={FORMAT_FIELD}, exclude_defaults=True)
    if spec.generator_name != DEFAULT_GENERATOR:
        document = {GENERATOR_FIELD: spec.generator_name, **document}
    return document, blob


def _count_store(connection: Redis, settings: Settings, identity: str) -> None:
    key = keys.chart_stores(identity)
    with connection.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
    if int(ttl) < 0:
        # The hour starts with the first store (EXPIRE ... NX would need Redis 7; this works on 6.2).
        connection.expire(key, keys.CHART_STORES_TTL)
        ttl = keys.CHART_STORES_TTL
    if int(count) > settings.chart_url_stores_per_hour:
        raise TooManyRequests(
            f"{settings.chart_url_stores_per_hour} charts stored this hour (CHART_URL_STORES_PER_HOUR)",
            code="too_many_charts", retry_after=max(1, int(ttl)), limit=settings.chart_url_stores_per_hour,
        )  # fmt: skip


@blueprint.post("/api/charts")
def store_chart() -> tuple[Response, int]:
    """Store a reproducible spec for CHART_URL_TTL and answer its short URLs; nothing renders until one is viewed."""
    connection, settings = current_redis(), current_settings()
    body = _upload_body()
    secret = settings.chart_url_secret
    if secret:
        given = request.args.get("sig")
        if not given:
            raise SignatureRequired("this service stores signed charts only: POST /api/charts?sig=", field="sig")
        if not chart_urls.signatures_match(given, chart_urls.store_signature(secret, body)):
            message = "the sig does not match the body: sign it again (plotjobs url --short)"
            raise InvalidSignature(message, field="sig")
    spec = _spec_of_upload(body, settings.generators)
    if not spec.is_reproducible():
        field, reason = spec.irreproducibility()
        message = f"a stored chart must draw the same picture every time it is viewed: {reason}"
        raise NotReproducible(message, field=field)
    generator = generators.get(spec.generator_name, settings.generators)
    # Stored without its format: the URL's extension chooses it; large data apart, for as long as the chart.
    document, blob = stored_document(spec)
    stored = chart_urls.compact_json(document)
    chart_id = chart_urls.chart_id(stored)
    key = keys.chart(chart_id)
    # Storing a chart that exists costs nothing new: only its expiry moves.
    created = not connection.expire(key, settings.chart_url_ttl)
    if created:
        _count_store(connection, settings, f"key:{chart_urls.key_id(secret)}" if secret else api.client_address())
    if blob:
        # Before the chart that names it; as long-lived as the chart, whoever else stored the same data.
        data.put(connection, blob, document[STORED_DATA_FIELD], settings.chart_url_ttl)
    if created:
        # NX: of two identical first stores at once, one says it created the chart.
        created = bool(connection.set(key, stored, ex=settings.chart_url_ttl, nx=True))
    urls = {
        file_format: url_for("embed.stored_chart_image", chart_id=chart_id, file_format=file_format, _external=True)
        for file_format in generator.content_types
    }
    answer = {
        "id": chart_id,
        "generator": spec.generator_name,
        "url": urls[spec.output_format],
        "path": url_for("embed.stored_chart_image", chart_id=chart_id, file_format=spec.output_format),
        "urls": urls,
        "expires_in": settings.chart_url_ttl,
        "created": created,
    }
    # 200 either way: storing is idempotent, and ``created`` says whether this call stored it.
    return Response(json.dumps(answer), mimetype="application/json"), 200
