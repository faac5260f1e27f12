"""What the web pages use, built once per app: sessions, principals, sign-in, templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from sendhub.gateway.ratelimit import RateLimiter
from sendhub.web.sessions import ConsoleSessions, WebSessions
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings

TEMPLATES = Jinja2Templates(env=Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True))
"""Every value escaped: the templates are named `*.html.j2`, which Starlette's default
(`select_autoescape()`, by extension) would leave unescaped."""
STATIC = Path(__file__).parent / "static"


@dataclass
class Web:
    settings: HubSettings
    sessions: WebSessions | ConsoleSessions
    principals: PrincipalStore
    oidc: Any | None = None  # authlib's StarletteOAuth2App when OpenID Connect is set
    admin: bool = False
    """The operator's console (`sendhub serve admin`): sign-in by its one-time link."""
    links: dict[str, float] = field(default_factory=dict)
    """One-time sign-in codes of the admin console, with when each stops working."""
    limiter: RateLimiter | None = None
    """The gateway's per-principal rate limit, which its pages share with its API."""

    @classmethod
    def from_settings(cls, settings: HubSettings, *, admin: bool = False) -> Web:
        conninfo = settings.database_conninfo
        lasting = {"hours": settings.web_session_hours,
                   "idle_minutes": settings.web_idle_minutes}
        sessions = (ConsoleSessions(**lasting) if admin
                    else WebSessions(conninfo, **lasting))
        return cls(settings, sessions, PrincipalStore(conninfo), oidc=None, admin=admin)


def web(request: Request) -> Web:
    found: Web = request.app.state.web
    return found
