"""Browser-facing protections: security headers on every response, CSRF tokens on state changes.

See docs/api.md, "Security of the pages".
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Response, g, request

from plotjobs.errors import CSRFFailed

CSRF_COOKIE = "plotjobs_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Only our own blueprints: anything mounted beside them keeps its own rules.
PROTECTED_BLUEPRINTS = frozenset({"api", "views", "embed"})
# The chart images other sites embed (plotjobs.web.embed.IMAGE_ENDPOINTS): only they may be loaded cross-origin.
CROSS_ORIGIN_ENDPOINTS = frozenset({"embed.chart_image", "embed.stored_chart_image"})
# Browsers send at least one of these on every request; plain HTTP clients send none.
_BROWSER_HEADERS = ("Cookie", "Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self'",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# API answers (JSON, images, SVG files) never need to load anything, nor run script.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"


def csrf_token() -> str:
    """This browser's CSRF token: the cookie's value, or a new one set on the response."""
    token: str | None = g.get("csrf_token") or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(32)
        g.csrf_new_token = token
    g.csrf_token = token
    return token


def is_browser_request() -> bool:
    """Whether the request carries any header that only browsers send on their own."""
    return any(name in request.headers for name in _BROWSER_HEADERS)


def check_csrf() -> None:
    """Refuse a browser's unsafe request to our routes unless it carries the token of its cookie."""
    if request.method not in UNSAFE_METHODS or request.blueprint not in PROTECTED_BLUEPRINTS:
        return
    if not is_browser_request():
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise CSRFFailed(
            "this browser request lacks a valid CSRF token: reload the page and try again",
            field=CSRF_HEADER,
        )


def security_headers(path: str, endpoint: str | None = None) -> dict[str, str]:
    """The security headers of every response to ``path`` (a view may choose its own policy, not drop one)."""
    embeddable = endpoint in CROSS_ORIGIN_ENDPOINTS
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (
            API_CONTENT_SECURITY_POLICY if embeddable or path.startswith("/api/") else CONTENT_SECURITY_POLICY
        ),
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }
    if embeddable:
        # Any site may show these images, even one that requires it (Cross-Origin-Embedder-Policy: require-corp).
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return headers


def add_headers(response: Response) -> Response:
    """Security headers on every response; set the CSRF cookie when a page minted a token."""
    for name, value in security_headers(request.path, request.endpoint).items():
        response.headers.setdefault(name, value)
    # A view may choose its own policies, but never to allow sniffing.
    response.headers["X-Content-Type-Options"] = "nosniff"
    new_token = g.get("csrf_new_token")
    if new_token:
        response.set_cookie(
            CSRF_COOKIE, new_token, httponly=True, samesite="Strict", secure=request.is_secure, path="/"
        )
    return response


def install(app: Flask) -> None:
    """Check CSRF before our handlers run, add headers after every response."""
    app.before_request(check_csrf)
    app.after_request(add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
