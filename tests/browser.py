"""Debian's Chromium for the browser tests: found, or installed through apt when we are root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Quiet, offline, no sandbox (tests may run as root in a container).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ChromiumMissing(RuntimeError):
    """Debian's chromium is not installed and cannot be installed from here."""


def ensure_chromium() -> str:
    """The path of Debian's chromium, installing the package first when it is missing and we may."""
    if CHROMIUM.is_file():
        return str(CHROMIUM)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ChromiumMissing(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900)
    if not CHROMIUM.is_file():
        raise ChromiumMissing(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return str(CHROMIUM)
