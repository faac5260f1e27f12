"""The pages each app serves: the gateway's for settings, trusts, LAs and auditors."""

from __future__ import annotations

from fastapi import APIRouter

from sendhub.web import inbox, oversight, pupils


def gateway_pages() -> list[APIRouter]:
    """The page routers the gateway's process serves (sign-in is added by install_web)."""
    return [inbox.router, oversight.router, pupils.router]
