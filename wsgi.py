"""The WSGI entry point: ``gunicorn wsgi:app``."""

from plotjobs.web import create_app

app = create_app()
