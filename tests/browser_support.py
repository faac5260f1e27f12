"""Browser-test support for the web application: a local OpenID Connect provider to sign
people in through, the steps a person takes on its sign-in page, and the accessibility
check (axe-core, WCAG 2.2 A and AA) with a screenshot that every page must pass.

The provider is the `oidc-provider-mock` package (a Flask app on authlib) served by
werkzeug on 127.0.0.1 in a background thread. What it does, read from its source:

* Any client is accepted unless `require_client_registration=True`: an unknown
  client_id gets any secret, any redirect URI and any token-endpoint auth method.
  `register_client` registers one through its RFC 7591 endpoint; the provider then
  picks the client_id and client_secret and checks them, the redirect URIs and the
  auth method (even without `require_client_registration`).
* Scopes: only openid, profile, email, address and phone are granted, others are
  dropped silently; an ID token is issued only with `openid`. Claims that are not
  standard OIDC claims (`sendhub_principal`) go into the ID token and userinfo whatever
  the scope; standard ones (name, email, ...) only with their scope (profile, email).
* PKCE is not implemented: code_challenge is accepted and ignored, as is
  code_verifier (a wrong verifier still gets tokens). `nonce` is echoed in the ID token
  when sent, required only with `require_nonce=True`.
* The issuer is taken from the Host header of each request, so use `issuer`
  (http://127.0.0.1:PORT, no trailing slash) both in the browser and on the back
  channel; via `localhost` the tokens would name another issuer.
* A subject the provider does not know may still sign in; it gets only
  {"email": subject}. Give it claims first with `set_user`.
* ID tokens are RS256, signed with a key made at start (JWKS at `jwks_uri`), and
  live as long as the access token (one hour); a refresh token is issued too. Their
  header names no `kid`: take the JWKS's one key (authlib's client does;
  PyJWT's PyJWKClient.get_signing_key_from_jwt fails).
* Its pages link Pico CSS from a CDN; offline they are unstyled, which is harmless.
  Its sign-in page fails axe itself (no <title>, small targets): check_page only the
  application's pages.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx
import oidc_provider_mock  # type: ignore[import-untyped]
import werkzeug.serving
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page

from tests.conftest import ARTIFACTS

HOST = "127.0.0.1"


@dataclass(frozen=True)
class RegisteredClient:
    """A client the provider registered: it chose the id and the secret."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str


class IdentityProvider:
    """The mock OpenID provider on 127.0.0.1, on a free port unless `port` is given.

    `users` maps subjects to their extra claims, e.g.
    ``{"head-100001": {"sendhub_principal": "school-100001"}}``; these users are also
    offered as one-click buttons on the sign-in page. Every start begins afresh (new
    signing key, no clients, no codes or tokens) with these users and those given to
    `set_user` since.
    """

    def __init__(self, users: Mapping[str, Mapping[str, object]] | None = None, *,
                 port: int = 0, require_client_registration: bool = False,
                 require_nonce: bool = False) -> None:
        self._users: dict[str, dict[str, object]] = {s: dict(c) for s, c in (users or {}).items()}
        self._port = port
        self._require_client_registration = require_client_registration
        self._require_nonce = require_nonce
        self._server: werkzeug.serving.BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the identity provider is already running")
        app = oidc_provider_mock.app(
            require_client_registration=self._require_client_registration,
            require_nonce=self._require_nonce,
            user_claims=[oidc_provider_mock.User(sub=s, claims=dict(c)) for s, c in self._users.items()])
        # Not run_server_in_thread: that binds "localhost", which may be ::1.
        server = werkzeug.serving.make_server(HOST, self._port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="identity-provider", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def issuer(self) -> str:
        """``http://127.0.0.1:PORT``: the `iss` of its tokens and its discovery document."""
        if self._server is None:
            raise RuntimeError("the identity provider is not running")
        return f"http://{HOST}:{self._server.server_port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.issuer}/userinfo"

    @property
    def end_session_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/end_session"

    def set_user(self, subject: str, /, **claims: object) -> None:
        """Give `subject` these claims (replacing any it had), in ID tokens issued from
        now on: ``set_user("head-100001", sendhub_principal="school-100001")``. The mock
        takes them at /users/<subject>, so a subject cannot hold a "/"."""
        if "/" in subject:
            raise ValueError(f"the identity provider cannot take claims for {subject!r}")
        self._users[subject] = dict(claims)
        if self._server is not None:
            response = httpx.put(f"{self.issuer}/users/{quote(subject, safe='')}", json=claims, timeout=10)
            response.raise_for_status()

    def register_client(self, redirect_uris: str | Sequence[str], *,
                        token_endpoint_auth_method: str = "client_secret_basic") -> RegisteredClient:
        """Register a client (RFC 7591). Lost at `stop`, as everything but the users."""
        uris = (redirect_uris,) if isinstance(redirect_uris, str) else tuple(redirect_uris)
        response = httpx.post(f"{self.issuer}/oauth2/clients", timeout=10, json={
            "redirect_uris": list(uris), "token_endpoint_auth_method": token_endpoint_auth_method})
        response.raise_for_status()
        body = response.json()
        return RegisteredClient(client_id=body["client_id"], client_secret=body["client_secret"],
                                redirect_uris=tuple(body["redirect_uris"]),
                                token_endpoint_auth_method=body["token_endpoint_auth_method"])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sign_in_at_provider(page: Page, subject: str) -> None:
    """On the provider's authorization page, type `subject` and press Authorize, as a
    person would, and wait until the browser has been sent back to the application
    (the redirect URI and any redirects of the application's after it)."""
    field = page.locator('input[name="sub"]')
    if field.count() != 1:
        raise AssertionError(f"not the identity provider's sign-in page: {page.url}\n"
                             f"{page.locator('body').inner_text()[:1000]}")
    provider = _origin(page.url)
    field.fill(subject)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(lambda url: _origin(url) != provider)


AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
_NODES_SHOWN = 3


def _violation(violation: Mapping[str, Any]) -> str:
    nodes = violation["nodes"]
    targets = ", ".join(" >> ".join(map(str, n["target"])) for n in nodes[:_NODES_SHOWN])
    more = f" and {len(nodes) - _NODES_SHOWN} more" if len(nodes) > _NODES_SHOWN else ""
    return (f"- {violation['id']} ({violation['impact']}): {violation['help']}\n"
            f"    {len(nodes)} node(s): {targets}{more}\n    {violation['helpUrl']}")


def check_page(page: Page, name: str) -> None:
    """Keep a full-page screenshot, test-artifacts/web-<name>.png, and fail on any WCAG
    2.2 level A or AA violation axe-core finds (its results in web-<name>.axe.json).

    Only `violations` fail: axe's `incomplete` results (such as contrast over an image)
    need a person to look and are in the JSON."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"page name {name!r} is not usable in a file name")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"web-{name}.png", full_page=True)
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": list(AXE_TAGS)},
                                       "resultTypes": ["violations"]})
    response: dict[str, Any] = results.response
    (ARTIFACTS / f"web-{name}.axe.json").write_text(json.dumps(response, indent=2))
    violations: list[dict[str, Any]] = response["violations"]
    if violations:
        raise AssertionError(
            f"{page.url} ({name}) has {len(violations)} WCAG 2.2 A/AA violation(s) by axe-core "
            f"{response.get('testEngine', {}).get('version', '?')}:\n"
            + "\n".join(_violation(v) for v in violations))
