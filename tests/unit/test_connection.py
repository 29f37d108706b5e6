"""Redis clients from settings: bounded pools when asked, and what a Sentinel master takes from REDIS_URL."""

from __future__ import annotations

from redis import BlockingConnectionPool

from plotjobs.connection import POOL_WAIT_SECONDS, redis_from_url, sentinel_master_kwargs


def test_a_client_fails_fast_and_defaults_to_localhost() -> None:
    client = redis_from_url(None)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("localhost", 6379, 0)
    assert kwargs["socket_connect_timeout"] == 5 and kwargs["socket_timeout"] == 30
    assert not isinstance(client.connection_pool, BlockingConnectionPool)


def test_max_connections_bounds_the_pool() -> None:
    pool = redis_from_url("redis://cache:6380/2", max_connections=4).connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == 4 and pool.timeout == POOL_WAIT_SECONDS
    assert (pool.connection_kwargs["host"], pool.connection_kwargs["db"]) == ("cache", 2)


def test_a_sentinel_master_keeps_credentials_database_and_tls_but_not_the_address() -> None:
    kwargs = sentinel_master_kwargs("rediss://app:s3cret@ignored:1234/3")
    assert kwargs == {"username": "app", "password": "s3cret", "db": 3, "ssl": True}
    assert sentinel_master_kwargs("redis://ignored/0") == {"db": 0}
