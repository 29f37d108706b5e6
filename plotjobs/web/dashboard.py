"""rq-dashboard mounted at /rq: behind HTTP Basic auth, off without credentials, hardened.

See docs/operations.md, "rq-dashboard at /rq".
"""

from __future__ import annotations

import hmac
import html
import json
from collections.abc import Callable
from http import HTTPStatus
from types import ModuleType
from typing import Any

from flask import Flask, Response, jsonify, request
from redis import Redis

from plotjobs.config import ConfigError, Settings
from plotjobs.errors import (
    ActionForbidden,
    AuthenticationRequired,
    JobActionRefused,
    MethodNotAllowed,
    UnknownPage,
    UnreadableJob,
)
from plotjobs.queue import dashboard_records, jobs
from plotjobs.queue.rq_internals import harden_rq
from plotjobs.web.extension import current_redis, current_settings

URL_PREFIX = "/rq"
EXTRA = "plotjobs[dashboard]"
BLUEPRINT = "rq_dashboard"

# Every view of rq-dashboard that changes state; it accepts GET for the first one.
STATE_CHANGING = frozenset({"requeue_all", "requeue_job_view", "delete_job_view", "empty_queue", "compact_queue"})
DELETING = frozenset({"delete_job_view", "empty_queue"})

# The JSON views whose strings the dashboard's templates insert as raw HTML, with the keys
# those templates already escape themselves (escaping them again would show entities).
ESCAPED_JSON = {
    "job_info": frozenset(),
    "list_jobs": frozenset({"description", "exc_info"}),
    "list_workers": frozenset({"description"}),
    "list_queues": frozenset(),
}


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _authenticate(settings: Settings) -> None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
        raise AuthenticationRequired("the dashboard needs the operator's username and password")
    # Both comparisons always run, so the time taken does not tell which one failed.
    username_ok = _same(auth.username, settings.dashboard_username or "")
    password_ok = _same(auth.password, settings.dashboard_password or "")
    if not (username_ok and password_ok):
        raise AuthenticationRequired("wrong username or password for the dashboard")


def _guard() -> None:
    """Runs before every dashboard view, in place of rq-dashboard's own connection hook."""
    settings = current_settings()
    _authenticate(settings)
    if (request.view_args or {}).get("instance_number", 0) != 0:
        raise UnknownPage("this dashboard shows one Redis: instance 0")
    action = (request.endpoint or "").partition(".")[2]
    if action in STATE_CHANGING:
        if request.method != "POST":
            raise MethodNotAllowed(f"{action} changes state: use POST")
        # A cross-site form cannot set this header; rq-dashboard's own pages (jQuery) always do.
        if request.headers.get("X-Requested-With") != "XMLHttpRequest":
            raise ActionForbidden("dashboard actions must come from the dashboard's own page")
        if action in DELETING and not settings.dashboard_allow_delete:
            raise ActionForbidden("deleting jobs from the dashboard is turned off (DASHBOARD_ALLOW_DELETE)")


def _escaped(value: Any, keep: frozenset[str]) -> Any:
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, list):
        return [_escaped(item, keep) for item in value]
    if isinstance(value, dict):
        return {key: item if key in keep else _escaped(item, keep) for key, item in value.items()}
    return value


# rq-dashboard's pages run inline scripts and compile underscore templates (new Function);
# they get their own policy, still limited to this origin, instead of our pages' stricter one.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


def _harden(response: Response) -> Response:
    # No framing (its buttons cannot be clickjacked), no caching of job data, no referrer leaks.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DASHBOARD_CSP
    return response


def _escape_json(response: Response) -> Response:
    keep = ESCAPED_JSON.get((request.endpoint or "").partition(".")[2])
    if keep is not None and response.status_code == HTTPStatus.OK and response.is_json:
        response.set_data(json.dumps(_escaped(response.get_json(), keep)))
    return response


def _known_job_first(view: Callable[..., Any]) -> Callable[..., Any]:
    def checked(**view_args: Any) -> Any:
        # Our fetch refuses malformed ids (404) and jobs whose record cannot be read (409).
        jobs.fetch(current_redis(), view_args["job_id"])
        return view(**view_args)

    return checked


def _job_action(view: Callable[..., Any]) -> Callable[..., Any]:
    def acted(**view_args: Any) -> Any:
        try:
            return view(**view_args)
        except dashboard_records.ACTION_REFUSED as error:
            raise JobActionRefused(view_args["job_id"], str(error)) from None
        except dashboard_records.RECORD_ERRORS as error:
            # Acting on a job, RQ reads its execution and group records too; any may be hand-written.
            raise UnreadableJob(view_args["job_id"], f"{type(error).__name__} in a record RQ reads with it") from None

    return acted


def _requeue_all(queue_name: str) -> Response:
    """Requeue every failed job of the queue that can be read; the others stay where they are."""
    return jsonify(status="OK", count=dashboard_records.requeue_all(current_redis(), queue_name))


def _empty_queue(queue_name: str, registry_name: str) -> Response:
    """Delete every job of a queue or registry that can be read; unreadable ones stay, for an operator to see."""
    dashboard_records.empty(current_redis(), queue_name, registry_name)
    return jsonify(status="OK")


def _display_name(settings: Settings) -> str:
    if settings.redis_sentinels:
        return f"sentinel master {settings.redis_sentinel_master}"
    return settings.redis_url or "redis://localhost:6379/0"


def require_rq_dashboard() -> ModuleType:
    """The rq_dashboard package, or a ConfigError naming the extra that installs it."""
    try:
        import rq_dashboard
        import rq_dashboard.web
    except ModuleNotFoundError as error:
        # Only a missing module means "not installed"; any other ImportError is a real incompatibility.
        raise ConfigError(
            f"DASHBOARD_USERNAME and DASHBOARD_PASSWORD turn on the dashboard, but {error.name} is not installed:"
            f" pip install '{EXTRA}' (or unset both to run without the dashboard)"
        ) from None
    package: ModuleType = rq_dashboard
    return package


def init_app(app: Flask, settings: Settings, connection: Redis) -> None:
    """Mount rq-dashboard at /rq when DASHBOARD_USERNAME and DASHBOARD_PASSWORD are set; else nothing."""
    if not settings.dashboard_enabled:
        return
    rq_dashboard = require_rq_dashboard()
    # rq-dashboard passes its serializer setting in some places only; harden_rq() covers the
    # others (they fall back to RQ's default serializer), its classes are replaced by ours.
    harden_rq()
    dashboard_records.read_through_plotjobs()
    app.config.update(
        RQ_DASHBOARD_REDIS_URL=(_display_name(settings),),
        RQ_DASHBOARD_DISABLE_DELETE=not settings.dashboard_allow_delete,
        RQ_DASHBOARD_SHOW_FULL_ARGS=False,
    )
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # The blueprint's own hook builds a new client from the URL on every request; the
    # dashboard uses the app's client instead, and the guard takes the hook's place.
    app.redis_conn = connection  # type: ignore[attr-defined]
    app.before_request_funcs[BLUEPRINT] = [_guard]
    app.after_request_funcs.setdefault(BLUEPRINT, []).extend([_escape_json, _harden])
    for endpoint in ("job_view", "job_info", "requeue_job_view", "delete_job_view"):
        name = f"{BLUEPRINT}.{endpoint}"
        app.view_functions[name] = _known_job_first(app.view_functions[name])
    for endpoint in ("requeue_job_view", "delete_job_view"):
        name = f"{BLUEPRINT}.{endpoint}"
        app.view_functions[name] = _job_action(app.view_functions[name])
    # Its own versions stop at the first job they cannot read (a 500), leaving the rest undone.
    app.view_functions[f"{BLUEPRINT}.requeue_all"] = _requeue_all
    app.view_functions[f"{BLUEPRINT}.empty_queue"] = _empty_queue
