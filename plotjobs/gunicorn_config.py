"""Gunicorn settings from the environment: ``gunicorn -c python:plotjobs.gunicorn_config``.

Gunicorn reads this module as its config file, so reading the environment here, at import,
is the point of it.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or min(multiprocessing.cpu_count() * 2, 8))
# gthread: an open event stream holds one thread for its whole life, and the pool only
# starts threads when connections need them, so a large ceiling costs nothing when idle.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 600)
# Connections (idle keep-alive ones and streams) one process accepts at a time.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS") or 1000)
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 30)
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or 5)
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"
# Gunicorn's control socket lives in $HOME and would clash between instances; we don't use it.
control_socket_disable = True
