"""Gunicorn settings from the environment: ``gunicorn -c python:plotjobs.web.gunicorn_config``.

Gunicorn reads this module as its config file, so reading the environment here, at import,
is the point of it. Every plotjobs setting is checked here too, in the master, so a bad value
stops gunicorn with its name before any worker boots.
"""

from plotjobs.config import ConfigError, from_env
from plotjobs.logs import gunicorn_logconfig

try:
    _settings = from_env()
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
# Gunicorn's control socket lives in $HOME and would clash between instances; we don't use it.
control_socket_disable = True
