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


# Playwright's own driver (a node binary in its wheel) links libatomic, which minimal Debian lacks.
DEBIAN_PACKAGES = ("chromium", "libatomic1")


class ChromiumMissing(RuntimeError):
    """Debian's chromium is not installed and cannot be installed from here."""


def _libatomic_present() -> bool:
    found = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False, timeout=30).stdout
    return "libatomic.so.1" in found


def ensure_chromium() -> str:
    """The path of Debian's chromium, installing it (and what Playwright needs) first when missing and we may."""
    if CHROMIUM.is_file() and _libatomic_present():
        return str(CHROMIUM)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        packages = " ".join(DEBIAN_PACKAGES)
        raise ChromiumMissing(f"the browser tests need Debian's packages {packages}: apt-get install {packages}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *DEBIAN_PACKAGES], check=True, env=env, timeout=900)
    if not CHROMIUM.is_file():
        raise ChromiumMissing(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return str(CHROMIUM)
