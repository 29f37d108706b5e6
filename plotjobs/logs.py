"""Structured logs: one JSON object per line on stdout, for requests, jobs and everything else we log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

LOGGER_NAME = "plotjobs"
REQUEST_LOGGER = "plotjobs.request"
JOB_LOGGER = "plotjobs.job"
_HANDLER_MARK = "plotjobs-json"


class JsonFormatter(logging.Formatter):
    """Renders a record as one JSON line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is when a line is logged (gunicorn and pytest swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        """The stream is always the current stdout; a value given here is not kept."""


def configure(level: str) -> None:
    """Send plotjobs' logs to stdout as JSON at ``level`` (safe to call more than once)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not any(getattr(handler, "name", None) == _HANDLER_MARK for handler in logger.handlers):
        handler = _StdoutHandler()
        handler.set_name(_HANDLER_MARK)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    # Gunicorn and RQ configure the root logger their own way; our lines stay ours.
    logger.propagate = False


def is_configured() -> bool:
    """Whether ``configure`` has run in this process."""
    return any(getattr(handler, "name", None) == _HANDLER_MARK for handler in logging.getLogger(LOGGER_NAME).handlers)


def log_event(logger_name: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``message`` with ``fields`` as top-level keys of its JSON line."""
    logging.getLogger(logger_name).log(level, message, extra={"fields": fields})
