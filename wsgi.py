"""The WSGI entry point: ``gunicorn wsgi:app``."""

from plotjobs import create_app

app = create_app()
