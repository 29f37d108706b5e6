"""Redis clients: built from settings on demand, kept per Flask app, never at import time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app
from redis import BlockingConnectionPool, Redis

from plotjobs.config import Settings

if TYPE_CHECKING:
    from plotjobs.events import EventHub

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
EXTENSION_KEY = "plotjobs"


# How long a web thread waits for a free connection of a bounded pool before a 503.
POOL_WAIT_SECONDS = 20


def redis_from_url(url: str | None, max_connections: int | None = None) -> Redis:
    """A client for ``url`` (localhost when None) that fails fast instead of hanging.

    With ``max_connections`` the pool is bounded and threads wait for a free connection, so
    hundreds of threads woken at once (event streams) share a few connections instead of
    opening hundreds at the same moment.
    """
    options: dict[str, Any] = {"socket_connect_timeout": 5, "socket_timeout": 30, "health_check_interval": 30}
    if max_connections is None:
        return Redis.from_url(url or DEFAULT_REDIS_URL, **options)
    pool = BlockingConnectionPool.from_url(
        url or DEFAULT_REDIS_URL, max_connections=max_connections, timeout=POOL_WAIT_SECONDS, **options
    )
    return Redis(connection_pool=pool)


def current_redis() -> Redis:
    """The Redis client of the running app."""
    client: Redis = current_app.extensions[EXTENSION_KEY]["redis"]
    return client


def current_settings() -> Settings:
    """The settings of the running app."""
    settings: Settings = current_app.extensions[EXTENSION_KEY]["settings"]
    return settings


def current_event_hub() -> EventHub:
    """The running app's subscriber to job events."""
    hub: EventHub = current_app.extensions[EXTENSION_KEY]["events"]
    return hub
