"""The console's bearer tokens: issue one, rotate (as `sendhub principals rotate`), revoke.

A new token is on its result page only, once, with a warning to copy it now: it is kept
only as an scrypt hash, never logged, and the page is sent `Cache-Control: no-store`.
"""

from __future__ import annotations

import uuid

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from sendhub.gateway.problems import Problem
from sendhub.principals_admin import rotate_token
from sendhub.web.admin import Hub, Operator, field, recorded, token_days
from sendhub.web.pages import page
from sendhub.web.security import checked_form
from services.shared.principals import IssuedToken, UnknownPrincipal

router = APIRouter(include_in_schema=False)


def shown_once(request: Request, seen_by: Operator, name: str, issued: IssuedToken,
               messages: list[str]) -> Response:
    return page(request, "admin/done.html.j2", seen_by, title=f"New token for {name}",
                messages=messages, principal=name, secret=issued.token, secret_label="Token",
                secret_expires=issued.expires_at)


async def days_of(request: Request, seen_by: Operator) -> int:
    form = await checked_form(request, seen_by)
    try:
        return token_days(field(form, "days") or "90")
    except ValueError as exc:
        raise Problem(422, str(exc)) from None


@router.post("/admin/principals/{name}/tokens")
async def issue(request: Request, name: str, seen_by: Operator, hub: Hub) -> Response:
    days = await days_of(request, seen_by)
    try:
        issued = await anyio.to_thread.run_sync(
            lambda: hub.principals.issue_token(name, days=days))
    except UnknownPrincipal as exc:
        raise Problem(409, str(exc)) from None
    recorded("token_issued", seen_by, name, credential=str(issued.credential_id), days=days)
    return shown_once(request, seen_by, name, issued, [
        f"token for {name}, valid until {issued.expires_at:%Y-%m-%d}; shown once, keep it "
        "secret"])


@router.post("/admin/principals/{name}/rotate")
async def rotate(request: Request, name: str, seen_by: Operator, hub: Hub) -> Response:
    days = await days_of(request, seen_by)
    try:
        issued, with_old = await anyio.to_thread.run_sync(rotate_token, hub.principals, name,
                                                          days)
    except UnknownPrincipal as exc:
        raise Problem(409, str(exc)) from None
    recorded("token_rotated", seen_by, name, credential=str(issued.credential_id),
             revoked=with_old)
    return shown_once(request, seen_by, name, issued, [
        f"new token for {name}, valid until {issued.expires_at:%Y-%m-%d}; {with_old} older "
        "token(s) revoked"])


@router.post("/admin/principals/{name}/tokens/revoke")
async def revoke(request: Request, name: str, seen_by: Operator, hub: Hub) -> Response:
    """One token (`credential`), or every token of the principal (no `credential`)."""
    form = await checked_form(request, seen_by)
    given = field(form, "credential")
    if given:
        try:
            credential = uuid.UUID(given)
        except ValueError:
            raise Problem(422, f"{given!r} is not a token's id") from None
        if not await anyio.to_thread.run_sync(hub.principals.revoke_token, name, credential):
            raise Problem(409, f"{name} has no live token {credential}")
        recorded("token_revoked", seen_by, name, credential=str(credential))
        message = f"revoked token {credential} of {name}"
    else:
        count = await anyio.to_thread.run_sync(hub.principals.revoke_tokens_except, name)
        recorded("tokens_revoked", seen_by, name, revoked=count)
        message = f"revoked {count} token(s) of {name}"
    return page(request, "admin/done.html.j2", seen_by, title=f"Tokens of {name} revoked",
                messages=[message + "; sessions signed in with them end at once"],
                principal=name)
