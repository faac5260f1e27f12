"""Adding the web application to a FastAPI app (the gateway's, or the admin console's).

Wiring only: the sign-in routes, the static stylesheet, the layout's error pages and
headers, the short-lived signed cookie authlib keeps the OpenID Connect state in, and the
identity provider when one is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authlib.integrations.starlette_client import OAuth
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from sendhub.gateway.ratelimit import RateLimiter
from sendhub.local_deploy import secret_file
from sendhub.web import signin
from sendhub.web.context import STATIC, Web
from sendhub.web.pages import install_pages
from services.shared.settings import LOCAL_DIR, HubSettings

SIGN_IN_STATE_COOKIE = "sendhub-sign-in-state"
SIGN_IN_STATE_SECONDS = 600


def identity_provider(settings: HubSettings) -> Any | None:
    """authlib's client for the configured OpenID Connect provider, or None."""
    if settings.web_oidc_issuer is None:
        return None
    if not settings.web_oidc_client_id:
        raise ValueError("SENDHUB_WEB_OIDC_ISSUER needs SENDHUB_WEB_OIDC_CLIENT_ID (and "
                         "SENDHUB_WEB_OIDC_CLIENT_SECRET_FILE for a confidential client)")
    secret = (settings.web_oidc_client_secret_file.read_text().strip()
              if settings.web_oidc_client_secret_file else None)
    oauth = OAuth()
    return oauth.register(
        "people", client_id=settings.web_oidc_client_id, client_secret=secret,
        server_metadata_url=settings.web_oidc_issuer.rstrip("/")
        + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile", "code_challenge_method": "S256"})


def cookie_secret(settings: HubSettings) -> str:
    path = settings.web_cookie_secret_file or LOCAL_DIR / "web-cookie.secret"
    return path.read_text().strip() if settings.web_cookie_secret_file else secret_file(path)


def install_web(app: FastAPI, settings: HubSettings, routers: Sequence[APIRouter], *,
                admin: bool = False, limiter: RateLimiter | None = None) -> Web:
    hub = Web.from_settings(settings, admin=admin)
    hub.oidc = None if admin else identity_provider(settings)
    hub.limiter = limiter
    app.state.web = hub
    app.add_middleware(SessionMiddleware, secret_key=cookie_secret(settings),
                       session_cookie=SIGN_IN_STATE_COOKIE, max_age=SIGN_IN_STATE_SECONDS,
                       same_site="lax", https_only=True)
    install_pages(app)
    app.include_router(signin.router)
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return hub
