"""The directory of gunicorn's request metrics: chosen, emptied and kept tidy by the master."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from plotjobs.config import ConfigError
from plotjobs.web import metrics_directory
from tests.support.processes import PROJECT_ROOT


def metric_file(path: Path, metric: str, value: float) -> Path:
    """A file as prometheus_client writes it, holding one sample of ``metric``."""
    mapped = MmapedDict(str(path))
    mapped.write_value(mmap_key(metric, metric, [], [], "written by the test"), value, 0.0)
    mapped.close()
    return path


def test_a_configured_directory_is_made_absolute_and_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    prepared = metrics_directory.prepare("metrics/web")
    assert prepared == str(tmp_path / "metrics" / "web") and Path(prepared).is_dir()
    assert metrics_directory.prepare(prepared) == prepared


def test_a_directory_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match=r"PROMETHEUS_MULTIPROC_DIR .* cannot be created"):
        metrics_directory.prepare(str(blocker / "metrics"))


def test_cleaning_deletes_metric_files_only(tmp_path: Path) -> None:
    metric_file(tmp_path / "counter_12.db", "old_total", 3)
    metric_file(tmp_path / "histogram_13.db", "old_seconds", 1)
    (tmp_path / "notes.txt").write_text("the operator's")
    metrics_directory.clean(str(tmp_path))
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_an_exited_process_keeps_its_counts_and_loses_its_live_gauges(tmp_path: Path) -> None:
    kept = [
        metric_file(tmp_path / "counter_7.db", "requests_total", 3),
        metric_file(tmp_path / "histogram_7.db", "seconds", 1),
        metric_file(tmp_path / "gauge_all_7.db", "last_seen", 1),
        metric_file(tmp_path / "gauge_livesum_8.db", "in_flight", 1),
    ]
    metric_file(tmp_path / "gauge_livesum_7.db", "in_flight", 2)
    metric_file(tmp_path / "gauge_livemax_7.db", "biggest", 2)
    metrics_directory.forget_process(7, str(tmp_path))
    assert sorted(tmp_path.iterdir()) == sorted(kept)


PRIVATE_DIRECTORY_LIFE = """
import os, sys
from plotjobs.web import metrics_directory
path = metrics_directory.prepare(None)
child = os.fork()
if child == 0:
    sys.exit(0)  # a gunicorn worker leaves the same way, running the exit handlers it inherited
os.waitpid(child, 0)
print(path, oct(os.stat(path).st_mode & 0o777), os.path.isdir(path))
"""


def test_a_private_directory_outlives_forked_children_and_goes_with_its_maker() -> None:
    environ = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    ran = subprocess.run([sys.executable, "-c", PRIVATE_DIRECTORY_LIFE], capture_output=True, text=True,
                         cwd=PROJECT_ROOT, env=environ, timeout=60, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    path, mode, present_after_child = ran.stdout.split()
    assert Path(path).name.startswith(metrics_directory.PRIVATE_PREFIX)
    assert (mode, present_after_child) == ("0o700", "True")
    assert not Path(path).exists()
