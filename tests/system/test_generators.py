"""Generators that plug in: a third-party package served end to end once allow-listed, isolated renders killed.

The package (tests/fixtures/thirdparty_generator) is installed into a virtualenv of its own; the
web app (a real gunicorn), the workers and the command line run with that environment's Python,
against the real Redis.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from redis import Redis
from redis.client import PubSub

from plotjobs.queue import jobs
from plotjobs.queue.isolation import ORPHAN_GRACE_SECONDS
from tests.support.amqp import running_bridge
from tests.support.processes import PROJECT_ROOT, running_gunicorn, running_worker, service_env
from tests.support.thirdparty import BUSY, CRASH, STRIPES, install_thirdparty
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TERMINAL = {"finished", "failed", "canceled", "stopped"}
FAST = {"WORKER_LIVENESS_TIMEOUT": "3", "SWEEP_INTERVAL": "1"}
EVERY = f"chart,{STRIPES},{BUSY},{CRASH}"
SPEC = {"generator": STRIPES, "colours": ["#112233", "#445566"], "width": 200, "height": 50}


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of an environment with the third-party generator package installed."""
    return install_thirdparty(tmp_path_factory.mktemp("thirdparty"))


@contextmanager
def web(python: Path, redis_url: str, **env: str) -> Iterator[str]:
    with running_gunicorn(redis_url, workers=1, gunicorn=(str(python), "-m", "gunicorn"), **env) as base_url:
        yield base_url


def worker_command(python: Path, name: str) -> list[str]:
    return [str(python), "-m", "plotjobs", "worker", "--single", "--name", name]


@contextmanager
def events(connection: Redis) -> Iterator[PubSub]:
    """Every job's progress events, subscribed to before anything is submitted."""
    updates = connection.pubsub()
    updates.psubscribe("plotjobs:events:*")
    wait_for(lambda: updates.get_message(timeout=0.1), what="the subscription")
    try:
        yield updates
    finally:
        updates.close()


def stages(updates: PubSub, job_id: str) -> list[tuple[float, str]]:
    """The (progress, stage) of each event published so far for ``job_id``, in order."""
    seen = []
    while (message := updates.get_message(timeout=0.5)) is not None:
        event = json.loads(message["data"])
        if event["id"] == job_id:
            seen.append((event["progress"], event["stage"]))
    return seen


def saw_stage(updates: PubSub, job_id: str, stage: str) -> bool:
    """Whether the next event (if one comes within half a second) is ``job_id`` reaching ``stage``."""
    message = updates.get_message(timeout=0.5)
    if message is None:
        return False
    event = json.loads(message["data"])
    return bool(event["id"] == job_id and event["stage"] == stage)


def submit(base_url: str, document: dict[str, Any]) -> requests.Response:
    return requests.post(f"{base_url}/api/jobs", json=document, timeout=30)


def wait_for_end(base_url: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = requests.get(f"{base_url}/api/jobs/{job_id}", timeout=10).json()
        return status if status["state"] in TERMINAL else None

    return wait_for(ended, timeout=timeout, what=f"job {job_id} to end")


def children(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Every process the worker started that is still there, zombies included."""
    return psutil.Process(process.pid).children(recursive=True)


def test_a_thirdparty_generator_is_refused_until_allow_listed_then_served_end_to_end(
    python: Path, redis_url: str, redis_connection: Redis, tmp_path: Path
) -> None:
    # Installed but not allow-listed: the web app refuses it, naming the field, and does not list it.
    with web(python, redis_url) as base_url:
        refused = submit(base_url, SPEC)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "generator" and "stripes" in refused.json()["message"]
        listed = requests.get(f"{base_url}/api/generators", timeout=10).json()
        assert [item["name"] for item in listed["generators"]] == ["chart", "vega-lite", "report"]

    with web(python, redis_url, GENERATORS=f"chart,{STRIPES}") as base_url:
        listed = requests.get(f"{base_url}/api/generators", timeout=10).json()
        assert [item["name"] for item in listed["generators"]] == ["chart", STRIPES]
        stripes = listed["generators"][1]
        assert stripes["formats"] == {"svg": "image/svg+xml", "txt": "text/plain"}
        assert "colours" in stripes["schema"]["properties"] and stripes["title"] == "Stripes"
        document = requests.get(f"{base_url}/api/openapi.json", timeout=10).json()
        assert "StripesSpecSubmission" in document["components"]["schemas"]

        # A worker that does not serve it refuses the job, with the reason on the failed job.
        accepted = submit(base_url, {**SPEC, "width": 201})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        assert jobs.fetch(redis_connection, job_id).origin == f"{STRIPES}.default"
        stock = [str(python), "-m", "rq.cli", "worker", "-u", redis_url, "-S", "json", "-j"]
        stock += ["plotjobs.queue.jobs.PlotJob", "--burst", f"{STRIPES}.default"]
        subprocess.run(stock, env=service_env(redis_url, GENERATORS="chart"), timeout=120, check=True, cwd=PROJECT_ROOT)
        status = wait_for_end(base_url, job_id)
        assert status["state"] == "failed" and "GeneratorNotServed" in status["error"], status
        assert f"does not render generator '{STRIPES}'" in status["error"]

        # Allow-listed on both sides: rendered, with its stages in order, and fetched.
        env = {"GENERATORS": f"chart,{STRIPES}"}
        with (
            events(redis_connection) as updates,
            running_worker(redis_url, redis_connection, command=worker_command(python, "stripes-1"), **env),
        ):
            answer = submit(base_url, {**SPEC, "rounds": 5})
            assert answer.status_code == 202, answer.text
            status = wait_for_end(base_url, answer.json()["id"])
            assert status["state"] == "finished", status
            seen = stages(updates, answer.json()["id"])
            result = requests.get(f"{base_url}{answer.json()['result_url']}", timeout=10)

            # From the command line too, with the generator named by --generator.
            spec_file = tmp_path / "spec.json"
            spec_file.write_text(json.dumps({"colours": ["#abcdef"], "format": "txt"}))
            output = tmp_path / "stripes.txt"
            cli = [str(python), "-m", "plotjobs", "submit", str(spec_file), "--generator", STRIPES]
            cli += ["--server", base_url, "-o", str(output)]
            done = subprocess.run(cli, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=False)
            assert done.returncode == 0, done.stderr
            assert output.read_text() == "#abcdef"
            listing = subprocess.run(
                [str(python), "-m", "plotjobs", "generators", "--server", base_url],
                capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT, check=False,
            )  # fmt: skip
            assert listing.returncode == 0 and STRIPES in listing.stdout and "svg" in listing.stdout, listing

    assert result.status_code == 200 and result.headers["Content-Type"].startswith("image/svg+xml")
    assert result.content.startswith(b"<svg") and b'fill="#445566"' in result.content
    assert result.headers["Content-Disposition"] == f'inline; filename="{STRIPES}-{answer.json()["id"]}.svg"'
    names = [stage for _, stage in seen]
    assert names[0] == "started" and names[-2:] == ["storing", "done"], names
    assert names[1:6] == [f"round {number} of 5" for number in range(1, 6)] and "drawing" in names
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions)


def test_bad_specs_are_refused_naming_the_field_and_identical_specs_share_a_job(
    python: Path, redis_url: str, redis_connection: Redis
) -> None:
    env = {"GENERATORS": f"chart,{STRIPES}"}
    with web(python, redis_url, **env) as base_url:
        for document, field in [
            ({**SPEC, "colours": ["red"]}, "colours.0"),
            ({**SPEC, "width": 5}, "width"),
            ({**SPEC, "title": "no such field"}, "title"),
            ({**SPEC, "generator": "nope"}, "generator"),
            ({**SPEC, "generator": None}, "generator"),
            ({**SPEC, "generator": BUSY}, "generator"),  # installed, not allow-listed
        ]:
            answer = submit(base_url, document)
            assert answer.status_code == 422, (document, answer.text)
            assert answer.json()["field"] == field, answer.json()

        first, second = submit(base_url, SPEC).json(), submit(base_url, SPEC).json()
        assert second["id"] == first["id"] and second["reused"] is True
        # The same fields for the chart are another spec: the generator's name is part of its identity.
        with running_worker(redis_url, redis_connection, command=worker_command(python, "stripes-2"), **env):
            assert wait_for_end(base_url, first["id"])["state"] == "finished"
        again = submit(base_url, SPEC)
        assert again.status_code == 200 and again.json()["id"] == first["id"] and "file_url" in again.json()
        stored = requests.get(f"{base_url}{again.json()['file_url']}", timeout=10)
        assert stored.status_code == 200 and stored.headers["Content-Type"].startswith("image/svg+xml")
        spec = requests.get(f"{base_url}/api/jobs/{first['id']}/spec", timeout=10).json()
        assert spec["generator"] == STRIPES and spec["colours"] == SPEC["colours"]


def test_a_non_chart_job_of_a_killed_worker_is_recovered_and_finished_by_another(
    python: Path, redis_url: str, redis_connection: Redis
) -> None:
    env = {"GENERATORS": f"chart,{STRIPES}", **FAST}
    with (
        web(python, redis_url, **env) as base_url,
        events(redis_connection) as updates,
        running_worker(redis_url, redis_connection, command=worker_command(python, "doomed"), **env) as doomed,
    ):
        job_id = submit(base_url, {**SPEC, "rounds": 2000}).json()["id"]
        wait_for(lambda: saw_stage(updates, job_id, "round 1 of 2000"), timeout=30, what="the render to start")
        doomed.send_signal(signal.SIGSTOP)  # frozen mid-render: it cannot finish before the kill
        with running_worker(redis_url, redis_connection, command=worker_command(python, "rescuer"), **env):
            doomed.kill()
            doomed.wait(timeout=15)
            status = wait_for_end(base_url, job_id, timeout=90)
    assert status["state"] == "finished", status
    assert jobs.fetch(redis_connection, job_id).worker_name == "rescuer"


def test_isolated_renders_report_progress_and_are_killed_when_they_overrun_or_fail(
    python: Path, redis_url: str, redis_connection: Redis
) -> None:
    env = {"GENERATORS": EVERY}
    with (
        web(python, redis_url, **env) as base_url,
        events(redis_connection) as updates,
        running_worker(redis_url, redis_connection, command=worker_command(python, "isolating"), **env) as worker,
    ):
        # A render that finishes: its stages come from its own process, its file is stored.
        quick = submit(base_url, {"generator": BUSY, "size": 1000}).json()
        status = wait_for_end(base_url, quick["id"])
        assert status["state"] == "finished", status
        names = [stage for _, stage in stages(updates, quick["id"])]
        assert names == ["started", "spinning", "spun", "storing", "done"], names
        result = requests.get(f"{base_url}{quick['result_url']}", timeout=10)
        assert result.text == "499500\n" and result.headers["Content-Type"].startswith("text/plain")

        # One C call that holds the GIL for an hour: RQ's alarm could not stop it; the time limit kills it.
        started = time.monotonic()
        spinning = submit(base_url, {"generator": BUSY, "size": 10**12}).json()
        status = wait_for_end(base_url, spinning["id"])
        took = time.monotonic() - started
        assert status["state"] == "failed", status
        assert "RenderTimedOut" in status["error"] and "timed out after 3 s" in status["error"], status
        assert took < 20, f"the overrunning render was stopped only after {took:.1f} s"
        assert wait_for(lambda: not children(worker), what="no process left behind")

        for how, reason in [
            ("raise", "ValueError: the render failed on purpose"),
            ("memory", "MemoryError"),
            ("abort", "killed by SIGABRT"),
        ]:
            failing = submit(base_url, {"generator": CRASH, "how": how}).json()
            status = wait_for_end(base_url, failing["id"])
            assert status["state"] == "failed" and reason in status["error"], (how, status)
            assert wait_for(lambda: not children(worker), what="no process left behind")

        # Canceled while its process holds the GIL: the child is killed at once, the job stopped.
        canceled = submit(base_url, {"generator": BUSY, "size": 10**12}).json()
        wait_for(lambda: saw_stage(updates, canceled["id"], "spinning"), timeout=30, what="the render to spin")
        requests.delete(
            f"{base_url}/api/jobs/{canceled['id']}", headers={"X-Cancel-Token": canceled["cancel_token"]}, timeout=30
        )
        status = wait_for_end(base_url, canceled["id"], timeout=10)
        assert status["state"] == "stopped", status
        assert wait_for(lambda: not children(worker), what="no process left behind")

        # The worker outlived all of it and still renders.
        assert worker.poll() is None
        after = submit(base_url, {"generator": BUSY, "size": 10}).json()
        assert wait_for_end(base_url, after["id"])["state"] == "finished"


def test_workers_dedicated_to_a_generator_leave_the_chart_to_its_own_workers(
    python: Path, redis_url: str, redis_connection: Redis
) -> None:
    env = {"GENERATORS": EVERY}
    heavy_command, chart_command = worker_command(python, "heavy"), worker_command(python, "charts")
    with (
        web(python, redis_url, **env) as base_url,
        running_worker(redis_url, redis_connection, command=heavy_command, WORKER_GENERATORS=BUSY, **env),
        running_worker(redis_url, redis_connection, command=chart_command, WORKER_GENERATORS="chart", **env),
    ):
        listening = {worker["name"]: worker["queues"] for worker in jobs.worker_heartbeats(redis_connection)}
        assert listening["heavy"] == [f"{BUSY}.high", f"{BUSY}.default", f"{BUSY}.low"]
        assert listening["charts"] == ["high", "default", "low"]
        # The heavy worker is busy for its whole time limit; the chart is rendered meanwhile.
        heavy = submit(base_url, {"generator": BUSY, "size": 10**12}).json()
        wait_for(lambda: jobs.fetch(redis_connection, heavy["id"]).get_status() == "started", what="the heavy job")
        chart = submit(base_url, {"title": "not starved", "width": 300, "height": 200}).json()
        assert wait_for_end(base_url, chart["id"])["state"] == "finished"
        assert jobs.fetch(redis_connection, heavy["id"]).get_status() == "started"
        assert wait_for_end(base_url, heavy["id"])["state"] == "failed"


def ended(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_render_process_of_a_killed_worker_ends_itself_after_its_time_limit(
    python: Path, redis_url: str, redis_connection: Redis
) -> None:
    env = {"GENERATORS": EVERY}
    with (
        web(python, redis_url, **env) as base_url,
        events(redis_connection) as updates,
        running_worker(redis_url, redis_connection, command=worker_command(python, "orphaning"), **env) as worker,
    ):
        spinning = submit(base_url, {"generator": BUSY, "size": 10**12}).json()
        wait_for(lambda: saw_stage(updates, spinning["id"], "spinning"), timeout=30, what="the render to spin")
        [child] = children(worker)
        worker.kill()
        worker.wait(timeout=15)
        # Nobody is left to kill it: it ends itself, by the kernel's hand, at its time limit (3 s) and a grace.
        assert child.is_running()
        wait_for(lambda: ended(child), timeout=3 + ORPHAN_GRACE_SECONDS + 10, what="the orphaned render to end")


def test_a_thirdparty_generator_goes_through_rabbitmq_too(
    python: Path, redis_url: str, redis_connection: Redis, amqp_url: str, amqp_queue: str, tmp_path: Path
) -> None:
    env = {"GENERATORS": f"chart,{STRIPES}"}
    broker = {"BROKER_URL": amqp_url, "AMQP_QUEUE": amqp_queue}
    with (
        web(python, redis_url, **env, **broker) as base_url,
        running_worker(redis_url, redis_connection, command=worker_command(python, "stripes-3"), **env),
        running_bridge(redis_url, amqp_url, amqp_queue, tmp_path / "bridge.log", python=str(python), **env),
    ):
        answer = submit(base_url, {**SPEC, "format": "txt"})
        assert answer.status_code == 202, answer.text
        status = wait_for_end(base_url, answer.json()["id"])
        assert status["state"] == "finished", status
        result = requests.get(f"{base_url}{answer.json()['result_url']}", timeout=10)
    assert result.text == "#112233\n#445566"
