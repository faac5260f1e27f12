"""The web application's browser-test infrastructure works: `check_page` passes an
accessible page and names the violations of an inaccessible one, and a person signs in
through `IdentityProvider` with an authorization code flow whose ID token carries the
claims set for them."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from tests.browser_support import IdentityProvider, RegisteredClient, check_page, sign_in_at_provider
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.integration

PIXEL = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
         '<rect width="40" height="40" fill="#1d70b8"/></svg>')

ACCESSIBLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Accessible page</title></head>
<body><main>
  <h1>Pupils moving in</h1>
  <img src="/pixel.svg" alt="Blue square" width="40" height="40">
  <form action="/search" method="get">
    <label for="upn">Unique pupil number</label>
    <input id="upn" name="upn" type="text">
    <button type="submit">Search</button>
  </form>
  <p style="color: #505a5f; background: #ffffff">Secondary text with enough contrast.</p>
</main></body></html>
"""

INACCESSIBLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inaccessible page</title></head>
<body><main>
  <h1>Pupils moving in</h1>
  <img src="/pixel.svg" width="40" height="40">
  <form action="/search" method="get">
    <input name="upn" type="text">
    <button type="submit">Search</button>
  </form>
  <p style="color: #c8c8c8; background: #ffffff">Faint text nobody can read.</p>
</main></body></html>
"""


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: str, content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Pages(_Quiet):
    PAGES = {"/accessible": ACCESSIBLE, "/inaccessible": INACCESSIBLE}

    def do_GET(self) -> None:
        if self.path == "/pixel.svg":
            self.reply(200, PIXEL, "image/svg+xml")
        elif self.path in self.PAGES:
            self.reply(200, self.PAGES[self.path])
        else:
            self.reply(404, "<!doctype html><title>Not found</title>")


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    for server in _serve(_Pages):
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1024, "height": 768})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_check_page_passes_an_accessible_page(page: Any, pages: str) -> None:
    page.goto(f"{pages}/accessible")

    check_page(page, "support-accessible")

    assert (ARTIFACTS / "web-support-accessible.png").stat().st_size > 0
    result = json.loads((ARTIFACTS / "web-support-accessible.axe.json").read_text())
    assert result["violations"] == []
    assert result["toolOptions"]["runOnly"]["values"] == [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
    assert {"image-alt", "label", "color-contrast"} <= {rule["id"] for rule in result["passes"]}


def test_check_page_names_each_violation(page: Any, pages: str) -> None:
    page.goto(f"{pages}/inaccessible")

    with pytest.raises(AssertionError) as failure:
        check_page(page, "support-inaccessible")

    message = str(failure.value)
    for rule in ("image-alt", "label", "color-contrast"):
        assert f"- {rule} (" in message
    assert "Images must have alternative text" in message
    assert "1 node(s): img" in message and "1 node(s): input" in message
    result = json.loads((ARTIFACTS / "web-support-inaccessible.axe.json").read_text())
    assert {v["id"] for v in result["violations"]} == {"image-alt", "label", "color-contrast"}
    assert (ARTIFACTS / "web-support-inaccessible.png").stat().st_size > 0


class RelyingParty:
    """The smallest relying party: /login sends the browser to the provider with state,
    nonce and a PKCE challenge; /callback checks the state, redeems the code at the token
    endpoint with the client's secret and verifies the ID token against the provider's
    JWKS, issuer, audience and nonce."""

    def __init__(self, provider: IdentityProvider) -> None:
        self.provider = provider
        self.claims: dict[str, Any] | None = None
        self._pending: dict[str, tuple[str, str]] = {}  # state: (nonce, code_verifier)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.client: RegisteredClient = provider.register_client(f"{self.url}/callback")
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> RelyingParty:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()

    def login_redirect(self) -> str:
        state, nonce, verifier = (secrets.token_urlsafe(16) for _ in range(3))
        self._pending[state] = (nonce, verifier)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        return self.provider.authorization_endpoint + "?" + urlencode({
            "response_type": "code", "client_id": self.client.client_id,
            "redirect_uri": self.client.redirect_uris[0], "scope": "openid profile",
            "state": state, "nonce": nonce,
            "code_challenge": challenge.decode(), "code_challenge_method": "S256"})

    def callback(self, query: dict[str, list[str]]) -> dict[str, Any]:
        nonce, verifier = self._pending.pop(query["state"][0])
        response = httpx.post(self.provider.token_endpoint, timeout=10, data={
            "grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": self.client.redirect_uris[0], "code_verifier": verifier},
            auth=(self.client.client_id, self.client.client_secret))
        response.raise_for_status()
        id_token = response.json()["id_token"]
        # Its tokens name no `kid` (PyJWKClient.get_signing_key_from_jwt fails), and its
        # JWKS holds the one key.
        [key] = jwt.PyJWKSet.from_dict(httpx.get(self.provider.jwks_uri, timeout=10).json()).keys
        claims: dict[str, Any] = jwt.decode(id_token, key, algorithms=["RS256"],
                                            audience=self.client.client_id, issuer=self.provider.issuer)
        assert claims["nonce"] == nonce
        return claims

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        party = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/login":
                    self.reply(302, "", headers={"Location": party.login_redirect()})
                elif url.path == "/callback":
                    try:
                        party.claims = party.callback(parse_qs(url.query))
                    except Exception as error:  # shown on the page, for the test to report
                        self.reply(500, f"<!doctype html><title>Error</title><pre>{html.escape(repr(error))}")
                        return
                    principal = html.escape(str(party.claims.get("sendhub_principal")))
                    self.reply(200, f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signed in</title></head>
<body><main><h1>Signed in</h1><p>You are signed in as <strong>{principal}</strong>.</p></main></body>
</html>""")
                else:
                    self.reply(404, "<!doctype html><title>Not found</title>")

        return Handler


def test_sign_in_with_the_authorization_code_flow(page: Any, identity_provider: IdentityProvider) -> None:
    subject = f"head-{secrets.token_hex(4)}"
    identity_provider.set_user(subject, sendhub_principal="school-100001", name="Ada Head")

    with RelyingParty(identity_provider) as app:
        page.goto(f"{app.url}/login")
        assert page.url.startswith(identity_provider.authorization_endpoint)

        sign_in_at_provider(page, subject)

        assert page.url.startswith(f"{app.url}/callback?"), page.url
        assert page.title() == "Signed in", page.content()
        assert "school-100001" in page.locator("main").inner_text()
        check_page(page, "support-signed-in")
    assert app.claims is not None
    assert app.claims["sub"] == subject
    assert app.claims["sendhub_principal"] == "school-100001"
    assert app.claims["name"] == "Ada Head"  # standard: sent with the profile scope


def _authorize(provider: IdentityProvider, subject: str, **params: str) -> str:
    """The code the provider gives for `subject`, its form posted without a browser."""
    query = {"response_type": "code", "client_id": "any-client", "scope": "openid",
             "redirect_uri": "http://127.0.0.1:9/callback", "state": "s", **params}
    response = httpx.post(provider.authorization_endpoint, params=query, data={"sub": subject})
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def _tokens(provider: IdentityProvider, code: str, **data: str) -> httpx.Response:
    return httpx.post(provider.token_endpoint, auth=("any-client", "any-secret"), data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": "http://127.0.0.1:9/callback", **data})


def test_the_mock_accepts_any_client_and_does_not_check_pkce(identity_provider: IdentityProvider) -> None:
    """Quirks of the mock the web application's tests must not rely on the other way."""
    def claims(response: httpx.Response) -> dict[str, Any]:
        return jwt.decode(response.json()["id_token"], options={"verify_signature": False})

    identity_provider.set_user("pkce-subject", sendhub_principal="la-201")

    code = _authorize(identity_provider, "pkce-subject",
                      code_challenge="x" * 43, code_challenge_method="S256")
    response = _tokens(identity_provider, code, code_verifier="not-the-verifier-" * 3)

    assert response.status_code == 200, response.text
    assert claims(response)["sendhub_principal"] == "la-201"
    assert claims(response)["iss"] == identity_provider.issuer
    assert "kid" not in jwt.get_unverified_header(response.json()["id_token"])
    unknown = _tokens(identity_provider, _authorize(identity_provider, "nobody-set"))
    assert {k: v for k, v in claims(unknown).items() if k in ("sub", "email", "sendhub_principal")} == {
        "sub": "nobody-set"}  # its {"email": sub} is a standard claim, not sent without the email scope
