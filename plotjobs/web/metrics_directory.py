"""The directory where one gunicorn's processes keep their request metrics (prometheus_client's multiprocess mode).

Gunicorn's master (plotjobs.web.gunicorn_config) picks it before any worker exists, empties it
when it starts, and tells prometheus_client when a worker has exited. prometheus_client is
imported only inside these functions: it decides between memory and files from the environment
when first imported, and the master must set PROMETHEUS_MULTIPROC_DIR before that happens.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from plotjobs.config import ConfigError

PRIVATE_PREFIX = "plotjobs-metrics-"


def prepare(configured: str | None) -> str:
    """The absolute path of ``configured`` (created if missing), or a private directory removed at exit."""
    if configured is None:
        return _private_directory()
    path = Path(configured).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR {configured!r} cannot be created: {error.strerror}") from None
    return str(path)


def _private_directory() -> str:
    try:
        path = tempfile.mkdtemp(prefix=PRIVATE_PREFIX)
    except OSError as error:
        raise ConfigError(
            f"no directory for request metrics in {tempfile.gettempdir()!r} ({error.strerror}): "
            "set PROMETHEUS_MULTIPROC_DIR to a writable directory"
        ) from None
    atexit.register(_remove_if_still_in, os.getpid(), path)
    return path


def _remove_if_still_in(owner: int, path: str) -> None:
    # Gunicorn's workers are forks of the master and run its exit handlers too; only the master may remove it.
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def clean(path: str) -> None:
    """Delete the metric files an earlier run left in ``path`` (prometheus_client's ``*.db``, nothing else)."""
    for stale in Path(path).glob("*.db"):
        stale.unlink(missing_ok=True)


def forget_process(pid: int, path: str) -> None:
    """After process ``pid`` exited: its counters and histograms stay counted, its live gauges go."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, path)
