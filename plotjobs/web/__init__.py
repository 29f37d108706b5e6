"""The web app: ``create_app`` builds it from settings, registering the API, pages and operations views."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask
    from redis import Redis

    from plotjobs.broker.amqp import Publisher
    from plotjobs.config import Settings

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _asset_dir(name: str) -> str:
    """Installed wheels carry templates/static inside the package; a checkout has them at the top."""
    packaged = _PACKAGE_DIR / name
    return str(packaged if packaged.is_dir() else _PACKAGE_DIR.parent / name)


def _publisher(settings: Settings) -> Publisher | None:
    """The RabbitMQ publisher when BROKER_URL is set; it connects on first use."""
    if not settings.broker_url:
        return None
    from plotjobs.broker.amqp import Publisher

    return Publisher(settings.broker_url, settings.amqp_queue)


def create_app(settings: Settings | None = None, *, redis: Redis | None = None) -> Flask:
    """Build the web app from ``settings`` (the environment when None)."""
    from flask import Flask

    from plotjobs import config as config_module
    from plotjobs import states
    from plotjobs.connection import redis_from_settings
    from plotjobs.queue.rq_internals import harden_rq
    from plotjobs.web import api, dashboard, embed, http_errors, monitoring, pages, request_log, security
    from plotjobs.web.events import EventHub
    from plotjobs.web.extension import EXTENSION_KEY
    from plotjobs.web.request_metrics import RequestMetrics
    from plotjobs.web.status_reads import StatusReads

    settings = settings or config_module.from_env()
    # Every allow-listed generator must be installed: found at start-up, not at the first request.
    from plotjobs import generators
    from plotjobs.errors import GeneratorDeclarationError, UnknownGeneratorError

    try:
        generators.served(settings.generators)
    except (UnknownGeneratorError, GeneratorDeclarationError) as error:
        raise config_module.ConfigError(error.message) from None
    harden_rq()
    app = Flask(__name__, template_folder=_asset_dir("templates"), static_folder=_asset_dir("static"))
    app.config.update(
        # Never debug mode, whatever FLASK_DEBUG says: it would serve tracebacks and propagate errors.
        DEBUG=False,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        # A spec sent as a form field may be as large as any other request body.
        MAX_FORM_MEMORY_SIZE=settings.max_request_bytes,
    )
    connection = redis or redis_from_settings(settings)
    app.extensions[EXTENSION_KEY] = {
        "settings": settings,
        "redis": connection,
        "publisher": _publisher(settings),
        # The hub's thread starts with the first event stream, in the process that serves it.
        "events": EventHub(connection),
        "request_metrics": RequestMetrics(settings.prometheus_multiproc_dir),
    }
    # Compact, as Flask's JSON provider writes a view's answer outside debug mode (never on here).
    compact_json = functools.partial(app.json.dumps, separators=(",", ":"))
    app.wsgi_app = StatusReads(  # type: ignore[method-assign]
        app.wsgi_app, connection, app.extensions[EXTENSION_KEY]["request_metrics"], compact_json
    )
    if settings.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Trust X-Forwarded-For from exactly the configured number of proxies, never more.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    http_errors.register_error_handlers(app)
    request_log.init_app(app, settings.log_level)
    monitoring.init_app(app)
    security.install(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(embed.blueprint)
    # The page's scripts read the end states from here: the one list the server uses too.
    app.jinja_env.globals["terminal_states"] = " ".join(sorted(states.TERMINAL))
    dashboard.init_app(app, settings, connection)
    return app
