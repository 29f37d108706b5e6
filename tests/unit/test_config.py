"""Settings from the environment: defaults, conversions, and refusals of bad values."""

from __future__ import annotations

import re

import pytest

from plotjobs.config import ConfigError, from_env


def test_defaults() -> None:
    settings = from_env({})
    assert settings.redis_url is None
    assert settings.queues == ("high", "default", "low")
    assert settings.default_queue == "default"
    assert not settings.dashboard_enabled and not settings.dashboard_allow_delete
    assert settings.redis_sentinels == () and settings.redis_sentinel_master is None
    assert settings.result_ttl == 3600
    assert settings.job_timeout == 60
    assert settings.port == 8000
    assert len(settings.secret_key) >= 32


def test_values_are_read_and_converted() -> None:
    settings = from_env(
        {
            "REDIS_URL": "rediss://:pw@cache:6380/2",
            "QUEUES": "high, default ,low",
            "RESULT_TTL": "60",
            "JOB_TIMEOUT": "5",
            "MAX_REQUEST_BYTES": "1024",
            "SECRET_KEY": "s3cret",
            "PORT": "9000",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.redis_url == "rediss://:pw@cache:6380/2"
    assert settings.queues == ("high", "default", "low")
    assert settings.default_queue == "default"
    assert (settings.result_ttl, settings.job_timeout, settings.max_request_bytes) == (60, 5, 1024)
    assert settings.secret_key == "s3cret"
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"


def test_fault_handling_settings() -> None:
    defaults = from_env({})
    assert (defaults.worker_processes, defaults.worker_max_jobs, defaults.worker_max_memory_mb) == (1, 500, 512)
    assert (defaults.worker_liveness_timeout, defaults.sweep_interval, defaults.recovery_bound) == (15, 5, 20)
    assert (defaults.lost_job_retries, defaults.max_queue_depth, defaults.max_jobs_per_client) == (2, 1000, 20)
    assert defaults.proxy_hops == 0
    settings = from_env({
        "WORKER_PROCESSES": "3", "WORKER_MAX_JOBS": "10", "WORKER_MAX_MEMORY_MB": "256",
        "WORKER_LIVENESS_TIMEOUT": "6", "SWEEP_INTERVAL": "2", "LOST_JOB_RETRIES": "0",
        "MAX_QUEUE_DEPTH": "50", "MAX_JOBS_PER_CLIENT": "4", "PROXY_HOPS": "1",
    })  # fmt: skip
    assert (settings.worker_processes, settings.worker_max_jobs, settings.worker_max_memory_mb) == (3, 10, 256)
    assert (settings.worker_liveness_timeout, settings.sweep_interval, settings.recovery_bound) == (6, 2, 8)
    assert (settings.lost_job_retries, settings.max_queue_depth, settings.max_jobs_per_client) == (0, 50, 4)
    assert settings.proxy_hops == 1


def test_the_metrics_directory_is_unset_unless_named() -> None:
    assert from_env({}).prometheus_multiproc_dir is None
    assert from_env({"PROMETHEUS_MULTIPROC_DIR": "  "}).prometheus_multiproc_dir is None
    assert from_env({"PROMETHEUS_MULTIPROC_DIR": "/run/plotjobs/metrics"}).prometheus_multiproc_dir == (
        "/run/plotjobs/metrics"
    )


def test_secret_key_is_hidden_from_repr() -> None:
    assert "s3cret" not in repr(from_env({"SECRET_KEY": "s3cret"}))


def test_default_queue_is_the_first_when_default_is_not_served() -> None:
    assert from_env({"QUEUES": "renders,low"}).default_queue == "renders"


def test_dashboard_credentials_sentinels_and_flags() -> None:
    settings = from_env(
        {
            "DASHBOARD_USERNAME": "ops",
            "DASHBOARD_PASSWORD": "pa55",
            "DASHBOARD_ALLOW_DELETE": "yes",
            "REDIS_SENTINELS": "sentinel-1:26379, 10.0.0.2:26380",
            "REDIS_SENTINEL_MASTER": "mymaster",
        }
    )
    assert settings.dashboard_enabled and settings.dashboard_username == "ops"
    assert settings.dashboard_allow_delete
    assert "pa55" not in repr(settings)
    assert settings.redis_sentinels == (("sentinel-1", 26379), ("10.0.0.2", 26380))
    assert settings.redis_sentinel_master == "mymaster"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("RESULT_TTL", "soon", "whole number"),
        ("JOB_TIMEOUT", "0", "greater than 0"),
        ("PORT", "-5", "greater than 0"),
        ("REDIS_URL", "localhost:6379", "redis://"),
        ("QUEUES", "a b", "invalid queue name"),
        ("QUEUES", ",,", "at least one"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("DASHBOARD_USERNAME", "ops", "DASHBOARD_PASSWORD"),
        ("DASHBOARD_PASSWORD", "pw", "DASHBOARD_USERNAME"),
        ("DASHBOARD_ALLOW_DELETE", "maybe", "true or false"),
        ("REDIS_SENTINELS", "sentinel-1", "host:port"),
        ("REDIS_SENTINELS", "s:99999", "host:port"),
        ("REDIS_SENTINELS", "s:26379", "REDIS_SENTINEL_MASTER"),
        ("REDIS_SENTINEL_MASTER", "mymaster", "REDIS_SENTINELS"),
        ("WORKER_PROCESSES", "0", "greater than 0"),
        ("WORKER_LIVENESS_TIMEOUT", "2", "at least 3"),
        ("LOST_JOB_RETRIES", "-1", "0 or more"),
        ("PROXY_HOPS", "many", "whole number"),
        ("MAX_QUEUE_DEPTH", "0", "greater than 0"),
        ("REDIS_MIN_REPLICAS_TIMEOUT_MS", "30000", "less than 30000"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({name: value})
    assert name in str(caught.value)
    assert words in str(caught.value)


def test_the_web_app_bounds_its_redis_connections() -> None:
    from redis import BlockingConnectionPool

    from plotjobs.web import create_app
    from plotjobs.web.extension import EXTENSION_KEY

    settings = from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_MAX_CONNECTIONS": "7"})
    assert settings.redis_max_connections == 7
    pool = create_app(settings).extensions[EXTENSION_KEY]["redis"].connection_pool
    assert isinstance(pool, BlockingConnectionPool) and pool.max_connections == 7
    with pytest.raises(ConfigError, match="REDIS_MAX_CONNECTIONS"):
        from_env({"REDIS_MAX_CONNECTIONS": "0"})


def test_generators_default_to_the_builtins_and_workers_to_all_of_them() -> None:
    settings = from_env({})
    assert settings.generators == ("chart", "vega-lite", "report")
    assert settings.worker_generators is None and settings.rendered_here == ("chart", "vega-lite", "report")
    chosen = from_env({"GENERATORS": " chart, vega-lite ,chart", "WORKER_GENERATORS": "vega-lite"})
    assert chosen.generators == ("chart", "vega-lite")
    assert chosen.rendered_here == ("vega-lite",)


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"GENERATORS": "Chart"}, "GENERATORS holds an invalid generator name 'Chart'"),
        ({"GENERATORS": "a.b"}, "GENERATORS holds an invalid generator name 'a.b'"),
        ({"GENERATORS": ", ,"}, "GENERATORS must name at least one generator"),
        (
            {"GENERATORS": "chart", "WORKER_GENERATORS": "report"},
            "WORKER_GENERATORS names report, not in GENERATORS (chart)",
        ),
    ],
)
def test_bad_generator_lists_are_refused(environ: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        from_env(environ)
