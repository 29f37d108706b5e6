"""Settings: defaults, overridden by the environment, checked once at start-up."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

PRIORITIES = ("high", "default", "low")
DEFAULT_PRIORITY = "default"


class ConfigError(ValueError):
    """A setting in the environment has a value we cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything plotjobs can be told from the environment; see docs/configuration.md."""

    redis_url: str | None = None
    queues: tuple[str, ...] = ("high", "default", "low")
    result_ttl: int = 3600
    failure_ttl: int = 86400
    job_timeout: int = 60
    max_request_bytes: int = 1_000_000
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    port: int = 8000
    log_level: str = "INFO"
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str | None = None
    dashboard_username: str | None = None
    dashboard_password: str | None = field(default=None, repr=False)
    dashboard_allow_delete: bool = False
    broker_url: str | None = field(default=None, repr=False)
    amqp_queue: str = "plotjobs.render"
    redis_max_connections: int = 50
    worker_processes: int = 1
    worker_max_jobs: int = 500
    worker_max_memory_mb: int = 512
    worker_liveness_timeout: int = 15
    sweep_interval: int = 5
    lost_job_retries: int = 2
    max_queue_depth: int = 1000
    max_jobs_per_client: int = 20
    proxy_hops: int = 0

    @property
    def recovery_bound(self) -> int:
        """Seconds after a worker's death by which its job is requeued or failed (while any sweeper runs)."""
        return self.worker_liveness_timeout + self.sweep_interval

    @property
    def default_queue(self) -> str:
        """The queue a job goes to when the request does not choose one: ``default`` if served, else the first."""
        return DEFAULT_PRIORITY if DEFAULT_PRIORITY in self.queues else self.queues[0]

    @property
    def dashboard_enabled(self) -> bool:
        """rq-dashboard is served only when both of its credentials are configured."""
        return bool(self.dashboard_username and self.dashboard_password)

    def replace(self, **changes: object) -> Settings:
        """A copy with some settings changed (tests use it)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _whole_number(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        bound = "greater than 0" if minimum == 1 else f"{minimum} or more"
        raise ConfigError(f"{name} must be {bound}, got {value}")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    return _whole_number(environ, name, default, minimum=1)


def _non_negative_int(environ: Mapping[str, str], name: str, default: int) -> int:
    return _whole_number(environ, name, default, minimum=0)


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


def log_level_from_env(environ: Mapping[str, str] | None = None) -> str:
    """LOG_LEVEL alone, for processes that run our code without our settings (a stock ``rq worker``)."""
    return _log_level((os.environ if environ is None else environ).get("LOG_LEVEL"))


def _broker_url(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    if not raw.startswith(("amqp://", "amqps://")):
        raise ConfigError("BROKER_URL must start with amqp:// or amqps://, got a URL with another scheme")
    return raw


def _amqp_queue(raw: str | None) -> str:
    if raw is None or raw.strip() == "":
        return Settings.amqp_queue
    name = raw.strip()
    if len(name) > 200 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"AMQP_QUEUE must be up to 200 letters, digits, '.', '-' and '_', got {raw!r}")
    if name.startswith("amq."):
        raise ConfigError(f"AMQP_QUEUE must not start with 'amq.' (RabbitMQ reserves it), got {raw!r}")
    return name


def _log_level(raw: str | None) -> str:
    level = (raw or "INFO").strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {raw!r}")
    return level


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = (environ.get(name) or "").strip().lower()
    if raw in {"", "0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise ConfigError(f"{name} must be true or false, got {environ.get(name)!r}")


def _sentinels(raw: str | None) -> tuple[tuple[str, int], ...]:
    if raw is None or raw.strip() == "":
        return ()
    addresses = []
    for item in (part.strip() for part in raw.split(",")):
        host, separator, port = item.rpartition(":")
        if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"REDIS_SENTINELS must be host:port[,host:port...], got {item!r}")
        addresses.append((host, int(port)))
    return tuple(addresses)


def _sentinel_master(environ: Mapping[str, str], sentinels: tuple[tuple[str, int], ...]) -> str | None:
    master = (environ.get("REDIS_SENTINEL_MASTER") or "").strip() or None
    if sentinels and master is None:
        raise ConfigError("REDIS_SENTINEL_MASTER must name the monitored master when REDIS_SENTINELS is set")
    if master is not None and not sentinels:
        raise ConfigError("REDIS_SENTINEL_MASTER needs REDIS_SENTINELS (host:port of the sentinels)")
    return master


def _dashboard_credentials(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    username = environ.get("DASHBOARD_USERNAME") or None
    password = environ.get("DASHBOARD_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError("DASHBOARD_USERNAME and DASHBOARD_PASSWORD must be set together (or neither, to turn it off)")
    return username, password


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the settings in ``environ`` (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    defaults = Settings(secret_key="")
    secret_key = env.get("SECRET_KEY") or secrets.token_hex(32)
    sentinels = _sentinels(env.get("REDIS_SENTINELS"))
    dashboard_username, dashboard_password = _dashboard_credentials(env)
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
        redis_sentinels=sentinels,
        redis_sentinel_master=_sentinel_master(env, sentinels),
        dashboard_username=dashboard_username,
        dashboard_password=dashboard_password,
        dashboard_allow_delete=_flag(env, "DASHBOARD_ALLOW_DELETE"),
        broker_url=_broker_url(env.get("BROKER_URL")),
        amqp_queue=_amqp_queue(env.get("AMQP_QUEUE")),
        redis_max_connections=_positive_int(env, "REDIS_MAX_CONNECTIONS", defaults.redis_max_connections),
        worker_processes=_positive_int(env, "WORKER_PROCESSES", defaults.worker_processes),
        worker_max_jobs=_positive_int(env, "WORKER_MAX_JOBS", defaults.worker_max_jobs),
        worker_max_memory_mb=_positive_int(env, "WORKER_MAX_MEMORY_MB", defaults.worker_max_memory_mb),
        worker_liveness_timeout=_liveness_timeout(env),
        sweep_interval=_positive_int(env, "SWEEP_INTERVAL", defaults.sweep_interval),
        lost_job_retries=_non_negative_int(env, "LOST_JOB_RETRIES", defaults.lost_job_retries),
        max_queue_depth=_positive_int(env, "MAX_QUEUE_DEPTH", defaults.max_queue_depth),
        max_jobs_per_client=_positive_int(env, "MAX_JOBS_PER_CLIENT", defaults.max_jobs_per_client),
        proxy_hops=_non_negative_int(env, "PROXY_HOPS", defaults.proxy_hops),
    )


def _liveness_timeout(environ: Mapping[str, str]) -> int:
    # Workers beat every third of the timeout; below 3 s a busy host could miss beats and be declared dead.
    value = _positive_int(environ, "WORKER_LIVENESS_TIMEOUT", Settings.worker_liveness_timeout)
    if value < 3:
        raise ConfigError(f"WORKER_LIVENESS_TIMEOUT must be at least 3 seconds, got {value}")
    return value
