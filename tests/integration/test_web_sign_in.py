"""Signing in to the web application, on the real gateway process and database: a hub
token signs in, the session cookie is __Host-, Secure, HttpOnly and SameSite=Lax, forms
without the session's CSRF token or from another origin do nothing, a revoked token ends
the session, sign-out ends it, and only this hub's own paths are gone back to."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from services.shared.access import Kind, Principal
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings
from tests.gateway_support import GatewayProcess

pytestmark = pytest.mark.integration
SESSION = "__Host-sendhub-session"


@pytest.fixture(scope="module")
def gateway(hub_env: dict[str, str], scratch_db: HubSettings) -> Iterator[GatewayProcess]:
    log_dir = Path(__file__).resolve().parents[2] / "test-artifacts" / "service-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    process = GatewayProcess({**hub_env, "SENDHUB_DATABASE_URL": str(scratch_db.database_url)},
                             log_dir / f"gateway-web-{uuid.uuid4().hex[:6]}.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def store(scratch_db: HubSettings) -> PrincipalStore:
    return PrincipalStore(scratch_db.database_conninfo)


def new_token(store: PrincipalStore, kind: Kind = Kind.auditor) -> tuple[str, str]:
    principal = store.add(Principal(kind, f"web{uuid.uuid4().hex[:8]}")).principal
    return principal.name, store.issue_token(principal.name).token


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(browser: httpx.Client, token: str, next_url: str = "") -> httpx.Response:
    offered = browser.get("/sign-in")
    return browser.post("/sign-in", data={"token": token, "form_token": form_token(offered),
                                          "next": next_url},
                        headers={"Origin": str(browser.base_url).rstrip("/")})


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_a_signed_out_visitor_is_sent_to_sign_in_and_brought_back(
        gateway: GatewayProcess, store: PrincipalStore) -> None:
    name, token = new_token(store)
    with gateway.client() as browser:
        first = browser.get("/signed-in?x=1")
        assert first.status_code == 303
        assert first.headers["location"] == "/sign-in?next=%2Fsigned-in%3Fx%3D1"
        answer = sign_in(browser, token, "/signed-in?x=1")
        assert answer.status_code == 303 and answer.headers["location"] == "/signed-in?x=1"
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION))
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= {
            part.strip().lower() for part in cookie.split(";")}
        assert "domain=" not in cookie.lower()
        shown = browser.get("/signed-in")
    assert shown.status_code == 200 and name in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert "script-src 'none'" in shown.headers["content-security-policy"]
    assert shown.headers["strict-transport-security"] == "max-age=31536000"


def test_a_wrong_token_or_a_forged_form_signs_nobody_in(
        gateway: GatewayProcess, store: PrincipalStore) -> None:
    _, token = new_token(store)
    with gateway.client() as browser:
        wrong = sign_in(browser, token[:-3] + "xyz")
        assert wrong.status_code == 401 and "did not sign you in" in wrong.text
        assert SESSION not in browser.cookies
    with gateway.client() as attacker:  # no sign-in form cookie: a cross-site post
        forged = attacker.post("/sign-in", data={"token": token, "form_token": "guess"},
                               headers={"Origin": str(attacker.base_url).rstrip("/")})
        assert forged.status_code == 403 and SESSION not in attacker.cookies
    with gateway.client() as browser:
        offered = browser.get("/sign-in")
        elsewhere = browser.post("/sign-in", data={"token": token,
                                                   "form_token": form_token(offered)},
                                 headers={"Origin": "https://evil.example"})
        assert elsewhere.status_code == 403 and SESSION not in browser.cookies


def test_only_the_hubs_own_paths_are_gone_back_to(gateway: GatewayProcess,
                                                  store: PrincipalStore) -> None:
    _, token = new_token(store)
    for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        with gateway.client() as browser:
            answer = sign_in(browser, token, elsewhere)
            assert answer.status_code == 303 and answer.headers["location"] == "/pupils"


def test_a_system_signs_in_to_the_api_only(gateway: GatewayProcess,
                                           store: PrincipalStore) -> None:
    _, token = new_token(store, Kind.connector)
    with gateway.client() as browser:
        refused = sign_in(browser, token)
        assert refused.status_code == 403 and "connectors (systems)" in refused.text
        assert SESSION not in browser.cookies


def test_signing_in_again_ends_the_session_the_browser_held(
        gateway: GatewayProcess, store: PrincipalStore) -> None:
    _, first_token = new_token(store)
    _, second_token = new_token(store)
    with gateway.client() as browser:
        sign_in(browser, first_token)
        first = browser.cookies[SESSION]
        sign_in(browser, second_token)
        assert browser.cookies[SESSION] != first
    with gateway.client() as replay:
        replay.cookies.set(SESSION, first)
        assert replay.get("/signed-in").status_code == 303


def test_a_form_posted_after_the_session_ended_comes_back_to_its_page(
        gateway: GatewayProcess) -> None:
    with gateway.client() as browser:
        origin = str(browser.base_url).rstrip("/")
        answer = browser.post("/pupils/view", data={"upn": "x"}, headers={
            "Origin": origin, "Referer": f"{origin}/pupils?from=form"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=%2Fpupils%3Ffrom%3Dform"


def test_no_stored_session_can_claim_the_admin_consoles_link(scratch_db: HubSettings) -> None:
    """The console keeps its sessions in memory: the table refuses a 'link' row, so the
    gateway's database role cannot write itself an operator session."""
    with psycopg.connect(scratch_db.database_conninfo) as conn, \
            pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO web_sessions (cookie_hash, principal, signed_in_with, csrf, "
                     "expires_at) VALUES ('x', 'operator', 'link', 'c', now() + interval '1 day')")


def test_a_revoked_token_ends_its_session_at_the_next_request(
        gateway: GatewayProcess, store: PrincipalStore) -> None:
    name, token = new_token(store)
    with gateway.client() as browser:
        sign_in(browser, token)
        assert browser.get("/signed-in").status_code == 200
        store.revoke_tokens_except(name)
        assert browser.get("/signed-in").status_code == 303


def test_sign_out_needs_the_sessions_form_token_and_ends_the_session(
        gateway: GatewayProcess, store: PrincipalStore) -> None:
    _, token = new_token(store)
    with gateway.client() as browser:
        sign_in(browser, token)
        shown = browser.get("/signed-in")
        kept = browser.cookies[SESSION]
        origin = {"Origin": str(browser.base_url).rstrip("/")}
        refused = browser.post("/sign-out", data={"csrf_token": "not-it"}, headers=origin)
        assert refused.status_code == 403 and "did not come from this hub" in refused.text
        assert browser.get("/signed-in").status_code == 200
        out = browser.post("/sign-out", data={"csrf_token": csrf_of(shown)}, headers=origin)
        assert out.status_code == 303 and out.headers["location"].startswith("/sign-in")
        assert SESSION not in browser.cookies
    with gateway.client() as replay:  # the old cookie, kept by someone, no longer works
        replay.cookies.set(SESSION, kept)
        assert replay.get("/signed-in").status_code == 303


def test_pages_answer_errors_as_pages_and_the_api_as_problem_documents(
        gateway: GatewayProcess) -> None:
    with gateway.client() as browser:
        missing = browser.get("/no-such-page")
        api = browser.get("/v1/inbox")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "<h1>Not Found</h1>" in missing.text
    assert api.status_code == 401 and api.headers["content-type"] == "application/problem+json"
