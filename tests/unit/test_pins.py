"""The suite runs on exactly the versions we ship, so a green run proves that combination."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

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
