"""Operations against real processes: gunicorn with 2 workers, render workers, stock rq, honcho, Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Request, expect, sync_playwright
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from plotjobs.cli.embedded_redis import EmbeddedRedis, free_port, redis_server_binary
from plotjobs.config import Settings, from_env
from plotjobs.connection import redis_from_url
from plotjobs.queue import jobs
from plotjobs.web import create_app
from plotjobs.web.metrics_directory import PRIVATE_PREFIX
from plotjobs.web.request_metrics import REQUEST_DURATION
from tests.support.browser import CHROMIUM_ARGS, ChromiumMissing, ensure_chromium
from tests.support.processes import PROJECT_ROOT, running_gunicorn, running_worker, service_env, stop
from tests.support.waiting import wait_for
from tests.unit.web.test_dashboard import HOSTILE, PASSWORD, USER
from tests.unit.web.test_operations import sample

# What a worker listens to by default: each priority's queue, then the other built-in generators' of that priority.
SERVED_QUEUES = [f"{generator}{priority}" for priority in ("high", "default", "low")
                 for generator in ("", "vega-lite.", "report.")]  # fmt: skip

pytestmark = pytest.mark.serving
VENV_BIN = Path(sys.executable).parent
AUTH = (USER, PASSWORD)
# Playwright's expect() waits 5 s unless told otherwise; a loaded machine may need more.
DEADLINE_MS = 30_000


def wait_finished(base_url: str, job_id: str, states: tuple[str, ...] = ("finished",)) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status: dict[str, Any] = requests.get(f"{base_url}/api/jobs/{job_id}", timeout=5).json()
        return status if status["state"] in states else None

    return wait_for(done, timeout=30, what=f"job {job_id} to reach {states}")


@pytest.fixture
def private_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


def metrics_directory_in(log_path: Path) -> Path:
    """The directory gunicorn's master says it keeps the request metrics in."""
    for text in log_path.read_text().splitlines():
        found = re.fullmatch(r"request metrics of this gunicorn's processes are kept in (.+)",
                             json.loads(text)["message"]) if text.startswith("{") else None  # fmt: skip
        if found:
            return Path(found.group(1))
    raise AssertionError("gunicorn did not say where the request metrics are")


def test_metrics_agree_across_two_gunicorn_processes(
    redis_url: str, redis_connection: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    log_path = tmp_path / "gunicorn.log"
    with running_gunicorn(redis_url, log_path=log_path, GUNICORN_ACCESS_LOG="-") as base_url, \
            running_worker(redis_url, redis_connection):  # fmt: skip
        submitted = [requests.post(f"{base_url}/api/jobs?priority={p}", json={}, timeout=5).json()["id"]
                     for p in ("high", "default", "low", "default")]  # fmt: skip
        for job_id in submitted:
            wait_finished(base_url, job_id)
        # Several scrapes land on both gunicorn processes; each must report the same totals.
        for _ in range(8):
            scrape = requests.get(f"{base_url}/metrics", timeout=5)
            assert sample(scrape.text, "plotjobs_jobs_submitted_total", kind="line") == 4
            assert sample(scrape.text, "plotjobs_jobs_finished_total", kind="line") == 4
            assert sample(scrape.text, "plotjobs_render_duration_seconds_count", kind="line") == 4
            assert sample(scrape.text, "plotjobs_workers_alive") == 1
        counted = sample(scrape.text, "plotjobs_http_request_duration_seconds_count",
                         method="POST", endpoint="api.submit_job")  # fmt: skip
        assert counted == 4
        ready = requests.get(f"{base_url}/readyz", timeout=5).json()
        assert ready["workers"] == 1 and ready["queues"] == dict.fromkeys(SERVED_QUEUES, 0)
        # Without PROMETHEUS_MULTIPROC_DIR the master made a private one; it goes when gunicorn stops.
        private = metrics_directory_in(log_path)
        assert private.name.startswith(PRIVATE_PREFIX) and list(private.glob("histogram_*.db"))
    assert not private.exists()
    # Gunicorn's own lines, its access lines and the app's request lines: one JSON object each.
    lines = [json.loads(text) for text in log_path.read_text().splitlines() if text.strip()]
    assert any(line["logger"] == "gunicorn.error" and "Starting gunicorn" in line["message"] for line in lines)
    assert any(line["logger"] == "gunicorn.access" and line["path"] == "/metrics" for line in lines)
    assert any(line["logger"] == "plotjobs.request" and line["path"] == "/metrics" for line in lines)


def gunicorn_workers_that_served(metrics_dir: Path) -> set[int]:
    """The pids of the gunicorn processes that have counted a request (each writes its own file)."""
    return {int(path.stem.removeprefix("histogram_")) for path in metrics_dir.glob("histogram_*.db")}


def readyz_until(base_url: str, done: Callable[[], bool], what: str) -> int:
    """GET /readyz, 8 at a time on new connections, until ``done`` holds; how many were answered."""
    answered = 0

    def batch() -> bool:
        nonlocal answered
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: requests.get(f"{base_url}/readyz", timeout=5).status_code, range(8)))
        assert statuses == [200] * 8
        answered += len(statuses)
        return done()

    wait_for(batch, timeout=60, what=what)
    return answered


def readyz_count(base_url: str) -> float:
    """The request histogram's count of GET /readyz in one scrape."""
    scrape = requests.get(f"{base_url}/metrics", timeout=5)
    assert scrape.status_code == 200
    return sample(scrape.text, "plotjobs_http_request_duration_seconds_count", method="GET",
                  endpoint="monitoring.readyz")  # fmt: skip


@pytest.mark.timeout(240)
def test_request_metrics_add_up_across_gunicorn_processes_and_outlive_a_killed_one(
    redis_url: str, redis_connection: Redis, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "request-metrics"
    metrics_dir.mkdir()
    # A previous run's counts: gunicorn must start from zero, not add to them.
    stale = MmapedDict(str(metrics_dir / "histogram_1.db"))
    stale.write_value(mmap_key(REQUEST_DURATION, f"{REQUEST_DURATION}_bucket", ["method", "endpoint", "le"],
                               ["GET", "monitoring.readyz", "+Inf"], "stale"), 1000, 0.0)  # fmt: skip
    stale.close()
    log_path = tmp_path / "gunicorn.log"
    with running_gunicorn(redis_url, log_path=log_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as base_url:
        assert metrics_directory_in(log_path) == metrics_dir
        assert not (metrics_dir / "histogram_1.db").exists()
        sent = readyz_until(base_url, lambda: len(gunicorn_workers_that_served(metrics_dir)) == 2,
                            "both gunicorn processes to answer")  # fmt: skip
        first_workers = gunicorn_workers_that_served(metrics_dir)
        # Scrapes on new connections land on either process; every one adds up both.
        assert {readyz_count(base_url) for _ in range(10)} == {sent}

        victim = min(first_workers)
        # A live gauge (the kind mark_process_dead removes) left by the process about to die.
        live = MmapedDict(str(metrics_dir / f"gauge_livesum_{victim}.db"))
        live.write_value(mmap_key("plotjobs_test_in_flight", "plotjobs_test_in_flight", [], [], "test"), 3, 0.0)
        live.close()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not (metrics_dir / f"gauge_livesum_{victim}.db").exists(), timeout=30,
                 what="gunicorn's child_exit to forget the killed worker's live gauges")  # fmt: skip
        sent += readyz_until(base_url, lambda: bool(gunicorn_workers_that_served(metrics_dir) - first_workers),
                             "the replacement worker to answer")  # fmt: skip
        assert {readyz_count(base_url) for _ in range(10)} == {sent}
        assert "plotjobs_test_in_flight" not in requests.get(f"{base_url}/metrics", timeout=5).text


def test_dashboard_over_http_needs_credentials_and_refuses_state_changing_get(
    redis_url: str, redis_connection: Redis
) -> None:
    with running_gunicorn(redis_url) as base_url:
        assert requests.get(f"{base_url}/rq/", timeout=5).status_code == 404
    env = {"DASHBOARD_USERNAME": USER, "DASHBOARD_PASSWORD": PASSWORD}
    with running_gunicorn(redis_url, **env) as base_url, running_worker(redis_url, redis_connection):
        assert requests.get(f"{base_url}/rq/", timeout=5).status_code == 401
        assert requests.get(f"{base_url}/rq/", auth=(USER, "nope"), timeout=5).status_code == 401
        job_id = requests.post(f"{base_url}/api/jobs", timeout=5).json()["id"]
        wait_finished(base_url, job_id)
        queues = requests.get(f"{base_url}/rq/0/data/queues.json", auth=AUTH, timeout=5).json()["queues"]
        assert "default" in {queue["name"] for queue in queues}
        finished = requests.get(f"{base_url}/rq/0/data/jobs/default/finished/8/asc/1.json", auth=AUTH, timeout=5)
        assert [job["id"] for job in finished.json()["jobs"]] == [job_id]
        workers = requests.get(f"{base_url}/rq/0/data/workers.json", auth=AUTH, timeout=5).json()["workers"]
        assert len(workers) == 1 and workers[0]["queues"] == SERVED_QUEUES
        assert requests.get(f"{base_url}/rq/requeue/default", auth=AUTH, timeout=5).status_code == 405


def chromium() -> str:
    try:
        return ensure_chromium()
    except ChromiumMissing as error:
        pytest.fail(str(error))


def rendered_dom(url: str) -> str:
    """The page's DOM after its scripts ran (headless Chromium, Basic auth from the URL)."""
    with tempfile.TemporaryDirectory(prefix="plotjobs-chromium-") as profile:
        result = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_markup_in_a_job_does_not_run_in_the_dashboard(redis_url: str, redis_connection: Redis) -> None:
    env = {"DASHBOARD_USERNAME": USER, "DASHBOARD_PASSWORD": PASSWORD}
    with running_gunicorn(redis_url, **env) as base_url, running_worker(redis_url, redis_connection):
        titled = requests.post(f"{base_url}/api/jobs", json={"title": HOSTILE}, timeout=5).json()["id"]
        wait_finished(base_url, titled)
        failing = jobs.queue(redis_connection, "default").enqueue(
            f"plotjobs.queue.tasks.{HOSTILE}", description=jobs.job_description("chart")
        )
        wait_finished(base_url, failing.id, states=("failed",))
        authed = base_url.replace("http://", f"http://{USER}:{PASSWORD}@")
        for path in (f"/rq/0/view/job/{failing.id}", f"/rq/0/view/job/{titled}",
                     "/rq/0/view/jobs/default/failed/8/asc/1", "/rq/0/view/workers"):  # fmt: skip
            dom = rendered_dom(authed + path)
            assert "<body" in dom, dom[:500]
            assert "data-pwned" not in dom, path
            assert "<title>pwned" not in dom, path
        assert "&lt;img src=x onerror=" in rendered_dom(authed + f"/rq/0/view/job/{failing.id}")


@pytest.mark.browser
def test_dashboard_pages_run_their_own_assets_within_their_policy(redis_url: str, redis_connection: Redis) -> None:
    env = {"DASHBOARD_USERNAME": USER, "DASHBOARD_PASSWORD": PASSWORD}
    with running_gunicorn(redis_url, **env) as base_url, sync_playwright() as driver:
        job_id = requests.post(f"{base_url}/api/jobs", timeout=5).json()["id"]
        browser = driver.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=base_url, http_credentials={"username": USER, "password": PASSWORD})
            context.set_default_timeout(DEADLINE_MS)
            page = context.new_page()
            refused: list[str] = []
            page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)  # fmt: skip
            page.on("pageerror", lambda error: refused.append(f"pageerror: {error}"))
            # Every request for the dashboard's own files, with its status (0: it never got an answer).
            assets: dict[str, int] = {}

            def record_asset(request: Request) -> None:
                if "/rq/static/" in request.url:
                    response = request.response()
                    assets[request.url] = response.status if response else 0

            page.on("requestfinished", record_asset)
            page.on("requestfailed", record_asset)
            # Each page fills its table from JSON with its inline script and underscore templates.
            page.goto("/rq/")
            expect(page.locator('tr[data-role="queue"]', has_text="default")).to_be_visible(timeout=DEADLINE_MS)
            page.goto("/rq/0/view/jobs/default/queued/8/asc/1")
            expect(page.locator(f'tr[data-role="job"][data-job-id="{job_id}"]')).to_be_visible(timeout=DEADLINE_MS)
            page.goto(f"/rq/0/view/job/{job_id}")
            expect(page.locator("#job-data")).to_contain_text("Origin queue", timeout=DEADLINE_MS)
            page.goto("/rq/0/view/workers")
            expect(page.locator("#workers tbody")).to_contain_text("No workers.", timeout=DEADLINE_MS)
        finally:
            browser.close()
    assert refused == []
    loaded = {url.rsplit("/", 1)[1] for url, status in assets.items() if status == 200}
    assert {"jquery-3.5.1.min.js", "underscore-umd-min.js", "bootstrap.bundle.min.js", "bootstrap.min.css"} <= loaded
    assert set(assets.values()) == {200}, assets


def test_readyz_follows_redis_down_and_back(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedRedis(data_dir=tmp_path, port=port).start()
    try:
        app = create_app(Settings(redis_url=server.url, secret_key="x"))
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        server.stop()
        down = client.get("/readyz")
        assert down.status_code == 503 and down.get_json()["status"] == "unavailable"
        assert client.get("/healthz").status_code == 200
        server = EmbeddedRedis(data_dir=tmp_path, port=port).start()
        assert wait_for(lambda: client.get("/readyz").status_code == 200, timeout=20, what="readyz to recover")
    finally:
        server.stop()


def test_redis_with_a_password(redis_connection: Redis) -> None:
    with EmbeddedRedis(password="pa:ss w/rd") as server:
        connection = redis_from_url(server.url)
        with running_gunicorn(server.url) as base_url, running_worker(server.url, connection):
            job_id = requests.post(f"{base_url}/api/jobs", timeout=5).json()["id"]
            wait_finished(base_url, job_id)
            assert requests.get(f"{base_url}/readyz", timeout=5).json()["workers"] == 1
        wrong = create_app(Settings(redis_url=server.url.replace("pa%3Ass", "nope"), secret_key="x"))
        assert wrong.test_client().get("/readyz").status_code == 503


def test_rediss_urls_and_sentinel_settings_build_tls_clients() -> None:
    client = redis_from_url("rediss://:pw@cache.example:6380/2?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem")
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("cache.example", 6380, 2, "pw")
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_ca_certs"]) == ("required", "/etc/ca.pem")
    from plotjobs.connection import redis_from_settings

    sentinel = redis_from_settings(Settings(redis_url="rediss://:pw@ignored/3", redis_sentinels=(("s1", 26379),),
                                            redis_sentinel_master="main"))  # fmt: skip
    pool = sentinel.connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert (pool.service_name, pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == ("main", 3, "pw")


def test_stock_rq_info_and_worker_pool_run_our_jobs(redis_url: str, redis_connection: Redis) -> None:
    app = create_app(Settings(redis_url=redis_url, secret_key="x"), redis=redis_connection)
    client = app.test_client()
    ids = [client.post(f"/api/jobs?priority={p}", json={}).get_json()["id"] for p in ("high", "low")]
    info = subprocess.run([str(VENV_BIN / "rq"), "info", "-u", redis_url, "--only-queues"],
                          capture_output=True, text=True, timeout=60, env=service_env(redis_url),
                          check=False)  # fmt: skip
    assert info.returncode == 0, info.stderr
    assert re.search(r"^high\s+\|\S*\s+1,", info.stdout, re.MULTILINE), info.stdout
    assert re.search(r"^low\s+\|\S*\s+1,", info.stdout, re.MULTILINE), info.stdout
    pool = subprocess.run([str(VENV_BIN / "rq"), "worker-pool", "--burst", "-n", "2", "-u", redis_url,
                           "-S", "json", "-j", "plotjobs.queue.jobs.PlotJob", "high", "default", "low"],
                          capture_output=True, text=True, timeout=120, env=service_env(redis_url), cwd=PROJECT_ROOT,
                          check=False)  # fmt: skip
    assert pool.returncode == 0, pool.stderr[-3000:]
    for job_id in ids:
        assert client.get(f"/api/jobs/{job_id}").get_json()["state"] == "finished"
        assert client.get(f"/api/jobs/{job_id}/result").data.startswith(b"\x89PNG")


def test_stock_rq_worker_runs_our_jobs(redis_url: str, redis_connection: Redis) -> None:
    command = [str(VENV_BIN / "rq"), "worker", "-u", redis_url, "-S", "json", "-j", "plotjobs.queue.jobs.PlotJob",
               "high", "default", "low"]  # fmt: skip
    with running_gunicorn(redis_url) as base_url, running_worker(redis_url, redis_connection, command=command):
        job_id = requests.post(f"{base_url}/api/jobs", json={"format": "svg"}, timeout=5).json()["id"]
        wait_finished(base_url, job_id)
        assert b"<svg" in requests.get(f"{base_url}/api/jobs/{job_id}/result", timeout=5).content


def test_plotjobs_workers_lists_live_workers(redis_url: str, redis_connection: Redis) -> None:
    command = [sys.executable, "-m", "plotjobs", "workers"]
    idle = subprocess.run([*command, "--check"], check=False, capture_output=True, text=True,
                          timeout=60, env=service_env(redis_url), cwd=PROJECT_ROOT)  # fmt: skip
    assert idle.returncode == 1 and "0 worker(s) alive" in idle.stdout
    with running_worker(redis_url, redis_connection):
        listed = subprocess.run([*command, "--this-host", "--check"], check=False, capture_output=True, text=True,
                                timeout=60, env=service_env(redis_url), cwd=PROJECT_ROOT)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert f"queues={','.join(SERVED_QUEUES)}" in listed.stdout and "1 worker(s) alive" in listed.stdout
    unreachable = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60,
                                 env=service_env(f"redis://127.0.0.1:{free_port()}/0"),
                                 cwd=PROJECT_ROOT)  # fmt: skip
    assert unreachable.returncode == 2 and "unreachable" in unreachable.stderr


def test_honcho_runs_the_procfile(private_redis: EmbeddedRedis) -> None:
    port = free_port()
    env = service_env(private_redis.url, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                      WEB_CONCURRENCY="2")  # fmt: skip
    env.pop("PORT", None)
    process = subprocess.Popen([str(VENV_BIN / "honcho"), "start", "-p", str(port)], env=env, cwd=PROJECT_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    connection = redis_from_url(private_redis.url)
    base_url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return requests.get(f"{base_url}/healthz", timeout=2).status_code == 200
            except (requests.ConnectionError, requests.Timeout):
                return process.poll() is not None

        wait_for(healthy, timeout=60, what="honcho's web process to answer")
        assert process.poll() is None, f"honcho exited with {process.returncode}"
        wait_for(lambda: connection.scard("rq:workers") > 0, timeout=60, what="honcho's worker to register")
        job_id = requests.post(f"{base_url}/api/jobs", timeout=5).json()["id"]
        wait_finished(base_url, job_id)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        stop(process)
        connection.close()


def test_redis_sentinel_finds_the_master(tmp_path: Path, private_redis: EmbeddedRedis) -> None:
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor plotjobs-main 127.0.0.1 {private_redis.port} 1\n"
    )
    sentinel = subprocess.Popen([redis_server_binary(), str(config), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        probe = Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)

        def master_known() -> bool:
            try:
                return probe.execute_command("SENTINEL", "get-master-addr-by-name", "plotjobs-main") is not None
            except RedisConnectionError:
                return False

        wait_for(master_known, timeout=20, what="the sentinel to know the master")
        probe.close()
        settings = from_env({"REDIS_SENTINELS": f"127.0.0.1:{port}", "REDIS_SENTINEL_MASTER": "plotjobs-main",
                             "REDIS_URL": "redis://ignored:1/0", "SECRET_KEY": "x"})  # fmt: skip
        client = create_app(settings).test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.get_json()
        job_id = client.post("/api/jobs?priority=high").get_json()["id"]
        direct = redis_from_url(private_redis.url)
        assert jobs.fetch(direct, job_id).origin == "high"
        direct.close()
    finally:
        stop(sentinel)
