"""Strict response headers: no sniffing, no framing, no referrer leaks; API answers load nothing."""

from __future__ import annotations

from flask import Flask, Response, request

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Pages keep their own script and style rules; API answers (JSON, images) never need to load anything.
PAGE_CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


def _add_headers(response: Response) -> Response:
    for name, value in BASE_HEADERS.items():
        response.headers.setdefault(name, value)
    csp = API_CSP if request.path.startswith("/api/") else PAGE_CSP
    response.headers.setdefault("Content-Security-Policy", csp)
    return response


def register_security_headers(app: Flask) -> None:
    """Add the strict headers to every response of ``app``."""
    app.after_request(_add_headers)
