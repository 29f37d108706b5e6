"""Docker cannot run here, so the compose file, Dockerfile and Procfile are checked as files."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from tests.processes import PROJECT_ROOT


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    return document


def test_compose_has_the_services(compose: dict[str, Any]) -> None:
    assert {"redis", "web", "worker", "dashboard", "rabbitmq", "bridge"} <= set(compose["services"])


def test_redis_keeps_an_append_only_file_is_healthchecked_and_private(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert "ports" not in redis
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_web_and_worker_run_our_entry_points(compose: dict[str, Any]) -> None:
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["command"][:1] == ["gunicorn"] and "wsgi:app" in web["command"]
    assert web["healthcheck"]["test"]
    assert worker["command"] == ["python", "worker.py"]
    for service in (web, worker):
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_optional_services_sit_behind_profiles(compose: dict[str, Any]) -> None:
    assert compose["services"]["rabbitmq"]["profiles"] == ["amqp"]
    dashboard = compose["services"]["dashboard"]
    assert dashboard["profiles"] == ["dashboard"]
    assert "--password" in dashboard["command"][-1]


def test_the_amqp_profile_runs_rabbitmq_with_storage_and_the_bridge(compose: dict[str, Any]) -> None:
    rabbitmq, bridge = compose["services"]["rabbitmq"], compose["services"]["bridge"]
    assert bridge["profiles"] == ["amqp"]
    assert bridge["command"] == ["plotjobs", "amqp-bridge"]
    assert bridge["environment"]["BROKER_URL"].startswith("${BROKER_URL:-amqp://")
    assert bridge["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert {name: dep["condition"] for name, dep in bridge["depends_on"].items()} == {
        "redis": "service_healthy",
        "rabbitmq": "service_healthy",
    }
    assert any(volume.endswith(":/var/lib/rabbitmq") for volume in rabbitmq["volumes"])
    assert rabbitmq["hostname"] and "ports" not in rabbitmq
    # Unset by default: the web app enqueues into RQ directly unless BROKER_URL is given.
    assert compose["services"]["web"]["environment"]["BROKER_URL"] == "${BROKER_URL:-}"


def test_dockerfile_pins_python_copies_code_and_drops_root() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base.group(1))
    assert re.search(r"^COPY \. \.", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}


def test_procfile_runs_web_and_worker() -> None:
    entries = dict(
        line.split(":", 1) for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert shlex.split(entries["web"])[0] == "gunicorn" and "wsgi:app" in entries["web"]
    assert shlex.split(entries["worker"]) == ["python", "worker.py"]
    assert shlex.split(entries["bridge"]) == ["plotjobs", "amqp-bridge"]


def test_requirements_are_exact_pins() -> None:
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (PROJECT_ROOT / name).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "-r")):
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line), f"{name}: {line}"
