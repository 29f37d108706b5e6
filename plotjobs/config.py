"""Settings: defaults, overridden by the environment, checked once at start-up."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A setting in the environment has a value we cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything plotjobs can be told from the environment; see the README's table."""

    redis_url: str | None = None
    queues: tuple[str, ...] = ("default",)
    result_ttl: int = 3600
    failure_ttl: int = 86400
    job_timeout: int = 60
    max_request_bytes: int = 1_000_000
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    port: int = 8000
    log_level: str = "INFO"
    redis_max_connections: int = 50

    @property
    def default_queue(self) -> str:
        """The queue a job goes to when the request does not choose one."""
        return self.queues[0]

    def replace(self, **changes: object) -> Settings:
        """A copy with some settings changed (tests use it)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {value}")
    return value


def _queue_names(raw: str | None) -> tuple[str, ...]:
    if raw is None or raw.strip() == "":
        return Settings.queues
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    for name in names:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"QUEUES holds an invalid queue name {name!r}: use letters, digits, - and _")
    if not names:
        raise ConfigError("QUEUES must name at least one queue")
    return names


def _redis_url(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {raw!r}")
    return raw


def _log_level(raw: str | None) -> str:
    level = (raw or "INFO").strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {raw!r}")
    return level


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the settings in ``environ`` (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    defaults = Settings(secret_key="")
    secret_key = env.get("SECRET_KEY") or secrets.token_hex(32)
    return Settings(
        redis_url=_redis_url(env.get("REDIS_URL")),
        queues=_queue_names(env.get("QUEUES")),
        result_ttl=_positive_int(env, "RESULT_TTL", defaults.result_ttl),
        failure_ttl=_positive_int(env, "FAILURE_TTL", defaults.failure_ttl),
        job_timeout=_positive_int(env, "JOB_TIMEOUT", defaults.job_timeout),
        max_request_bytes=_positive_int(env, "MAX_REQUEST_BYTES", defaults.max_request_bytes),
        secret_key=secret_key,
        port=_positive_int(env, "PORT", defaults.port),
        log_level=_log_level(env.get("LOG_LEVEL")),
        redis_max_connections=_positive_int(env, "REDIS_MAX_CONNECTIONS", defaults.redis_max_connections),
    )
