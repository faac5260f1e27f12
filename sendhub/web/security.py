"""Who is looking at a page, and whether a form really came from this hub.

Every page but sign-in depends on `Viewer`: the signed-in principal, read from the
session cookie at each request (sign-out, expiry, a revoked token or principal end it at
once). Without a live session, `SignInNeeded` sends the browser to sign in and back.
Every form posts the session's `csrf_token` and comes from this hub's own origin
(`Origin`, else `Referer`); either check failing is a 403 page and nothing is done. The
cookie is `__Host-` prefixed (Secure, Path=/, no Domain), HttpOnly and SameSite=Lax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

import anyio
from fastapi import Depends, Request
from starlette.datastructures import FormData

from sendhub.gateway.problems import Problem, rate_limited
from sendhub.web.context import Web, web
from sendhub.web.sessions import WebSession, csrf_matches
from services.shared.access import OPERATOR, Principal

COOKIE = "__Host-sendhub-session"
ADMIN_COOKIE = "__Host-sendhub-admin-session"
"""Cookies belong to a host, not a port: the admin console's session has its own name,
so a setting's session on the gateway is never presented to the console, nor the other way."""


def cookie_name(hub: Web) -> str:
    return ADMIN_COOKIE if hub.admin else COOKIE
FORM_REFUSED = ("this form has expired or did not come from this hub's own page: go back, "
                "reload the page and try again")


class SignInNeeded(Exception):
    """No live session: sign in, then come back to `next_url`."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    session: WebSession
    cookie: str

    @property
    def csrf(self) -> str:
        return self.session.csrf


def here(request: Request) -> str:
    """The page to come back to after signing in: this one, or for a form posted after
    the session ended, the page the form was on (a POST cannot be replayed by a link)."""
    if request.method != "GET":
        referer = urlsplit(request.headers.get("referer", ""))
        if same_origin(request) and referer.path.startswith("/"):
            return referer.path + (f"?{referer.query}" if referer.query else "")
        return "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def viewer(request: Request, hub: Annotated[Web, Depends(web)]) -> Viewer:
    cookie = request.cookies.get(cookie_name(hub))
    if not cookie:
        raise SignInNeeded(here(request))
    session = await anyio.to_thread.run_sync(hub.sessions.find, cookie)
    if session is None:
        raise SignInNeeded(here(request))
    if session.signed_in_with == "link":
        principal: Principal | None = OPERATOR if hub.admin else None
    else:
        principal = await anyio.to_thread.run_sync(hub.principals.active, session.principal)
    if principal is None:
        raise SignInNeeded(here(request))
    request.state.principal = principal.name
    wait = hub.limiter.take(principal.name) if hub.limiter else 0
    if wait:
        raise rate_limited(wait)
    return Viewer(principal, session, cookie)


def same_origin(request: Request) -> bool:
    """The form was posted from a page of this hub (CSRF defence in depth)."""
    given = request.headers.get("origin") or request.headers.get("referer")
    if not given:
        return False
    origin, own = urlsplit(given), request.url
    return (origin.scheme, origin.netloc) == (own.scheme, own.netloc)


async def checked_form(request: Request, seen_by: Viewer) -> FormData:
    """The posted form, once it is known to come from this session's own page."""
    form = await request.form()
    token = form.get("csrf_token")
    if not same_origin(request) or not csrf_matches(seen_by.session,
                                                    token if isinstance(token, str) else None):
        raise Problem(403, FORM_REFUSED)
    return form


SignedIn = Annotated[Viewer, Depends(viewer)]
