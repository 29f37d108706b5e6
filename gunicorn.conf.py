"""Picked up by gunicorn from the project directory; the settings live in the package."""

from plotjobs.web.gunicorn_config import *  # noqa: F403
