"""Settings: defaults, overridden by the environment, checked once at start-up.

One model serves the web app, the workers, the bridge and gunicorn. Each field is read from
the environment variable of the same name in capitals (``redis_url`` from ``REDIS_URL``); an
empty value counts as unset. Building ``Settings(...)`` directly reads no environment: only
``from_env`` does, so tests and callers say exactly what they set.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasGenerator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# How long a Redis client waits for an answer before it gives up (plotjobs.connection).
REDIS_SOCKET_TIMEOUT_SECONDS = 30

PRIORITIES = ("high", "default", "low")
# The generators served when GENERATORS is not set: those plotjobs ships.
BUILTIN_GENERATORS = ("chart", "vega-lite", "report")
# The generator of a submission that names none: every client from before generators keeps working.
DEFAULT_GENERATOR = "chart"
# A generator's name becomes part of queue names, metric labels and URLs: short, lowercase, no dots.
GENERATOR_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
DEFAULT_PRIORITY = "default"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
MAX_PORT = 65535
# RabbitMQ allows longer names; ours stay readable in its management pages.
MAX_AMQP_QUEUE_NAME = 200
# Workers beat every third of the timeout: 1 s between beats at the least.
MIN_LIVENESS_TIMEOUT = 3
# Gunicorn's limit_request_line, which plotjobs.web.gunicorn_config raises to this (its largest finite value).
LIMIT_REQUEST_LINE = 8190
# The most a chart URL's path and query may take: below that limit with room for the method and
# the protocol ("OPTIONS " and " HTTP/1.1"), so an over-long chart URL gets our 414, not gunicorn's.
MAX_CHART_URL_BYTES = 8000
MIN_CHART_URL_BYTES = 256


class ConfigError(ValueError):
    """A setting in the environment has a value we cannot use."""


def _env_name(info: ValidationInfo) -> str:
    return (info.field_name or "").upper()


def _whole_number(minimum: int) -> BeforeValidator:
    bound = "greater than 0" if minimum == 1 else f"{minimum} or more"

    def parse(value: object, info: ValidationInfo) -> int:
        name = _env_name(info)
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"{name} must be a whole number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        if value < minimum:
            raise ValueError(f"{name} must be {bound}, got {value}")
        return value

    return BeforeValidator(parse)


def _flag(value: object, info: ValidationInfo) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{_env_name(info)} must be true or false, got {value!r}")


def _optional_text(value: object) -> object:
    return value.strip() or None if isinstance(value, str) else value


def _queue_names(value: object) -> tuple[str, ...]:
    names = [part.strip() for part in value.split(",")] if isinstance(value, str) else list(_sequence(value, "QUEUES"))
    names = [name for name in names if name]
    for name in names:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"QUEUES holds an invalid queue name {name!r}: use letters, digits, - and _")
    if not names:
        raise ValueError("QUEUES must name at least one queue")
    return tuple(names)


def _generator_names(setting: str) -> BeforeValidator:
    def parse(value: object) -> tuple[str, ...] | None:
        if value is None:
            return None
        names = (
            [part.strip() for part in value.split(",")] if isinstance(value, str) else list(_sequence(value, setting))
        )
        names = [name for name in names if name]
        for name in names:
            if not isinstance(name, str) or not GENERATOR_NAME.match(name):
                raise ValueError(
                    f"{setting} holds an invalid generator name {name!r}: use lowercase letters, digits, -"
                )
        if not names:
            raise ValueError(f"{setting} must name at least one generator")
        return tuple(dict.fromkeys(names))

    return BeforeValidator(parse)


def _sentinels(value: object) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, str):
        return tuple((str(host), int(port)) for host, port in _sequence(value, "REDIS_SENTINELS"))
    if not value.strip():
        return ()
    addresses = []
    for item in (part.strip() for part in value.split(",")):
        host, separator, port = item.rpartition(":")
        if not separator or not host or not port.isdigit() or not 0 < int(port) <= MAX_PORT:
            raise ValueError(f"REDIS_SENTINELS must be host:port[,host:port...], got {item!r}")
        addresses.append((host, int(port)))
    return tuple(addresses)


def _sequence(value: object, name: str) -> Sequence[Any]:
    if not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a comma-separated list, got {value!r}")
    return value


def _text_or_loopback(value: object) -> object:
    return _optional_text(value) or "127.0.0.1"


def _redis_url(value: object) -> object:
    value = _optional_text(value)
    if isinstance(value, str) and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {value!r}")
    return value


def _broker_url(value: object) -> object:
    value = _optional_text(value)
    if isinstance(value, str) and not value.startswith(("amqp://", "amqps://")):
        raise ValueError("BROKER_URL must start with amqp:// or amqps://, got a URL with another scheme")
    return value


def _amqp_queue(value: object) -> object:
    if not isinstance(value, str):
        return value
    name = value.strip()
    if len(name) > MAX_AMQP_QUEUE_NAME or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"AMQP_QUEUE must be up to 200 letters, digits, '.', '-' and '_', got {value!r}")
    if name.startswith("amq."):
        raise ValueError(f"AMQP_QUEUE must not start with 'amq.' (RabbitMQ reserves it), got {value!r}")
    return name


def _log_level(value: object) -> str:
    level = value.strip().upper() if isinstance(value, str) else value
    if level not in LOG_LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


def _liveness_timeout(value: int) -> int:
    # Workers beat every third of the timeout; below 3 s a busy host could miss beats and be declared dead.
    if value < MIN_LIVENESS_TIMEOUT:
        raise ValueError(f"WORKER_LIVENESS_TIMEOUT must be at least 3 seconds, got {value}")
    return value


def _chart_url_max_bytes(value: int) -> int:
    if not MIN_CHART_URL_BYTES <= value <= MAX_CHART_URL_BYTES:
        raise ValueError(
            f"CHART_URL_MAX_BYTES must be {MIN_CHART_URL_BYTES}..{MAX_CHART_URL_BYTES} "
            f"(gunicorn's request line limit is {LIMIT_REQUEST_LINE} bytes), got {value}"
        )
    return value


PositiveInt = Annotated[int, _whole_number(minimum=1)]
NonNegativeInt = Annotated[int, _whole_number(minimum=0)]
Flag = Annotated[bool, BeforeValidator(_flag)]
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]


class Settings(BaseSettings):
    """Everything plotjobs can be told from the environment; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        frozen=True,
        alias_generator=AliasGenerator(validation_alias=str.upper),
        validate_by_name=True,
        validate_by_alias=True,
        case_sensitive=True,
    )

    redis_url: Annotated[str | None, BeforeValidator(_redis_url)] = None
    queues: Annotated[tuple[str, ...], BeforeValidator(_queue_names)] = PRIORITIES
    # The allow-list of generators served (plotjobs.generators); each must be installed.
    generators: Annotated[tuple[str, ...], _generator_names("GENERATORS")] = BUILTIN_GENERATORS
    # The generators a worker renders (None: all of GENERATORS); it listens only on their queues.
    worker_generators: Annotated[tuple[str, ...] | None, _generator_names("WORKER_GENERATORS")] = None
    result_ttl: PositiveInt = 3600
    failure_ttl: PositiveInt = 86400
    job_timeout: PositiveInt = 60
    # Room for 2,000,000 points as JSON, or a CSV of a million rows: large data leaves the job apart from it.
    max_request_bytes: PositiveInt = 64 * 1024 * 1024
    secret_key: str = Field(default_factory=lambda: secrets.token_hex(32), repr=False)
    port: PositiveInt = 8000
    log_level: Annotated[str, BeforeValidator(_log_level)] = "INFO"
    redis_sentinels: Annotated[tuple[tuple[str, int], ...], BeforeValidator(_sentinels)] = ()
    redis_sentinel_master: OptionalText = None
    # 0: a job is acknowledged once the master has it (replication is asynchronous). N: only once
    # N replicas have it too (WAIT, in the enqueue's pipeline), else the API answers 503.
    redis_min_replicas: NonNegativeInt = 0
    # Below the Redis client's socket timeout, or the client gives up first and the answer is a plain outage.
    redis_min_replicas_timeout_ms: PositiveInt = Field(default=1000, lt=REDIS_SOCKET_TIMEOUT_SECONDS * 1000)
    dashboard_username: OptionalText = None
    dashboard_password: OptionalText = Field(default=None, repr=False)
    dashboard_allow_delete: Flag = False
    broker_url: Annotated[str | None, BeforeValidator(_broker_url)] = Field(default=None, repr=False)
    amqp_queue: Annotated[str, BeforeValidator(_amqp_queue)] = "plotjobs.render"
    redis_max_connections: PositiveInt = 50
    worker_processes: PositiveInt = 1
    worker_max_jobs: PositiveInt = 500
    worker_max_memory_mb: PositiveInt = 512
    worker_liveness_timeout: Annotated[PositiveInt, AfterValidator(_liveness_timeout)] = 15
    sweep_interval: PositiveInt = 5
    lost_job_retries: NonNegativeInt = 2
    max_queue_depth: PositiveInt = 1000
    max_jobs_per_client: PositiveInt = 20
    proxy_hops: NonNegativeInt = 0
    # Gunicorn's own settings (plotjobs.web.gunicorn_config); GUNICORN_BIND, when set, wins over PORT.
    web_concurrency: PositiveInt = Field(default_factory=lambda: min(multiprocessing.cpu_count() * 2, 8))
    gunicorn_threads: PositiveInt = 600
    gunicorn_worker_connections: PositiveInt = 1000
    gunicorn_timeout: PositiveInt = 30
    gunicorn_graceful_timeout: PositiveInt = 30
    gunicorn_keepalive: PositiveInt = 5
    gunicorn_bind: OptionalText = None
    gunicorn_access_log: OptionalText = None
    forwarded_allow_ips: Annotated[str, BeforeValidator(_text_or_loopback)] = "127.0.0.1"
    # prometheus_client reads this variable itself, at import; gunicorn sets it (to a private directory
    # when unset) before its workers start. Unset in a single process: the request metrics stay in memory.
    prometheus_multiproc_dir: OptionalText = None
    # Chart URLs (plotjobs.web.embed, docs/embedding.md).
    embed_wait_seconds: NonNegativeInt = 10
    chart_url_ttl: PositiveInt = 365 * 24 * 3600
    chart_url_secret: OptionalText = Field(default=None, repr=False)
    chart_url_max_bytes: Annotated[PositiveInt, AfterValidator(_chart_url_max_bytes)] = MAX_CHART_URL_BYTES
    chart_url_max_renders: PositiveInt = 50
    chart_url_stores_per_hour: PositiveInt = 100

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what the caller passes: ``from_env`` hands over the environment it was given."""
        return (init_settings,)

    @model_validator(mode="after")
    def _settings_that_go_together(self) -> Settings:
        if self.redis_sentinels and self.redis_sentinel_master is None:
            raise ValueError("REDIS_SENTINEL_MASTER must name the monitored master when REDIS_SENTINELS is set")
        if self.redis_sentinel_master is not None and not self.redis_sentinels:
            raise ValueError("REDIS_SENTINEL_MASTER needs REDIS_SENTINELS (host:port of the sentinels)")
        if (self.dashboard_username is None) != (self.dashboard_password is None):
            raise ValueError(
                "DASHBOARD_USERNAME and DASHBOARD_PASSWORD must be set together (or neither, to turn it off)"
            )
        if self.worker_generators is not None and not set(self.worker_generators) <= set(self.generators):
            extra = ", ".join(name for name in self.worker_generators if name not in self.generators)
            raise ValueError(f"WORKER_GENERATORS names {extra}, not in GENERATORS ({', '.join(self.generators)})")
        if self.embed_wait_seconds >= self.gunicorn_timeout:
            raise ValueError(
                f"EMBED_WAIT_SECONDS ({self.embed_wait_seconds}) must be below GUNICORN_TIMEOUT "
                f"({self.gunicorn_timeout}): gunicorn would kill the worker of a waiting chart request"
            )
        return self

    @property
    def recovery_bound(self) -> int:
        """Seconds after a worker's death by which its job is requeued or failed (while any sweeper runs)."""
        return self.worker_liveness_timeout + self.sweep_interval

    @property
    def default_queue(self) -> str:
        """The queue a job goes to when the request does not choose one: ``default`` if served, else the first."""
        return DEFAULT_PRIORITY if DEFAULT_PRIORITY in self.queues else self.queues[0]

    @property
    def rendered_here(self) -> tuple[str, ...]:
        """The generators a worker with these settings renders: WORKER_GENERATORS, else all of GENERATORS."""
        return self.worker_generators if self.worker_generators is not None else self.generators

    @property
    def dashboard_enabled(self) -> bool:
        """rq-dashboard is served only when both of its credentials are configured."""
        return bool(self.dashboard_username and self.dashboard_password)

    def replace(self, **changes: object) -> Settings:
        """A copy with some settings changed, checked like the original (tests use it)."""
        return _checked(lambda: type(self)(**{**dict(self), **changes}))


def _checked(build: Callable[[], Settings]) -> Settings:
    try:
        return build()
    except ValidationError as error:
        raise ConfigError(_reason(error)) from None


def _reason(error: ValidationError) -> str:
    """The first problem, worded to name its environment variable."""
    problem = error.errors(include_url=False)[0]
    cause = problem.get("ctx", {}).get("error")
    if isinstance(cause, ValueError):
        return str(cause)
    name = str(problem["loc"][0]).upper() if problem["loc"] else "a setting"
    return f"{name}: {problem['msg']}"


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the settings in ``environ`` (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    given: dict[str, Any] = {
        name.upper(): env[name.upper()]
        for name in Settings.model_fields
        if name.upper() in env and env[name.upper()].strip()
    }
    return _checked(lambda: Settings(**given))


def log_level_from_env(environ: Mapping[str, str] | None = None) -> str:
    """LOG_LEVEL alone, for processes that run our code without our settings (a stock ``rq worker``)."""
    raw = (os.environ if environ is None else environ).get("LOG_LEVEL") or "INFO"
    try:
        return _log_level(raw)
    except ValueError as error:
        raise ConfigError(str(error)) from None
