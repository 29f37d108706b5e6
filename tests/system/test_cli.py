"""The plotjobs command line against a real gunicorn, worker and Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import matplotlib.image
import pytest
from redis import Redis

from plotjobs.cli.embedded_redis import free_port
from plotjobs.queue import jobs
from tests.support.processes import running_gunicorn, running_worker
from tests.support.waiting import wait_for
from tests.unit.web.test_spec_input import SALES_CSV

pytestmark = pytest.mark.serving


def plotjobs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed command's entry point as a user would."""
    command = [sys.executable, "-m", "plotjobs", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def write_json(path: Path, document: object) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_submit_wait_status_and_csv(redis_url: str, redis_connection: Redis, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "spec.json", {"kind": "scatter", "width": 400, "height": 300, "title": "cli"})
    columns = {"kind": "line", "format": "svg", "series": [{"x_column": "day", "y_column": "north"}]}
    csv_spec = write_json(tmp_path / "columns.json", columns)
    (tmp_path / "sales.csv").write_bytes(SALES_CSV)
    pdf_spec = write_json(tmp_path / "pdf.json", {"kind": "pie", "format": "pdf", "seed": 4})

    with running_gunicorn(redis_url) as server, running_worker(redis_url, redis_connection):
        done = plotjobs("submit", spec, "--server", server, "--wait", "-o", "out.png", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert matplotlib.image.imread(tmp_path / "out.png").shape[:2] == (300, 400)
        assert "100% done" in done.stderr and "rendering" not in done.stdout
        assert "wrote out.png" in done.stdout

        with_csv = plotjobs("submit", csv_spec, "--csv", "sales.csv", "--server", server, "-o", "out.svg", cwd=tmp_path)
        assert with_csv.returncode == 0, with_csv.stderr
        assert ElementTree.parse(tmp_path / "out.svg").getroot().tag.endswith("svg")

        default_name = plotjobs("submit", pdf_spec, "--server", server, "--wait", cwd=tmp_path)
        assert default_name.returncode == 0, default_name.stderr
        written = sorted(tmp_path.glob("chart-*.pdf"))
        assert len(written) == 1 and written[0].read_bytes().startswith(b"%PDF-")

        queued = plotjobs("submit", spec, "--server", server, cwd=tmp_path)
        assert queued.returncode == 0, queued.stderr
        job_id = queued.stdout.strip()
        status = plotjobs("status", job_id, "--server", server, "--json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["id"] == job_id
        readable = plotjobs("status", job_id, "--server", server, cwd=tmp_path)
        assert readable.returncode == 0 and readable.stdout.startswith(job_id + ": ")


def test_failures_exit_non_zero_with_a_message(redis_url: str, redis_connection: Redis, tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    bad_spec = write_json(tmp_path / "bad.json", {"width": 5, "dpi": "high"})
    good_spec = write_json(tmp_path / "good.json", {})

    broken = plotjobs("submit", "broken.json", cwd=tmp_path)
    assert broken.returncode == 2 and "not valid JSON" in broken.stderr
    missing = plotjobs("submit", "nowhere.json", cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere.json" in missing.stderr
    unreachable = plotjobs("submit", good_spec, "--server", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert unreachable.returncode == 1 and "cannot reach the plotjobs server" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    not_http = plotjobs("status", "some-id", "--server", "file:///etc", cwd=tmp_path)
    assert not_http.returncode == 1 and "http:// or https://" in not_http.stderr

    failed = jobs.queue(redis_connection, "default").enqueue("plotjobs.queue.tasks.generate", "chart", {"dpi": 5})
    with running_gunicorn(redis_url) as server, running_worker(redis_url, redis_connection):
        refused = plotjobs("submit", bad_spec, "--server", server, "--wait", cwd=tmp_path)
        assert refused.returncode == 1
        assert "422" in refused.stderr and "width" in refused.stderr and "dpi" in refused.stderr
        unknown = plotjobs("status", "00000000-0000-4000-8000-000000000000", "--server", server, cwd=tmp_path)
        assert unknown.returncode == 1 and "no job" in unknown.stderr

        def failed_status() -> subprocess.CompletedProcess[str] | None:
            answer = plotjobs("status", failed.id, "--server", server, cwd=tmp_path)
            return answer if "failed" in answer.stdout else None

        status = wait_for(failed_status, timeout=30, what="the bad job to fail")
        assert status.returncode == 1 and "dpi" in status.stdout
    assert not list(tmp_path.glob("chart-*"))


def test_waiting_on_a_job_that_does_not_finish_exits_1(redis_url: str, redis_connection: Redis, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "spec.json", {"seed": 1})
    with running_gunicorn(redis_url) as server:
        command = [sys.executable, "-m", "plotjobs", "submit", spec, "--server", server, "-o", "out.png"]
        waiting = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            job_key = wait_for(lambda: next(redis_connection.scan_iter("rq:job:*"), None), what="the job")
            jobs.fetch(redis_connection, job_key.decode().split(":")[-1]).cancel()
            _, stderr = waiting.communicate(timeout=60)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.communicate(timeout=15)
    assert waiting.returncode == 1
    assert "ended canceled" in stderr
    assert not (tmp_path / "out.png").exists()


def test_submit_reads_the_spec_from_standard_input_given_a_dash(
    redis_url: str, redis_connection: Redis, tmp_path: Path
) -> None:
    spec = json.dumps({"kind": "bar", "width": 320, "height": 240, "seed": 3})
    command = [sys.executable, "-m", "plotjobs", "submit", "-", "--wait", "-o", "piped.png"]
    with running_gunicorn(redis_url) as server, running_worker(redis_url, redis_connection):
        done = subprocess.run([*command, "--server", server], input=spec, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert matplotlib.image.imread(tmp_path / "piped.png").shape[:2] == (240, 320)


def test_generators_are_listed_and_chosen_by_name(redis_url: str, redis_connection: Redis, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "spec.json", {"format": "svg", "seed": 2, "generator": "nope"})
    with running_gunicorn(redis_url, workers=1) as server:
        listed = plotjobs("generators", "--server", server, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert (
            listed.stdout == "chart\tpdf,png,svg\tChart\nvega-lite\tpdf,png,svg\tVega-Lite\nreport\tpdf,png\tReport\n"
        )
        as_json = plotjobs("generators", "--server", server, "--json", cwd=tmp_path)
        assert json.loads(as_json.stdout)[0]["schema"]["title"] == "ChartSpec"

        unknown = plotjobs("submit", spec, "--server", server, cwd=tmp_path)
        assert unknown.returncode == 1 and "422" in unknown.stderr
        assert "no generator 'nope' is served here (served: chart, vega-lite, report)" in unknown.stderr
        with running_worker(redis_url, redis_connection):
            # --generator wins over the file's own field.
            chosen = plotjobs("submit", spec, "--generator", "chart", "--server", server, "-o", "c.svg", cwd=tmp_path)
            assert chosen.returncode == 0, chosen.stderr
    assert ElementTree.parse(tmp_path / "c.svg").getroot().tag.endswith("svg")
    unreachable = plotjobs("generators", "--server", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert unreachable.returncode == 1 and "cannot reach the plotjobs server" in unreachable.stderr
