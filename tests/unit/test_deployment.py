"""Docker cannot run here, so the compose file, Dockerfile and Procfile are checked as files."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import PROJECT_ROOT


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    return document


def test_compose_has_the_services(compose: dict[str, Any]) -> None:
    assert {"redis", "web", "worker", "rabbitmq", "bridge"} <= set(compose["services"])


def test_every_service_is_healthchecked_and_waits_for_healthy_redis(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "bridge":
            # The bridge serves no port and reconnects by itself; its container restarts if it exits.
            assert service["restart"] == "unless-stopped"
            continue
        assert service["healthcheck"]["test"], name
        if name in {"web", "worker"}:
            assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}, name
    assert "/readyz" in " ".join(compose["services"]["web"]["healthcheck"]["test"])
    assert compose["services"]["worker"]["healthcheck"]["test"] == [
        "CMD",
        "plotjobs",
        "workers",
        "--this-host",
        "--check",
    ]


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def test_workers_stop_gracefully_for_longer_than_a_job_may_run(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    job_timeout = int(re.fullmatch(r"\$\{JOB_TIMEOUT:-(\d+)\}", worker["environment"]["JOB_TIMEOUT"]).group(1))
    assert _seconds(worker["stop_grace_period"]) > job_timeout


def test_redis_never_evicts_jobs(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_credentials_come_from_an_ignored_env_file(compose: dict[str, Any]) -> None:
    for name in ("web", "worker"):
        assert compose["services"][name]["env_file"] == [{"path": ".env", "required": False}]
    example = (PROJECT_ROOT / ".env.example").read_text()
    assert "DASHBOARD_USERNAME=" in example and "DASHBOARD_PASSWORD=" in example
    for ignore_file in (".gitignore", ".dockerignore"):
        assert ".env" in (PROJECT_ROOT / ignore_file).read_text().splitlines()
    tracked = subprocess.run(
        ["git", "ls-files", ".env"], check=True, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=30
    )
    assert tracked.stdout.strip() == ""


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
    # rq-dashboard is part of the web app (/rq), not a process of its own.
    assert "dashboard" not in compose["services"]


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
    entries = dict(line.split(":", 1) for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert shlex.split(entries["web"])[0] == "gunicorn" and "wsgi:app" in entries["web"]
    assert shlex.split(entries["worker"]) == ["python", "worker.py"]
    assert shlex.split(entries["bridge"]) == ["plotjobs", "amqp-bridge", "--idle-without-broker"]


def test_requirements_are_exact_pins() -> None:
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (PROJECT_ROOT / name).read_text().splitlines():
            pin = line.strip()
            if pin and not pin.startswith(("#", "-r")):
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", pin), f"{name}: {pin}"


def _gunicorn_settings(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import json, plotjobs.web.gunicorn_config as c; print(json.dumps([c.bind, c.workers, c.threads, c.timeout]))"
    )
    environ = {key: value for key, value in os.environ.items() if key not in {"PORT", "GUNICORN_BIND"}}
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**environ, **env}, timeout=60)  # fmt: skip


def test_gunicorn_settings_come_from_the_environment() -> None:
    read = _gunicorn_settings(PORT="9100", WEB_CONCURRENCY="3", GUNICORN_THREADS="2", GUNICORN_TIMEOUT="45")
    assert json.loads(read.stdout) == ["0.0.0.0:9100", 3, 2, 45]
    assert (PROJECT_ROOT / "gunicorn.conf.py").read_text().count("from plotjobs.web.gunicorn_config import *") == 1


def test_gunicorn_sets_the_metrics_directory_before_prometheus_client_loads(tmp_path: Path) -> None:
    code = (
        "import json, os, runpy, sys, plotjobs.web.gunicorn_config as c; hooks = runpy.run_path('gunicorn.conf.py');"
        " print(json.dumps([os.environ['PROMETHEUS_MULTIPROC_DIR'], 'prometheus_client' in sys.modules,"
        " hooks['on_starting'] is c.on_starting, hooks['child_exit'] is c.child_exit]))"
    )
    configured = tmp_path / "metrics"
    read = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(configured)}, timeout=60)  # fmt: skip
    assert json.loads(read.stdout) == [str(configured), False, True, True], read.stderr
    assert configured.is_dir()


def test_a_bad_gunicorn_setting_is_a_message_not_a_traceback() -> None:
    refused = _gunicorn_settings(WEB_CONCURRENCY="lots")
    assert refused.returncode != 0
    assert "WEB_CONCURRENCY must be a whole number" in refused.stderr and "Traceback" not in refused.stderr


def test_gunicorn_refuses_bad_plotjobs_settings_before_booting_workers() -> None:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("DASHBOARD_")}
    command = [sys.executable, "-m", "gunicorn", "-c", "python:plotjobs.web.gunicorn_config"]
    refused = subprocess.run(
        [*command, "--bind", "127.0.0.1:0", "wsgi:app"],
        check=False, capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT,
        env={**environ, "DASHBOARD_USERNAME": "ops"},
    )  # fmt: skip
    assert refused.returncode != 0
    assert "plotjobs cannot start: DASHBOARD_USERNAME and DASHBOARD_PASSWORD" in refused.stderr
    assert "Traceback" not in refused.stderr
