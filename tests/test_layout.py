"""Invariants of the code's shape: who may speak RQ, and nothing built at import time."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.processes import PROJECT_ROOT

# The worker runtime (workers, and recovery: the sweeper that repairs RQ's registries and queues
# after a worker dies) and the queue layer (jobs, tasks) speak RQ; nothing else does.
RQ_SPEAKERS = {"jobs", "tasks", "workers", "recovery"}


def _imported_modules(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_queue_layer_imports_rq() -> None:
    speakers = {
        path.stem
        for path in (PROJECT_ROOT / "plotjobs").glob("*.py")
        if "rq" in _imported_modules(path.read_text())
    }
    assert speakers <= RQ_SPEAKERS, speakers - RQ_SPEAKERS


def test_importing_every_module_builds_no_app_and_opens_no_connection() -> None:
    code = """
import importlib, pkgutil, socket, sys
import plotjobs
opened = []
socket.socket.connect = lambda self, *a: opened.append(a)
for module in pkgutil.iter_modules(plotjobs.__path__):
    if module.name not in {"__main__", "gunicorn_config"}:
        importlib.import_module("plotjobs." + module.name)
import flask
apps = [name for name, value in vars(sys.modules["plotjobs"]).items() if isinstance(value, flask.Flask)]
print(opened, apps)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"
