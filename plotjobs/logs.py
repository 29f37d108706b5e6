"""Structured logs: one JSON object per line, for requests, jobs, RQ, gunicorn and everything else we log.

Every line has ``ts``, ``level``, ``logger`` and ``message``, then the fields given with it
(``log_event``'s keyword arguments, or ``extra=`` on any stdlib logging call).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

LOGGER_NAME = "plotjobs"
REQUEST_LOGGER = "plotjobs.request"
JOB_LOGGER = "plotjobs.job"
RQ_LOGGER = "rq"
_HANDLER_MARK = "plotjobs-json"


class JsonFormatter(_LibraryJsonFormatter):
    """Renders a record as one JSON line: time, level, logger, message and the record's extra fields."""

    def __init__(self) -> None:
        super().__init__(rename_fields={"exc_info": "exception", "stack_info": "stack"})

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        """Our four fields first, then what the library adds: the exception and the record's extras."""
        log_data["ts"] = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["message"] = record.message
        super().add_fields(log_data, record, message_dict)


class GunicornAccessFormatter(JsonFormatter):
    """Gunicorn's access line, with the request's method, path, status, client and duration as fields."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        """The line's fields, plus the parts gunicorn passes as the record's arguments."""
        super().add_fields(log_data, record, message_dict)
        atoms = record.args
        if isinstance(atoms, Mapping):
            status = str(atoms.get("s", ""))
            micros = atoms.get("D")
            log_data.update(
                method=atoms.get("m"),
                path=atoms.get("U"),
                status=int(status) if status.isdigit() else None,
                duration_ms=round(micros / 1000, 2) if isinstance(micros, int) else None,
                remote_addr=atoms.get("h"),
            )


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


def _our_handler() -> logging.Handler | None:
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if handler.name == _HANDLER_MARK:
            return handler
    return None


def configure(level: str) -> None:
    """Send plotjobs' and RQ's logs to stdout as JSON at ``level`` (safe to call more than once)."""
    for name in (LOGGER_NAME, RQ_LOGGER):
        attach(name, level)
    # RQ's Worker.work() adds its own plain handlers to rq.worker and rq.job only when no handler is found up
    # their tree: ours, on "rq", is. A stock `rq worker` has added them already, with its own level and
    # propagation off; they make way for ours, and the lines go up to "rq" again at ``level``.
    for name in ("rq.worker", "rq.job"):
        rq_logger = logging.getLogger(name)
        for rq_handler in list(rq_logger.handlers):
            if type(rq_handler).__module__.startswith("rq."):
                rq_logger.removeHandler(rq_handler)
        rq_logger.setLevel(logging.NOTSET)
        rq_logger.propagate = True


def attach(logger_name: str, level: str | int) -> None:
    """Send ``logger_name``'s lines at ``level`` and above through our JSON handler, and only there."""
    handler = _our_handler()
    if handler is None:
        handler = _StdoutHandler()
        handler.set_name(_HANDLER_MARK)
        handler.setFormatter(JsonFormatter())
        logging.getLogger(LOGGER_NAME).addHandler(handler)
    logger = logging.getLogger(logger_name)
    logger.setLevel(level)
    if handler not in logger.handlers:
        logger.addHandler(handler)
    # Gunicorn and RQ configure the root logger their own way; these lines stay ours.
    logger.propagate = False


def add_filter(record_filter: logging.Filter) -> None:
    """Run ``record_filter`` on every line ``configure``'s handler writes (one filter of each kind)."""
    handler = _our_handler()
    if handler is None:
        raise RuntimeError("call plotjobs.logs.configure() first")
    if not any(type(existing) is type(record_filter) for existing in handler.filters):
        handler.addFilter(record_filter)


def is_configured() -> bool:
    """Whether ``configure`` has run in this process."""
    return _our_handler() is not None


def log_event(logger_name: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``message`` with ``fields`` as top-level keys of its JSON line."""
    logging.getLogger(logger_name).log(level, message, extra=fields)


def gunicorn_logconfig(level: str, access_log: str | None) -> dict[str, Any]:
    """Gunicorn's ``logconfig_dict``: its error log on stderr and its access log (``-``, a file, or off) as JSON."""
    if access_log is None:
        access: dict[str, Any] = {"class": "logging.NullHandler"}
    elif access_log == "-":
        access = {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"}
    else:
        access = {"class": "logging.FileHandler", "formatter": "access", "filename": access_log}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": f"{__name__}.JsonFormatter"},
            "access": {"()": f"{__name__}.GunicornAccessFormatter"},
        },
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "access": access,
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {
                "level": "INFO" if access_log else "WARNING",
                "handlers": ["access"],
                "propagate": False,
            },
        },
    }
