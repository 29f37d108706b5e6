"""A small HTTP client of the plotjobs API (standard library only), used by the command line."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from plotjobs import states

REQUEST_TIMEOUT = 30.0


class ClientError(Exception):
    """A request could not be made or was refused; the message says why for a person to read."""


class ServerUnreachable(ClientError):
    """Nothing answered at the server's address."""


@dataclass(frozen=True)
class ResultFile:
    """A downloaded chart."""

    data: bytes
    content_type: str
    filename: str | None


def _multipart(parts: list[tuple[str, str, str, bytes]]) -> tuple[bytes, str]:
    """Encode (name, filename, content type, data) parts as multipart/form-data."""
    boundary = f"plotjobs-{uuid.uuid4().hex}"
    chunks = []
    for name, filename, content_type, data in parts:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
        )
        chunks.append(data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _refusal(error: urllib.error.HTTPError) -> ClientError:
    """The server's JSON error as one readable line."""
    try:
        body = json.loads(error.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ClientError(f"the server answered {error.code} {error.reason}")
    if not isinstance(body, dict):
        return ClientError(f"the server answered {error.code} {error.reason}")
    message = str(body.get("message") or error.reason)
    details = body.get("details")
    if isinstance(details, list) and len(details) > 1:
        message += "".join(f"\n  {item.get('field')}: {item.get('message')}" for item in details[1:])
    return ClientError(f"the server refused the request ({error.code}): {message}")


class Client:
    """Talks to one plotjobs server."""

    def __init__(self, server: str, timeout: float = REQUEST_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ClientError(f"the server must be an http:// or https:// URL, got {server!r}")
        self.server = server.rstrip("/")
        self.timeout = timeout

    def _request(self, path: str, data: bytes | None = None, content_type: str | None = None) -> Any:
        url = urllib.parse.urljoin(self.server + "/", path.lstrip("/"))
        request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raise _refusal(error) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise ServerUnreachable(f"cannot reach the plotjobs server at {self.server}: {reason}") from None

    def _json(self, path: str, data: bytes | None = None, content_type: str | None = None) -> dict[str, Any]:
        with self._request(path, data, content_type) as response:
            try:
                body = json.loads(response.read())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ClientError(f"{self.server} answered {path} with something that is not JSON") from None
        if not isinstance(body, dict):
            raise ClientError(f"{self.server} answered {path} with unexpected JSON")
        return body

    def submit(self, spec: bytes, csv: bytes | None = None, generator: str | None = None) -> dict[str, Any]:
        """Submit a JSON spec (to ``generator``, else the server's default), with a CSV file when given."""
        if csv is None:
            if generator is not None:
                spec = json.dumps({**json.loads(spec or b"{}"), "generator": generator}).encode()
            return self._json("/api/jobs", spec, "application/json")
        parts = [("spec", "spec.json", "application/json", spec), ("csv", "data.csv", "text/csv", csv)]
        if generator is not None:
            parts.append(("generator", "generator.txt", "text/plain", generator.encode()))
        body, content_type = _multipart(parts)
        return self._json("/api/jobs", body, content_type)

    def generators(self) -> list[dict[str, Any]]:
        """The generators the server serves (GET /api/generators)."""
        listed = self._json("/api/generators").get("generators")
        if not isinstance(listed, list):
            raise ClientError(f"{self.server} answered /api/generators with unexpected JSON")
        return [item for item in listed if isinstance(item, dict)]

    def store_chart(self, spec: bytes, signature: str | None = None) -> dict[str, Any]:
        """Store a chart spec for a short URL (signed when ``signature`` is given); the server's answer."""
        path = "/api/charts" + (f"?sig={urllib.parse.quote(signature, safe='')}" if signature else "")
        return self._json(path, spec, "application/json")

    def status(self, job_id: str) -> dict[str, Any]:
        """The status of job ``job_id``."""
        return self._json(f"/api/jobs/{urllib.parse.quote(job_id, safe='')}")

    def wait(
        self,
        status_url: str,
        on_update: Callable[[dict[str, Any]], None],
        timeout: float,
        interval: float = 0.2,
    ) -> dict[str, Any]:
        """Poll ``status_url`` until the job ends, calling ``on_update`` with each status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self._json(status_url)
            on_update(status)
            if status.get("state") in states.TERMINAL:
                return status
            if time.monotonic() > deadline:
                raise ClientError(f"gave up after {timeout:g}s: the job is still {status.get('state')}")
            time.sleep(interval)  # the polling interval of a client without a push channel

    def result(self, result_url: str) -> ResultFile:
        """The rendered file behind ``result_url``."""
        with self._request(result_url) as response:
            data = response.read()
            content_type = response.headers.get_content_type()
            disposition = response.headers.get("Content-Disposition", "")
        parsed = Message()
        parsed["Content-Disposition"] = disposition
        filename = parsed.get_param("filename", header="Content-Disposition")
        return ResultFile(data, content_type, str(filename) if isinstance(filename, str) else None)
