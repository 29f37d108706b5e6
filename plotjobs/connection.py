"""Redis clients built from settings on demand (never at import time), for every process."""

from __future__ import annotations

from typing import Any

from redis import BlockingConnectionPool, Redis
from redis.connection import SSLConnection, parse_url
from redis.sentinel import Sentinel

from plotjobs.config import REDIS_SOCKET_TIMEOUT_SECONDS, Settings

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


_TIMEOUTS: dict[str, Any] = {
    "socket_connect_timeout": 5,
    "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    "health_check_interval": 30,
}
# How long a web thread waits for a free connection of a bounded pool before a 503.
POOL_WAIT_SECONDS = 20


def redis_from_url(url: str | None, max_connections: int | None = None) -> Redis:
    """A client for ``url`` (localhost when None) that fails fast instead of hanging.

    With ``max_connections`` the pool is bounded and threads wait for a free connection, so
    hundreds of threads woken at once (event streams) share a few connections instead of
    opening hundreds at the same moment.
    """
    if max_connections is None:
        return Redis.from_url(url or DEFAULT_REDIS_URL, **_TIMEOUTS)
    pool = BlockingConnectionPool.from_url(
        url or DEFAULT_REDIS_URL, max_connections=max_connections, timeout=POOL_WAIT_SECONDS, **_TIMEOUTS
    )
    return Redis(connection_pool=pool)


def sentinel_master_kwargs(url: str | None) -> dict[str, Any]:
    """What a Sentinel-found master connection takes from REDIS_URL: credentials, database, TLS."""
    kwargs: dict[str, Any] = dict(parse_url(url or DEFAULT_REDIS_URL))  # type: ignore[no-untyped-call]
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    kwargs.pop("path", None)
    if kwargs.pop("connection_class", None) is SSLConnection:
        kwargs["ssl"] = True
    return kwargs


def redis_from_settings(settings: Settings) -> Redis:
    """The client the settings describe: the master named by Sentinel when configured, else REDIS_URL."""
    if not settings.redis_sentinels:
        return redis_from_url(settings.redis_url, settings.redis_max_connections)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(settings.redis_sentinels), socket_timeout=5, socket_connect_timeout=5
    )
    master: Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        settings.redis_sentinel_master,
        max_connections=settings.redis_max_connections,
        **_TIMEOUTS,
        **sentinel_master_kwargs(settings.redis_url),
    )
    return master
