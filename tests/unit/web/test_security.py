"""Security headers on every response, and CSRF rules: browsers need the token, plain clients do not."""

from __future__ import annotations

import re

import pytest
from flask import Blueprint, Flask, Response, g, render_template_string
from flask.testing import FlaskClient

from plotjobs.web import http_errors, security
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


# --- the rules on a bare app: every method, every kind of route -------------------------------

ALL_METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]
SAFE = ["GET", "HEAD", "OPTIONS"]
REFUSED_BODY = {
    "error": "csrf_failed",
    "message": "this browser request lacks a valid CSRF token: reload the page and try again",
    "field": "X-CSRF-Token",
}


def probe_app() -> Flask:
    """An app with the security hooks and one route taking every method in our blueprints, another's and none."""
    app = Flask(__name__)
    app.testing = True
    http_errors.register_error_handlers(app)
    security.install(app)
    for name in ("api", "views", "embed", "rq_dashboard"):
        blueprint = Blueprint(name, __name__, url_prefix=f"/{name}")
        blueprint.add_url_rule("/probe", "probe", lambda: "done", methods=ALL_METHODS)
        if name == "embed":
            blueprint.add_url_rule("/chart", "chart_image", lambda: "image")
            blueprint.add_url_rule("/stored", "stored_chart_image", lambda: "image")
        app.register_blueprint(blueprint)
    app.add_url_rule("/bare", "bare", lambda: "done", methods=ALL_METHODS)
    app.add_url_rule("/token", "token", lambda: render_template_string("{{ csrf_token() }}"))

    @app.get("/own-policy")
    def own_policy() -> Response:
        return Response(
            "own",
            headers={
                "Content-Security-Policy": "default-src 'none'",
                "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "SAMEORIGIN",
                "X-Content-Type-Options": "sniff-away",
            },
        )

    return app


@pytest.fixture
def probe() -> FlaskClient:
    """A test client of the bare app."""
    return probe_app().test_client()


def browser_token(probe: FlaskClient) -> str:
    """Load a page that mints the token, as a browser would; its cookie stays in the client."""
    response = probe.get("/token")
    token = response.get_data(as_text=True)
    assert response.headers["Set-Cookie"] == f"{CSRF_COOKIE}={token}; HttpOnly; Path=/; SameSite=Strict"
    return token


@pytest.mark.parametrize("prefix", ["/api", "/views"])
@pytest.mark.parametrize("method", UNSAFE)
def test_every_unsafe_method_of_a_browser_needs_the_token_on_our_blueprints(
    probe: FlaskClient, prefix: str, method: str
) -> None:
    refused = probe.open(f"{prefix}/probe", method=method, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.get_json() == REFUSED_BODY
    token = browser_token(probe)
    accepted = probe.open(f"{prefix}/probe", method=method, headers={"Origin": "http://localhost", CSRF_HEADER: token})
    assert accepted.status_code == 200 and accepted.data == b"done"


def test_the_unsafe_methods_are_exactly_the_state_changing_ones() -> None:
    assert frozenset(UNSAFE) == security.UNSAFE_METHODS
    assert frozenset({"api", "views", "embed"}) == security.PROTECTED_BLUEPRINTS


@pytest.mark.parametrize("prefix", ["/api", "/views"])
@pytest.mark.parametrize("method", SAFE)
def test_safe_methods_of_a_browser_pass_without_a_token(probe: FlaskClient, prefix: str, method: str) -> None:
    response = probe.open(f"{prefix}/probe", method=method, headers={"Origin": "https://evil.example"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/rq_dashboard/probe", "/bare"])
@pytest.mark.parametrize("method", UNSAFE)
def test_routes_outside_our_blueprints_keep_their_own_rules(probe: FlaskClient, path: str, method: str) -> None:
    response = probe.open(path, method=method, headers={"Origin": "https://evil.example"})
    assert response.status_code == 200 and response.data == b"done"


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Mode": "no-cors"}],
)
def test_any_one_header_only_browsers_send_makes_it_a_browser_request(
    probe: FlaskClient, headers: dict[str, str]
) -> None:
    assert probe.delete("/api/probe", headers=headers).status_code == 403
    assert probe.delete("/api/probe").status_code == 200


def test_a_cookie_alone_makes_it_a_browser_request(probe: FlaskClient) -> None:
    probe.set_cookie("unrelated", "1")
    assert probe.delete("/api/probe").get_json() == REFUSED_BODY


def test_is_browser_request_looks_at_each_browser_header() -> None:
    app = probe_app()
    for name in ("Cookie", "Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode"):
        with app.test_request_context("/api/probe", method="POST", headers={name: "x=1"}):
            assert security.is_browser_request() is True
    with app.test_request_context("/api/probe", method="POST", headers={"User-Agent": "curl/8", "Accept": "*/*"}):
        assert security.is_browser_request() is False


@pytest.mark.parametrize(
    ("cookie", "sent"),
    [
        (None, None),
        (None, ""),
        (None, "XXXX"),
        ("", ""),
        ("", None),
        ("abc", None),
        ("abc", ""),
        ("abc", "abd"),
        ("XXXX", None),
    ],
)
def test_a_browser_needs_a_token_equal_to_its_cookie(probe: FlaskClient, cookie: str | None, sent: str | None) -> None:
    if cookie is not None:
        probe.set_cookie(CSRF_COOKIE, cookie)
    headers = {"Sec-Fetch-Site": "same-origin"} | ({} if sent is None else {CSRF_HEADER: sent})
    response = probe.put("/views/probe", headers=headers)
    assert response.status_code == 403
    assert response.get_json() == REFUSED_BODY


def test_the_token_of_the_cookie_is_accepted_whatever_other_cookies_come_along(probe: FlaskClient) -> None:
    probe.set_cookie("unrelated", "1")
    probe.set_cookie(CSRF_COOKIE, "abc")
    response = probe.patch("/api/probe", headers={"Sec-Fetch-Site": "same-origin", CSRF_HEADER: "abc"})
    assert response.status_code == 200


def test_a_new_browser_gets_a_fresh_random_token_once_per_request() -> None:
    app = probe_app()
    with app.test_request_context("/"):
        token = security.csrf_token()
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes, URL-safe base64
        assert g.csrf_new_token == token
        assert security.csrf_token() == token
    with app.test_request_context("/"):
        assert security.csrf_token() != token


def test_a_browser_with_the_cookie_keeps_its_token() -> None:
    app = probe_app()
    with app.test_request_context("/", headers={"Cookie": f"{CSRF_COOKIE}=kept"}):
        assert security.csrf_token() == "kept"
        assert g.get("csrf_new_token") is None
        assert g.csrf_token == "kept"


def test_an_empty_cookie_is_replaced_by_a_new_token() -> None:
    app = probe_app()
    with app.test_request_context("/", headers={"Cookie": f"{CSRF_COOKIE}="}):
        token = security.csrf_token()
        assert len(token) == 43 and g.csrf_new_token == token


def test_the_token_cookie_is_secure_over_https(probe: FlaskClient) -> None:
    response = probe.get("/token", base_url="https://localhost")
    token = response.get_data(as_text=True)
    assert response.headers["Set-Cookie"] == f"{CSRF_COOKIE}={token}; Secure; HttpOnly; Path=/; SameSite=Strict"


def test_no_cookie_is_set_when_no_page_asked_for_a_token(probe: FlaskClient) -> None:
    assert "Set-Cookie" not in probe.get("/bare").headers


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/bare", security.CONTENT_SECURITY_POLICY),
        ("/views/probe", security.CONTENT_SECURITY_POLICY),
        ("/api/probe", security.API_CONTENT_SECURITY_POLICY),
        ("/api/missing", security.API_CONTENT_SECURITY_POLICY),
        ("/apiary", security.CONTENT_SECURITY_POLICY),
    ],
)
def test_the_exact_headers_of_pages_and_api_answers(probe: FlaskClient, path: str, policy: str) -> None:
    headers = probe.get(path).headers
    assert headers["Content-Security-Policy"] == policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


def test_the_security_headers_are_sent_under_their_canonical_names(probe: FlaskClient) -> None:
    names = list(probe.get("/bare").headers.keys())
    for name in ("X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy", "X-Frame-Options"):
        assert name in names


def test_the_policies_are_exactly_these() -> None:
    assert security.CONTENT_SECURITY_POLICY == (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    assert security.API_CONTENT_SECURITY_POLICY == "default-src 'none'; frame-ancestors 'none'; sandbox"


def test_a_route_keeps_its_own_policies_but_never_allows_sniffing(probe: FlaskClient) -> None:
    headers = probe.get("/own-policy").headers
    assert headers["Content-Security-Policy"] == "default-src 'none'"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers.getlist("X-Content-Type-Options") == ["nosniff"]


def test_a_browser_delete_of_a_job_without_the_token_is_refused(fake_client: FlaskClient) -> None:
    job_id = fake_client.post("/api/jobs", json={}).get_json()["id"]
    response = fake_client.delete(f"/api/jobs/{job_id}", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.get_json() == REFUSED_BODY


@pytest.mark.parametrize("path", ["/embed/chart", "/embed/stored"])
def test_only_the_chart_image_routes_may_be_embedded_by_other_sites(probe: FlaskClient, path: str) -> None:
    headers = probe.get(path).headers
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert headers["Content-Security-Policy"] == security.API_CONTENT_SECURITY_POLICY
    for elsewhere in ("/embed/probe", "/api/probe", "/bare"):
        assert "Cross-Origin-Resource-Policy" not in probe.get(elsewhere).headers, elsewhere
