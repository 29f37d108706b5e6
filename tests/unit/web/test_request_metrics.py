"""Request metrics stay in the web process: counted per endpoint and method, never written to Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, values
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from redis import Redis
from redis.connection import Encoder, PythonRespSerializer

from plotjobs.config import ConfigError, Settings
from plotjobs.web import create_app, metrics_directory
from plotjobs.web.request_metrics import REQUEST_BUCKETS, REQUEST_DURATION, RequestMetrics
from tests.unit.web.test_operations import submit

BOUNDS = [*(str(bound) for bound in REQUEST_BUCKETS), "+Inf"]


def request_samples(text: str) -> list[Sample]:
    """Every sample of the request histogram in a scrape."""
    families = [family for family in text_string_to_metric_families(text) if family.name == REQUEST_DURATION]
    assert len(families) == 1 and families[0].type == "histogram"
    return families[0].samples


def series(samples: list[Sample], suffix: str, method: str, endpoint: str) -> dict[str, float]:
    """The values of one kind of sample (``_bucket`` by ``le``, or ``_count``/``_sum``) for one method and endpoint."""
    found = {
        sample.labels.get("le", ""): sample.value
        for sample in samples
        if sample.name == REQUEST_DURATION + suffix
        and (sample.labels["method"], sample.labels["endpoint"]) == (method, endpoint)
    }
    assert found, f"no {suffix} for {method} {endpoint}"
    return found


def test_requests_are_counted_per_endpoint_and_method_with_the_buckets(client: FlaskClient) -> None:
    for _ in range(2):
        assert client.get("/readyz").status_code == 200
    submit(client)
    assert client.get("/no/such/page").status_code == 404
    assert client.put("/readyz").status_code == 405
    assert client.get("/healthz").status_code == 200

    text = client.get("/metrics").text
    samples = request_samples(text)
    buckets = series(samples, "_bucket", "GET", "monitoring.readyz")
    assert list(buckets) == BOUNDS
    assert buckets["+Inf"] == 2 and list(buckets.values()) == sorted(buckets.values())
    assert series(samples, "_count", "GET", "monitoring.readyz") == {"": 2}
    assert series(samples, "_sum", "GET", "monitoring.readyz")[""] > 0
    assert series(samples, "_count", "POST", "api.submit_job") == {"": 1}
    # No route, or not this method: one shared label, whatever the path.
    assert series(samples, "_count", "ANY", "unmatched") == {"": 2}
    assert not [sample for sample in samples if sample.labels["endpoint"] == "monitoring.healthz"]
    assert "_created" not in text


def test_each_duration_lands_in_its_bucket() -> None:
    request_metrics = RequestMetrics(None)
    for seconds in (0.003, 0.005, 0.03, 0.7, 20.0):
        request_metrics.observe("GET", "api.status", seconds)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(request_metrics.collector())
    samples = next(iter(registry.collect())).samples
    cumulative = series(samples, "_bucket", "GET", "api.status")
    assert cumulative == {
        "0.005": 2, "0.01": 2, "0.025": 2, "0.05": 3, "0.1": 3, "0.25": 3, "0.5": 3, "1.0": 4,
        "2.5": 4, "5.0": 4, "10.0": 4, "+Inf": 5,
    }  # fmt: skip
    assert series(samples, "_count", "GET", "api.status") == {"": 5}
    assert series(samples, "_sum", "GET", "api.status")[""] == pytest.approx(20.738)


def test_each_app_counts_its_own_requests(settings: Settings, redis_connection: Redis) -> None:
    first, second = (create_app(settings, redis=redis_connection).test_client() for _ in range(2))
    first.get("/readyz")
    first.get("/readyz")
    second.get("/readyz")
    assert series(request_samples(first.get("/metrics").text), "_count", "GET", "monitoring.readyz") == {"": 2}
    assert series(request_samples(second.get("/metrics").text), "_count", "GET", "monitoring.readyz") == {"": 1}


class RecordingSerializer(PythonRespSerializer):
    """Packs commands as redis-py does, and keeps every command it packs (pipelined ones too)."""

    def __init__(self) -> None:
        super().__init__(6000, Encoder("utf-8", "strict", decode_responses=False).encode)
        self.commands: list[tuple[Any, ...]] = []

    def pack(self, *args: Any) -> Any:
        """Record the command, then pack it."""
        self.commands.append(args)
        return super().pack(*args)


@pytest.fixture
def recorded(redis_url: str, redis_connection: Redis) -> Iterator[tuple[FlaskClient, RecordingSerializer]]:
    """A test client whose app sends Redis every command through a recorder."""
    serializer = RecordingSerializer()
    connection = Redis.from_url(redis_url, command_packer=serializer)
    try:
        yield create_app(Settings(redis_url=redis_url, secret_key="x"), redis=connection).test_client(), serializer
    finally:
        connection.close()


def test_a_request_writes_nothing_to_redis_for_its_metrics(recorded: tuple[FlaskClient, RecordingSerializer]) -> None:
    client, serializer = recorded
    job_id = submit(client)
    serializer.commands.clear()
    assert client.get("/no/such/page").status_code == 404
    assert serializer.commands == []
    assert client.get(f"/api/jobs/{job_id}").status_code == 200
    status_read = list(serializer.commands)
    assert status_read, "the status read itself reads Redis"
    touched = [str(argument) for command in status_read for argument in command]
    assert not [argument for argument in touched if "metrics" in argument], status_read
    scrape = client.get("/metrics").text
    assert series(request_samples(scrape), "_count", "GET", "api.job_status") == {"": 1}
    assert series(request_samples(scrape), "_count", "ANY", "unmatched") == {"": 1}


def test_a_multiprocess_directory_must_come_from_the_environment(
    settings: Settings, redis_connection: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(ConfigError, match="must be set in the environment"):
        create_app(settings.replace(prometheus_multiproc_dir=str(tmp_path)), redis=redis_connection)
    missing = str(tmp_path / "missing")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", missing)
    with pytest.raises(ConfigError, match="existing directory"):
        create_app(settings.replace(prometheus_multiproc_dir=missing), redis=redis_connection)


def test_a_scrape_adds_up_the_files_of_every_process_the_exited_ones_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    by_process = {}
    for pid, seconds in ((101, 0.02), (102, 0.2)):
        # What each gunicorn worker does after its fork: the values go to files named after its pid.
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda pid=pid: pid))
        by_process[pid] = RequestMetrics(str(tmp_path))
        by_process[pid].observe("GET", "api.status", seconds)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["histogram_101.db", "histogram_102.db"]
    metrics_directory.forget_process(101, str(tmp_path))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(by_process[102].collector())
    samples = next(iter(registry.collect())).samples
    assert series(samples, "_count", "GET", "api.status") == {"": 2}
    assert series(samples, "_sum", "GET", "api.status")[""] == pytest.approx(0.22)
    buckets = series(samples, "_bucket", "GET", "api.status")
    assert (buckets["0.01"], buckets["0.025"], buckets["0.1"], buckets["0.25"], buckets["+Inf"]) == (0, 1, 1, 2, 2)
    values.close_all_multiprocess_files()
