"""An HTTP client that runs on another network host and does what the test asks, one JSON line at a time.

Each request line is ``{"method": ..., "url": ..., "json": ...}``; each answer line is
``{"status": ..., "body": ..., "headers": {...}}``, or ``{"error": ...}`` when no answer came.
Standard library only, so it starts fast wherever the project is installed.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

TIMEOUT_SECONDS = 10


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def call(request: dict[str, Any]) -> dict[str, Any]:
    """Send one request; its status, JSON body and headers, or the error that stopped it."""
    data = json.dumps(request["json"]).encode() if "json" in request else None
    http = urllib.request.Request(request["url"], data=data, method=request.get("method", "GET"))
    if data is not None:
        http.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(http, timeout=TIMEOUT_SECONDS) as response:
            return {"status": response.status, "body": _body(response.read()), "headers": dict(response.headers)}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": _body(error.read()), "headers": dict(error.headers)}
    except (urllib.error.URLError, OSError) as error:
        return {"error": f"{error.__class__.__name__}: {error}"}


def main() -> None:
    """Answer every request line on stdin until it closes."""
    for line in sys.stdin:
        sys.stdout.write(json.dumps(call(json.loads(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
