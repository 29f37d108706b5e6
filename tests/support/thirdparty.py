"""A third-party generator package installed into an environment of its own, as an operator would install one.

The environment is a fresh virtualenv whose ``.pth`` file adds this interpreter's site-packages
(plotjobs and its pinned dependencies): pip installs only the fixture package, from its source
directory (its build backend, setuptools, comes from pip's configured index or cache), and records
its entry points there. Only processes started
with that environment's Python see the generators it adds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support.processes import PROJECT_ROOT

PACKAGE_SOURCE = PROJECT_ROOT / "tests" / "fixtures" / "thirdparty_generator"
# The generators the package declares.
STRIPES = "stripes"
BUSY = "stripes-busy"
CRASH = "stripes-crash"


def install_thirdparty(directory: Path) -> Path:
    """Make a virtualenv in ``directory`` with the fixture package installed; its Python."""
    venv = directory / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    shared = sysconfig.get_paths()["purelib"]
    # addsitedir also runs the .pth files there: plotjobs' own editable install among them.
    (Path(purelib) / "plotjobs-shared.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    # A copy: building in place would leave build/ and egg-info files in the source tree.
    source = shutil.copytree(PACKAGE_SOURCE, directory / "source")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    return python
