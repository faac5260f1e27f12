"""Rendering a page: the layout, the navigation the signed-in principal has, error pages.

Errors on a page are pages too: a `Problem` raised by the shared reading functions (the
same ones the API raises) is shown as an HTML page with its status, and `SignInNeeded`
redirects to sign in. Every page is sent with headers that keep it out of caches and
frames and allow no script from anywhere but the hub.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sendhub.gateway.problems import Problem
from sendhub.web.context import TEMPLATES
from sendhub.web.security import SignInNeeded, Viewer
from services.shared.access import Kind, Principal

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; script-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
API_PREFIXES = ("/v1", "/docs", "/openapi.json", "/healthz")


@dataclass(frozen=True)
class Link:
    href: str
    label: str


def navigation(principal: Principal) -> list[Link]:
    """The pages a principal's work needs (each page still checks on its own)."""
    links = []
    if principal.kind in (Kind.school, Kind.post16, Kind.la):
        links.append(Link("/inbox", "Inbox"))
    if principal.kind in (Kind.trust, Kind.la):
        links.append(Link("/oversight", "Oversight"))
    if principal.kind is Kind.auditor:
        links.append(Link("/pupils", "Pupil history"))
    if principal.kind is Kind.operator:
        links.append(Link("/admin", "Administration"))
    return links


def home_of(principal: Principal) -> str:
    found = navigation(principal)
    return found[0].href if found else "/signed-in"


def page(request: Request, template: str, seen_by: Viewer | None, *, title: str,
         status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the hub's layout; `seen_by` None for the signed-out pages."""
    return TEMPLATES.TemplateResponse(request, template, {
        "title": title, "viewer": seen_by, "csrf": seen_by.csrf if seen_by else "",
        "nav": navigation(seen_by.principal) if seen_by else [],
        "current": request.url.path, **context}, status_code=status)


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(API_PREFIXES)


def error_page(request: Request, status: int, detail: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    response = page(request, "error.html.j2", None, title=HTTPStatus(status).phrase,
                    status=status, detail=detail, code=status,
                    signed_in_as=getattr(request.state, "principal", None))
    response.headers.update({k: v for k, v in (headers or {}).items()
                             if k.lower() == "retry-after"})
    return response


def sign_in_redirect(next_url: str) -> RedirectResponse:
    return RedirectResponse(f"/sign-in?next={quote(next_url, safe='')}", status_code=303)


def install_pages(app: FastAPI) -> None:
    """Sign-in redirects and security headers; the app's error handlers call `is_page`
    and `error_page` so an error on a page is a page."""

    @app.exception_handler(SignInNeeded)
    async def on_sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        return sign_in_redirect(exc.next_url)

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if is_page(request):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if request.url.scheme == "https":
                response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def problem_page(request: Request, problem: Problem) -> HTMLResponse:
    return error_page(request, problem.status, problem.detail, problem.headers)
