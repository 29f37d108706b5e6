"""Chart URLs without the web framework: encode a spec into ``?c=``, sign a URL, name a stored chart.

The web app (``plotjobs.web.embed``) and the command line (``plotjobs url``) share these, so a
URL the command prints is the URL the server checks. See docs/embedding.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote, urlencode

# 22 base64url characters: 132 bits of the HMAC-SHA256, short enough for a URL.
SIGNATURE_CHARS = 22
CHART_ID_HEX = 24
FORMATS = ("png", "svg", "pdf")


def compact_json(document: Any) -> str:
    """JSON without spaces: the shortest text of a document, as URLs carry it."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def encode_spec(document: dict[str, Any]) -> str:
    """The spec as base64url JSON without padding: URL-safe as it stands."""
    return base64.urlsafe_b64encode(compact_json(document).encode()).decode().rstrip("=")


_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def decode_spec(value: str) -> str:
    """The JSON text of a ``c`` value: base64url JSON when it is all base64url characters, else JSON itself.

    ValueError when base64url does not decode to UTF-8 text.
    """
    text = value.strip()
    if text.startswith("{") or not set(text) <= _BASE64URL:
        return text
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return raw.decode()
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"c is neither JSON nor base64url JSON ({error})") from None


def _mac(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_CHARS]


def url_signature(secret: str, file_format: str, c: str, width: str | None = None, height: str | None = None) -> str:
    """The ``sig`` of a chart URL: an HMAC of its format and its ``c``, ``w`` and ``h`` values (decoded)."""
    message = "\n".join(["chart", file_format, c, width or "", height or ""]).encode()
    return _mac(secret, message)


def store_signature(secret: str, body: bytes) -> str:
    """The ``sig`` of a ``POST /api/charts``: an HMAC of its body's bytes."""
    return _mac(secret, b"charts\n" + body)


def signatures_match(given: str, expected: str) -> bool:
    """Compare in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def key_id(secret: str) -> str:
    """A short public name of a signing key, for the limits counted per key (never the key itself)."""
    return hashlib.sha256(b"plotjobs chart url key\n" + secret.encode()).hexdigest()[:12]


def chart_id(stored_json: str) -> str:
    """The id of a stored chart: named by its spec, so storing the same spec twice gives the same id."""
    return hashlib.sha256(stored_json.encode()).hexdigest()[:CHART_ID_HEX]


def chart_path(
    document: dict[str, Any],
    file_format: str,
    *,
    secret: str | None = None,
    width: int | None = None,
    height: int | None = None,
    as_json: bool = False,
) -> str:
    """``/chart.<format>?c=...`` for ``document`` (without its ``format``), signed when ``secret`` is given."""
    spec = {name: value for name, value in document.items() if name != "format"}
    c = compact_json(spec) if as_json else encode_spec(spec)
    params = {"c": c}
    w = str(width) if width is not None else None
    h = str(height) if height is not None else None
    if w is not None:
        params["w"] = w
    if h is not None:
        params["h"] = h
    if secret:
        params["sig"] = url_signature(secret, file_format, c, w, h)
    return f"/chart.{file_format}?" + urlencode(params, quote_via=quote, safe="")
