"""Large data end to end: a CSV of 10^4, 10^5 and 10^6 rows uploaded to a real gunicorn, charted by a real worker.

Run it with ``python -m bench.large_data`` (see bench/README.md). It starts a private Redis, one
render worker (its JSON log read for the stage timings) and gunicorn with one web process (its
memory read from ``/proc``), then for each size uploads a two-column CSV (``POST /api/jobs``,
multipart), polls the job until it has finished and fetches the file. Each size is set beside the
default chart's end-to-end time measured in the same run, since the machine is shared and noisy.

The figures of each size:
- **end to end**: from the first byte of the upload to the last byte of the chart file;
- **upload** (the ``POST`` answered: reading, parsing and checking the CSV, storing its data,
  enqueueing) and, measured again in this process on the same bytes, its **parse** and **store**;
- the same for the largest size sent as a JSON body (``x`` and ``y`` lists) instead of a CSV;
- the worker's stages from its log line: **load** (reading the data back), **validate**,
  **draw** (matplotlib, from the arrays), **encode** (PNG) and **store file**;
- **job hash**: ``MEMORY USAGE`` of the RQ job hash, and ``HSTRLEN`` of its data field;
- **web peak**: the web process's peak resident memory during the upload above what it held
  before (Linux ``VmHWM`` of the gunicorn worker, reset through ``/proc/<pid>/clear_refs``);
- **rows back**: how many rows ``GET /api/jobs/<id>/spec`` gives back (every one must be there).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import Processes, log, service_env, start_gunicorn, wait_until  # noqa: E402
from plotjobs.cli.embedded_redis import EmbeddedRedis  # noqa: E402
from plotjobs.config import Settings  # noqa: E402
from plotjobs.queue import data  # noqa: E402
from plotjobs.spec.chart import ChartSpec  # noqa: E402
from plotjobs.spec.table import parse_csv, resolve_columns  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
# The target: a million points end to end within this many times the default chart's end-to-end time.
TARGET_RATIO = 15
DEFAULT_SAMPLES = 5
QUEUES = "high,default,low"
SPEC = {"kind": "line", "title": "large data", "series": [{"x_column": "t", "y_column": "value"}]}
POLL_SECONDS = 0.01
SCRATCH_KEY = "plotjobs:bench:large-data"
JOB_DEADLINE_SECONDS = 120
# Worker stages as the task logs them, and the names the table gives them.
STAGES = {
    "loading data": "load",
    "validating": "validate",
    "drawing": "draw",
    "encoding": "encode",
    "storing": "store file",
}


def csv_table(rows: int, seed: int = 0) -> bytes:
    """A two-column CSV: a row number and a random walk, as a sensor log looks."""
    walk = np.cumsum(np.random.default_rng(seed).normal(size=rows)).round(4)
    buffer = io.StringIO()
    buffer.write("t,value\n")
    np.savetxt(buffer, np.column_stack([np.arange(rows), walk]), fmt=["%d", "%.4f"], delimiter=",")
    return buffer.getvalue().encode()


@dataclass
class Measurement:
    """One upload's figures."""

    rows: int
    file_bytes: int
    end_to_end: float
    upload: float
    parse: float
    store: float
    stages_ms: dict[str, float]
    job_hash_bytes: int
    job_data_bytes: int
    data_ttl: int
    web_peak_bytes: int
    rows_back: int
    form: str = "csv"


class Web:
    """One keep-alive connection to the web app."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        host, port = self.address.split(":")
        return http.client.HTTPConnection(host, int(port), timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "") -> tuple[int, bytes]:
        """Send one request and read the whole answer."""
        headers = {"Content-Type": content_type} if content_type else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def finished(self, job_id: str) -> dict[str, Any]:
        """Poll the job until it has finished; fail on any other end."""
        deadline = time.monotonic() + JOB_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            status, body = self.request("GET", f"/api/jobs/{job_id}")
            answer: dict[str, Any] = json.loads(body)
            if answer.get("state") == "finished":
                return answer
            if status != 200 or answer.get("state") in ("failed", "canceled", "stopped"):
                raise RuntimeError(f"job {job_id} did not finish: {status} {answer}")
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"job {job_id} did not finish within {JOB_DEADLINE_SECONDS} s")

    def chart(self, body: bytes, content_type: str) -> tuple[str, float, float]:
        """Submit, wait, fetch the file: the job id, the seconds to the POST's answer and to the file's last byte."""
        # A fresh connection: gunicorn closes one idle for longer than its keep-alive.
        self.connection.close()
        self.connection = self._connect()
        started = time.perf_counter()
        status, answer = self.request("POST", "/api/jobs", body, content_type)
        uploaded = time.perf_counter() - started
        if status not in (200, 202):
            raise RuntimeError(f"POST /api/jobs was refused with {status}: {answer[:300]!r}")
        job_id = str(json.loads(answer)["id"])
        self.finished(job_id)
        status, chart = self.request("GET", f"/api/jobs/{job_id}/result")
        if status != 200 or not chart.startswith(b"\x89PNG"):
            raise RuntimeError(f"job {job_id} has no PNG: {status}")
        return job_id, uploaded, time.perf_counter() - started

    def close(self) -> None:
        """Hang up."""
        self.connection.close()


def multipart(spec: dict[str, Any], table: bytes) -> tuple[bytes, str]:
    """A multipart body with a ``spec`` part and a ``csv`` file, and its content type."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n{json.dumps(spec)}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="csv"; filename="data.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + table + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _proc_status(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no {name}")


def reset_peak(pid: int) -> int:
    """Reset the process's peak resident memory to what it holds now, and return that."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _proc_status(pid, "VmRSS")


def peak_since(pid: int, resident_before: int) -> int:
    """The process's peak resident memory since the reset, above what it held then."""
    return _proc_status(pid, "VmHWM") - resident_before


def in_process_parts(connection: Redis, sent: bytes, form: str) -> tuple[float, float]:
    """Seconds to parse and check the CSV or JSON into a spec, and to pack and store its data (in this process)."""
    started = time.perf_counter()
    document = resolve_columns(SPEC, parse_csv(sent)) if form == "csv" else json.loads(sent)
    spec = ChartSpec.model_validate(document)
    parsed = time.perf_counter() - started
    arrays = [array for series in spec.series or [] for array in (series.x, series.y) if isinstance(array, np.ndarray)]
    started = time.perf_counter()
    blob, _ = data.packed(arrays)
    # A key of the bench's own: the data's own key exists already, and storing it again only extends it.
    connection.set(SCRATCH_KEY, blob, ex=60)
    stored = time.perf_counter() - started
    connection.delete(SCRATCH_KEY)
    return parsed, stored


def worker_stages(log_path: Path, job_id: str) -> dict[str, float]:
    """The stage timings of the worker's log line for the job."""
    for line in log_path.read_text().splitlines():
        if job_id in line and '"stages_ms"' in line:
            stages: dict[str, float] = json.loads(line)["stages_ms"]
            return stages
    return {}


@contextmanager
def running_services(redis_url: str, log_path: Path) -> Iterator[tuple[str, int]]:
    """A render worker logging to ``log_path`` and gunicorn with one web process; yields its address and pid."""
    children = Processes()
    worker = None
    with log_path.open("wb") as log_file:
        try:
            worker = subprocess.Popen(
                [sys.executable, str(ROOT / "worker.py")],
                env=service_env(redis_url, LOG_LEVEL="INFO", QUEUES=QUEUES),
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            children.children.append(worker)
            address, master = start_gunicorn(children, redis_url, 1, QUEUES)
            web_pid = wait_until(lambda: [child.pid for child in master.children()], 30, "the gunicorn worker")[0]
            yield address, web_pid
        finally:
            children.stop_all()


def json_body(rows: int) -> bytes:
    """A chart like the CSV's of ``rows`` rows (another walk, so that it is no job rendered already), as JSON."""
    table = np.loadtxt(io.BytesIO(csv_table(rows, seed=1)), delimiter=",", skiprows=1, ndmin=2)
    series = {"name": "value", "x": table[:, 0].tolist(), "y": table[:, 1].tolist()}
    return json.dumps({"kind": "line", "title": "large data", "series": [series]}).encode()


def upload(connection: Redis, web: Web, web_pid: int, log_path: Path, rows: int, *, form: str) -> Measurement:
    """Chart ``rows`` rows sent as ``form`` (``csv``: a multipart upload; ``json``: a JSON body) and measure it."""
    if form == "csv":
        sent = csv_table(rows)
        body, content_type = multipart(SPEC, sent)
    else:
        sent = body = json_body(rows)
        content_type = "application/json"
    log(f"{rows:,} rows: {len(sent) / 1e6:.1f} MB of {form.upper()}")
    resident = reset_peak(web_pid)
    job_id, uploaded, end_to_end = web.chart(body, content_type)
    web_peak = peak_since(web_pid, resident)
    job_key = f"rq:job:{job_id}"
    job_hash_bytes = int(connection.memory_usage(job_key, samples=0) or 0)
    job_data_bytes = int(connection.hstrlen(job_key, "data"))
    data_keys = list(connection.scan_iter("plotjobs:data:*"))
    data_ttl = int(connection.ttl(data_keys[-1])) if data_keys else -2
    status, spec_body = web.request("GET", f"/api/jobs/{job_id}/spec")
    back = json.loads(spec_body)["series"][0] if status == 200 else {"x": [], "y": []}
    rows_back = len(back["y"]) if len(back["x"]) == len(back["y"]) else -1
    parse, store = in_process_parts(connection, sent, form)
    stages = wait_until(lambda: worker_stages(log_path, job_id), 10, "the job's log line")
    figures = (job_hash_bytes, job_data_bytes, data_ttl, web_peak, rows_back)
    return Measurement(rows, len(sent), end_to_end, uploaded, parse, store, stages, *figures, form=form)


def measure(  # noqa: PLR0917
    redis_url: str, address: str, web_pid: int, log_path: Path, sizes: tuple[int, ...], samples: int, json_rows: int
) -> dict[str, Any]:
    """The default chart's end-to-end time, then every size's figures (and one JSON body of ``json_rows`` rows)."""
    connection = Redis.from_url(redis_url)
    web = Web(address)
    try:
        wait_until(lambda: connection.keys("rq:worker:*"), 60, "the render worker")
        default_times = [web.chart(b"", "")[2] for _ in range(samples)]
        found = [upload(connection, web, web_pid, log_path, rows, form="csv") for rows in sizes]
        if json_rows:
            found.append(upload(connection, web, web_pid, log_path, json_rows, form="json"))
        return {"default": statistics.median(default_times), "measurements": found}
    finally:
        web.close()
        connection.close()


def run(sizes: tuple[int, ...] = SIZES, samples: int = DEFAULT_SAMPLES, json_rows: int = max(SIZES)) -> dict[str, Any]:
    """Start everything, measure, stop everything."""
    with tempfile.TemporaryDirectory() as directory, EmbeddedRedis() as redis_server:
        log_path = Path(directory) / "worker.log"
        with running_services(redis_server.url, log_path) as (address, web_pid):
            return measure(redis_server.url, address, web_pid, log_path, sizes, samples, json_rows)


def table(result: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    default = result["default"]
    lines = [
        f"Default chart end to end (median): {default * 1000:.0f} ms. "
        f"Data lives {data.lifetime(Settings())} s from submission and from its job's start (TTLs below).",
        "",
        "| rows | sent | end to end | x default | upload (parse / store in-process) | worker: "
        + " / ".join(STAGES.values())
        + " | job hash (data field) | data TTL | web peak | rows back |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["measurements"]:
        stages = " / ".join(f"{item.stages_ms.get(stage, 0):.0f}" for stage in STAGES)
        lines.append(
            f"| {item.rows:,} | {item.file_bytes / 1e6:.2f} MB {item.form.upper()} | {item.end_to_end:.2f} s "
            f"| {item.end_to_end / default:.1f}x | {item.upload:.2f} s ({item.parse:.2f} / {item.store:.2f}) "
            f"| {stages} ms | {item.job_hash_bytes:,} B ({item.job_data_bytes:,} B) | {item.data_ttl:,} s "
            f"| {item.web_peak_bytes / 1e6:.0f} MB ({item.web_peak_bytes / item.file_bytes:.1f}x the file) "
            f"| {item.rows_back:,} |"
        )
    largest = max((item for item in result["measurements"] if item.form == "csv"), key=lambda item: item.rows)
    ratio = largest.end_to_end / default
    lines += ["", f"{largest.rows:,} rows end to end: {ratio:.1f}x the default chart (target {TARGET_RATIO}x): "
              f"{'met' if ratio <= TARGET_RATIO else 'not met'}."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="rows of each upload")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="default charts timed for the baseline")
    parser.add_argument("--json-rows", type=int, default=max(SIZES), help="rows of the JSON body (0: none)")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    result = table(run(tuple(args.sizes), args.samples, args.json_rows))
    print(result)
    if args.output:
        args.output.write_text(result + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
