"""Signing in and out of the web application.

People sign in with their organisation's account through OpenID Connect (authorization
code flow with PKCE, by authlib) when `SENDHUB_WEB_OIDC_ISSUER` is set: the ID token's
`SENDHUB_GATEWAY_OIDC_PRINCIPAL_CLAIM` must name an active principal, exactly as for the
gateway's bearer JWTs. A hub token (`sendhub principals add ... --token`) signs in too,
for a deployment without an identity provider and for the demo; the session then ends
when the token is revoked. Services and the operator never sign in here (the operator
uses `sendhub serve admin`). The sign-in form, before any session exists, is protected
from cross-site posting by a cookie that must match its hidden field.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

import anyio
from authlib.integrations.base_client.errors import OAuthError
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from sendhub.gateway.problems import Problem
from sendhub.web.context import Web, web
from sendhub.web.pages import home_of, page
from sendhub.web.security import (
    FORM_REFUSED,
    SignedIn,
    checked_form,
    cookie_name,
    same_origin,
    viewer,
)
from sendhub.web.sessions import SignedInWith
from services.shared.access import OPERATOR, Kind, Principal
from services.shared.principals import Unauthenticated, credential_id_of

router = APIRouter(include_in_schema=False)
Hub = Annotated[Web, Depends(web)]
FORM_COOKIE = "__Host-sendhub-sign-in"
LINK_SECONDS = 600


def safe_next(next_url: str | None) -> str | None:
    """Only a path of this hub (never `//elsewhere` or a full URL) is gone back to."""
    if next_url and next_url.startswith("/") and not next_url.startswith(("//", "/\\")):
        return next_url
    return None


def signed_in(hub: Web, request: Request, principal: Principal, how: SignedInWith,
              next_url: str | None, credential_id: Any = None) -> Response:
    cookie = hub.sessions.begin(principal.name, how, credential_id)
    presented = request.cookies.get(cookie_name(hub))
    if presented:  # a new sign-in never carries on an older session
        hub.sessions.end(presented)
    response = RedirectResponse(safe_next(next_url) or home_of(principal), status_code=303)
    response.set_cookie(cookie_name(hub), cookie, httponly=True, secure=True, samesite="lax", path="/",
                        max_age=int(hub.settings.web_session_hours * 3600))
    response.delete_cookie(FORM_COOKIE, path="/", secure=True, httponly=True)
    return response


def sign_in_page(request: Request, hub: Web, next_url: str | None, *, error: str | None = None,
                 status: int = 200, notice: str | None = None) -> Response:
    form_token = secrets.token_urlsafe(24)
    response = page(request, "sign_in.html.j2", None, title="Sign in", status=status,
                    error=error, notice=notice, next_url=safe_next(next_url) or "",
                    form_token=form_token, oidc=hub.oidc is not None, admin=hub.admin,
                    tokens=hub.settings.web_tokens_sign_in())
    response.set_cookie(FORM_COOKIE, form_token, httponly=True, secure=True, samesite="strict",
                        path="/", max_age=3600)
    return response


@router.get("/sign-in")
async def get_sign_in(request: Request, hub: Hub,
                      next: Annotated[str | None, Query()] = None,  # noqa: A002
                      signed_out: Annotated[bool, Query()] = False) -> Response:
    return sign_in_page(request, hub, next,
                        notice="You have signed out." if signed_out else None)


@router.post("/sign-in")
async def post_sign_in(request: Request, hub: Hub, token: Annotated[str, Form()] = "",
                       form_token: Annotated[str, Form()] = "",
                       next: Annotated[str, Form()] = "") -> Response:  # noqa: A002
    expected = request.cookies.get(FORM_COOKIE)
    if not (expected and secrets.compare_digest(expected, form_token) and same_origin(request)):
        return sign_in_page(request, hub, next, error=FORM_REFUSED, status=403)
    token = token.strip()
    if not hub.admin and not hub.settings.web_tokens_sign_in():
        return sign_in_page(request, hub, next, status=403, error=(
            "this hub signs people in with their organisation's account; hub tokens are "
            "for systems (SENDHUB_WEB_TOKEN_SIGN_IN)"))
    if hub.admin:
        return sign_in_page(request, hub, next, status=401, error=(
            "the administration console signs in only by the one-time link that "
            "`sendhub serve admin` printed when it started"))
    try:
        principal = await anyio.to_thread.run_sync(hub.principals.authenticate, token)
    except Unauthenticated as refused:
        return sign_in_page(request, hub, next, status=401,
                            error=f"That token did not sign you in: {refused}.")
    if principal.kind in (Kind.service, Kind.operator, Kind.connector):
        return sign_in_page(request, hub, next, status=403, error=(
            "services, connectors (systems) and the operator do not sign in here"))
    credential_id = credential_id_of(token)
    return await anyio.to_thread.run_sync(
        lambda: signed_in(hub, request, principal, "token", next, credential_id))


@router.get("/sign-in/oidc")
async def sign_in_with_provider(request: Request, hub: Hub,
                                next: Annotated[str | None, Query()] = None  # noqa: A002
                                ) -> Response:
    if hub.oidc is None:
        raise Problem(404, "this hub has no identity provider configured: sign in with a "
                      "hub token")
    request.session["next"] = safe_next(next) or ""
    redirect: Response = await hub.oidc.authorize_redirect(
        request, str(request.url_for("sign_in_callback")))
    return redirect


@router.get("/sign-in/callback", name="sign_in_callback")
async def sign_in_callback(request: Request, hub: Hub) -> Response:
    if hub.oidc is None:
        raise Problem(404, "this hub has no identity provider configured")
    next_url = request.session.pop("next", None)
    try:
        token = await hub.oidc.authorize_access_token(request)
    except OAuthError as refused:
        return sign_in_page(request, hub, next_url, status=401, error=(
            f"Your identity provider did not sign you in ({refused.error or 'refused'}"
            f"{': ' + refused.description if refused.description else ''})."))
    claim = hub.settings.gateway_oidc_principal_claim
    claims = dict(token.get("userinfo") or {})
    name = claims.get(claim)
    if name is None and token.get("access_token"):
        claims = dict(await hub.oidc.userinfo(token=token))
        name = claims.get(claim)
    principal = (await anyio.to_thread.run_sync(hub.principals.active, name)
                 if isinstance(name, str) else None)
    if principal is None or principal.kind in (Kind.service, Kind.operator, Kind.connector):
        return sign_in_page(request, hub, next_url, status=403, error=(
            f"You signed in as {claims.get('sub', 'an unknown account')}, but your account's "
            f"{claim} names no principal of this hub that may sign in here: ask your "
            "hub's operator to add it."))
    return await anyio.to_thread.run_sync(
        lambda: signed_in(hub, request, principal, "oidc", next_url))


@router.get("/sign-in/link")
async def sign_in_by_link(request: Request, hub: Hub, code: Annotated[str, Query()] = ""
                          ) -> Response:
    """The admin console's one-time link: it works once, for ten minutes."""
    until = hub.links.pop(code, None) if hub.admin else None
    if until is None or until < time.monotonic():
        return sign_in_page(request, hub, None, status=401, error=(
            "that sign-in link has been used or has expired: restart sendhub serve admin "
            "for a new one"))
    return await anyio.to_thread.run_sync(
        lambda: signed_in(hub, request, OPERATOR, "link", "/admin"))


def new_link(hub: Web) -> str:
    code = secrets.token_urlsafe(24)
    hub.links[code] = time.monotonic() + LINK_SECONDS
    return code


@router.post("/sign-out")
async def sign_out(request: Request, hub: Hub) -> Response:
    seen_by = await viewer(request, hub)
    await checked_form(request, seen_by)
    await anyio.to_thread.run_sync(hub.sessions.end, seen_by.cookie)
    response = RedirectResponse("/sign-in?signed_out=true", status_code=303)
    response.delete_cookie(cookie_name(hub), path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.get("/")
async def home(request: Request, seen_by: SignedIn) -> Response:
    return RedirectResponse(home_of(seen_by.principal), status_code=303)


@router.get("/signed-in")
async def nothing_here(request: Request, seen_by: SignedIn) -> Response:
    return page(request, "signed_in.html.j2", seen_by, title="Signed in")
