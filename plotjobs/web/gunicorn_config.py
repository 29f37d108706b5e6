"""Gunicorn settings from the environment: ``gunicorn -c python:plotjobs.web.gunicorn_config``.

Gunicorn reads this module as its config file, so reading the environment here, at import,
is the point of it.
"""

import multiprocessing
import os


def _whole_number(name: str, default: int) -> int:
    """A positive integer from the environment; a bad value stops gunicorn with a message, not a traceback."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise SystemExit(f"{name} must be a whole number greater than 0, got {raw!r}")
    return int(raw)


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_whole_number('PORT', 8000)}"
workers = _whole_number("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2, 8))
# gthread: an open event stream holds one thread for its whole life, and the pool only
# starts threads when connections need them, so a large ceiling costs nothing when idle.
worker_class = "gthread"
threads = _whole_number("GUNICORN_THREADS", 600)
# Connections (idle keep-alive ones and streams) one process accepts at a time.
worker_connections = _whole_number("GUNICORN_WORKER_CONNECTIONS", 1000)
timeout = _whole_number("GUNICORN_TIMEOUT", 30)
graceful_timeout = _whole_number("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _whole_number("GUNICORN_KEEPALIVE", 5)
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"
# Gunicorn's control socket lives in $HOME and would clash between instances; we don't use it.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Check plotjobs' settings before any worker boots: a bad value stops gunicorn with its message."""
    from plotjobs.config import ConfigError, from_env

    try:
        from_env()
    except ConfigError as error:
        raise SystemExit(f"plotjobs cannot start: {error}") from None
