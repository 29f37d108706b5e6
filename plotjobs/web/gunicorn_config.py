"""Gunicorn settings from the environment: ``gunicorn -c python:plotjobs.web.gunicorn_config``.

Gunicorn reads this module as its config file, so reading the environment here, at import,
is the point of it. Every plotjobs setting is checked here too, in the master, so a bad value
stops gunicorn with its name before any worker boots.
"""

import os
from typing import Any

from plotjobs.config import LIMIT_REQUEST_LINE, ConfigError, from_env
from plotjobs.logs import gunicorn_logconfig
from plotjobs.web import metrics_directory

try:
    _settings = from_env()
    # Set before anything imports prometheus_client (the dashboard check below, or the app with
    # --preload): it reads the variable once, at import, and the workers inherit it when forked.
    _metrics_dir = metrics_directory.prepare(_settings.prometheus_multiproc_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
    if _settings.dashboard_enabled:
        # Checked in the master too: a worker that fails to boot would only print a traceback.
        from plotjobs.web.dashboard import require_rq_dashboard

        require_rq_dashboard()
except ConfigError as error:
    raise SystemExit(f"plotjobs cannot start: {error}") from None

bind = _settings.gunicorn_bind or f"0.0.0.0:{_settings.port}"
workers = _settings.web_concurrency
# gthread: an open event stream holds one thread for its whole life, and the pool only
# starts threads when connections need them, so a large ceiling costs nothing when idle.
worker_class = "gthread"
threads = _settings.gunicorn_threads
# Connections (idle keep-alive ones and streams) one process accepts at a time.
worker_connections = _settings.gunicorn_worker_connections
timeout = _settings.gunicorn_timeout
graceful_timeout = _settings.gunicorn_graceful_timeout
keepalive = _settings.gunicorn_keepalive
loglevel = _settings.log_level.lower()
# Gunicorn's error log (stderr) and access log (GUNICORN_ACCESS_LOG: "-" for stdout, or a file; off when
# unset) as JSON lines shaped like ours. This dict decides both, so ``accesslog``/``errorlog`` stay unset.
logconfig_dict = gunicorn_logconfig(_settings.log_level, _settings.gunicorn_access_log)
forwarded_allow_ips = _settings.forwarded_allow_ips
# Raised from gunicorn's 4094 bytes so that a chart URL up to CHART_URL_MAX_BYTES reaches the app,
# which answers one over that limit with its own 414 (docs/embedding.md).
limit_request_line = LIMIT_REQUEST_LINE
# Gunicorn's control socket lives in $HOME and would clash between instances; we don't use it.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """In the master, before the first worker: counts left by an earlier run of this directory are not ours."""
    try:
        metrics_directory.clean(_metrics_dir)
    except OSError as error:
        raise SystemExit(f"plotjobs cannot start: PROMETHEUS_MULTIPROC_DIR {_metrics_dir!r}: {error}") from None
    server.log.info("request metrics of this gunicorn's processes are kept in %s", _metrics_dir)


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker exited: its requests stay counted, its live gauges are dropped."""
    metrics_directory.forget_process(worker.pid, _metrics_dir)
