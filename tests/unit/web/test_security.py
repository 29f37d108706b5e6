"""Security headers on every response, and CSRF rules: browsers need the token, plain clients do not."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from plotjobs.web.security import CSRF_COOKIE, CSRF_HEADER


def page_token(client: FlaskClient) -> str:
    """Load the start page like a browser and return the token its meta tag holds."""
    html = client.get("/").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, html
    return match.group(1)


@pytest.mark.parametrize("path", ["/", "/jobs/00000000-0000-4000-8000-000000000000", "/api/jobs/nope",
                                  "/static/style.css", "/static/js/card.js", "/no-such-page"])  # fmt: skip
def test_every_response_carries_the_security_headers(fake_client: FlaskClient, path: str) -> None:
    with fake_client.get(path) as response:
        headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    policy = headers["Content-Security-Policy"]
    # Pages load only from this origin; API answers (JSON, files) may load nothing at all.
    expected = "default-src 'none'" if path.startswith("/api/") else "default-src 'self'"
    assert expected in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_a_json_api_response_is_nosniff_too(fake_client: FlaskClient) -> None:
    response = fake_client.post("/api/jobs")
    assert response.status_code == 202
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_mint_a_token_into_an_httponly_strict_cookie(fake_client: FlaskClient) -> None:
    response = fake_client.get("/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert f'<meta name="csrf-token" content="{token}">' in response.get_data(as_text=True)
    # The same browser keeps its token on the next page.
    assert "Set-Cookie" not in fake_client.get("/").headers


def test_templates_have_no_inline_script_or_style(fake_client: FlaskClient) -> None:
    for path in ("/", "/jobs/00000000-0000-4000-8000-000000000000"):
        html = fake_client.get(path).get_data(as_text=True)
        assert " style=" not in html and "<style" not in html
        assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", html)), html


def test_plain_http_clients_need_no_token(fake_client: FlaskClient) -> None:
    assert fake_client.post("/api/jobs", json={"title": "from curl"}).status_code == 202


def test_a_browser_post_with_its_page_token_is_accepted(fake_client: FlaskClient) -> None:
    token = page_token(fake_client)
    response = fake_client.post("/api/jobs", json={}, headers={CSRF_HEADER: token, "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 202, response.get_json()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        {"Origin": "https://evil.example", CSRF_HEADER: "guessed"},
    ],
)
def test_a_cross_site_browser_post_without_the_token_is_refused(
    fake_client: FlaskClient, headers: dict[str, str]
) -> None:
    response = fake_client.post("/api/jobs", data="", content_type="text/plain", headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {
        "error": "csrf_failed",
        "message": "this browser request lacks a valid CSRF token: reload the page and try again",
        "field": CSRF_HEADER,
    }


def test_a_browser_with_the_cookie_but_a_wrong_token_is_refused(fake_client: FlaskClient) -> None:
    page_token(fake_client)
    missing = fake_client.post("/api/jobs", json={})
    wrong = fake_client.post("/api/jobs", json={}, headers={CSRF_HEADER: "not-the-token"})
    assert missing.status_code == wrong.status_code == 403


def test_safe_methods_never_need_a_token(fake_client: FlaskClient) -> None:
    response = fake_client.get("/api/workers", headers={"Origin": "https://elsewhere.example"})
    assert response.status_code == 200


def test_a_job_id_in_the_address_is_rendered_escaped(fake_client: FlaskClient) -> None:
    html = fake_client.get("/jobs/%3Cscript%3Ealert(1)%3C%5Cscript%3E").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;\\script&gt;" in html


@pytest.mark.parametrize("path", ["/", "/jobs/00000000-0000-4000-8000-000000000000", "/api/jobs/nope",
                                  "/api/openapi.json", "/static/style.css", "/no-such-page"])  # fmt: skip
def test_pages_and_api_answers_send_no_referrer_to_other_origins(fake_client: FlaskClient, path: str) -> None:
    with fake_client.get(path) as response:
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_a_submitted_job_answer_carries_the_referrer_policy(fake_client: FlaskClient) -> None:
    response = fake_client.post("/api/jobs")
    assert response.status_code == 202 and response.headers["Referrer-Policy"] == "same-origin"
