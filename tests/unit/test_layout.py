"""The layers are the folders: what each process and layer loads at run time, and who may speak RQ.

Run with ``-s`` to see, per layer, the third-party packages its modules import (docs/design.md).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from tests.support.processes import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "plotjobs"
# Folders whose modules may import RQ: the job layer and the processes that run jobs.
RQ_FOLDERS = {"queue", "worker"}
HEAVY = ("flask", "werkzeug", "matplotlib", "rq", "redis", "pika", "rq_dashboard", "prometheus_client", "pydantic")

# What each process imports, and what it must never load.
PROCESSES = {
    "render worker": (
        "from plotjobs.worker.render_worker import build_worker; from plotjobs.worker.supervisor import Supervisor",
        {"flask", "werkzeug", "pika", "rq_dashboard"},
    ),
    "web app": (
        "from plotjobs.web import create_app; from plotjobs.config import Settings;"
        " create_app(Settings(dashboard_username='u', dashboard_password='p'))",
        {"matplotlib", "pika"},
    ),
    "amqp bridge": ("from plotjobs.broker.bridge import Bridge", {"flask", "werkzeug", "matplotlib", "rq_dashboard"}),
    "cli client": ("from plotjobs.cli import client", {"flask", "matplotlib", "rq", "redis", "pika"}),
}
LAYERS = {
    "spec": ("import plotjobs.spec.chart, plotjobs.spec.table", {"flask", "redis", "rq", "matplotlib", "pika"}),
    "generators": ("import plotjobs.generators", {"flask", "redis", "rq", "matplotlib", "pika"}),
    "render": ("import plotjobs.render.chart", {"flask", "redis", "rq", "pika"}),
    "queue": (
        "import plotjobs.queue.jobs, plotjobs.queue.dedupe, plotjobs.queue.limits, plotjobs.queue.tasks",
        {"flask", "matplotlib", "pika"},
    ),
}


def _loaded(code: str, *, full_names: bool = False) -> set[str]:
    name = "name" if full_names else "name.split('.')[0]"
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{{name} for name in sys.modules}})))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("name", sorted({**PROCESSES, **LAYERS}))
def test_each_process_and_layer_loads_only_what_it_needs(name: str) -> None:
    code, forbidden = {**PROCESSES, **LAYERS}[name]
    loaded = _loaded(code)
    print(f"\n{name}: {', '.join(package for package in HEAVY if package in loaded) or 'only the standard library'}")
    assert not loaded & forbidden, f"{name} loaded {sorted(loaded & forbidden)}"


def test_the_web_app_serves_generators_without_loading_any_render() -> None:
    """Listing, describing and accepting work for every generator loads spec models, never a renderer."""
    code = (
        "import fakeredis; from plotjobs.web import create_app; from plotjobs.config import Settings\n"
        "client = create_app(Settings(redis_url='redis://fake'), redis=fakeredis.FakeRedis()).test_client()\n"
        "assert client.get('/api/generators').status_code == 200\n"
        "assert client.get('/api/openapi.json').status_code == 200\n"
        "assert client.post('/api/jobs', json={'generator': 'chart', 'seed': 1}).status_code == 202"
    )
    loaded = _loaded(code, full_names=True)
    assert "plotjobs.generators.builtin" in loaded and "plotjobs.spec.chart" in loaded
    renders = sorted(name for name in loaded if name.startswith(("plotjobs.render", "matplotlib")))
    assert not renders, f"the web app loaded {renders}"


def _imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_job_layer_and_the_workers_import_rq() -> None:
    speakers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "rq" in _imports(path.read_text()) and path.relative_to(PACKAGE).parts[0] not in RQ_FOLDERS
    }
    assert not speakers, speakers


def test_the_job_layer_knows_no_generator_by_name() -> None:
    for folder in RQ_FOLDERS:
        for path in (PACKAGE / folder).rglob("*.py"):
            imported = {
                node.module
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.module
            }
            assert not {name for name in imported if name.startswith(("plotjobs.render", "plotjobs.spec."))} - {
                "plotjobs.spec.base"
            }, path


def test_importing_every_module_builds_no_app_and_opens_no_connection() -> None:
    code = """
import importlib, pkgutil, socket, sys
import plotjobs
opened = []
socket.socket.connect = lambda self, *a: opened.append(a)
for module in pkgutil.walk_packages(plotjobs.__path__, "plotjobs."):
    if module.name not in {"plotjobs.__main__", "plotjobs.web.gunicorn_config"}:
        importlib.import_module(module.name)
import flask, redis
built = [
    f"{module.__name__}.{name}"
    for module in list(sys.modules.values()) if getattr(module, "__name__", "").startswith("plotjobs")
    for name, value in vars(module).items() if isinstance(value, (flask.Flask, redis.Redis))
]
print(opened, built)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"
