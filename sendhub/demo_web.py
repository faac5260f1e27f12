"""The demonstration's last act: the web application, left running, with the address
and the sign-in of each role the demo created.

Each person gets a hub token (one day) to paste at the sign-in page, as a trust without
an identity provider would hand them out; with `SENDHUB_WEB_OIDC_ISSUER` set they would
sign in with their organisation's account instead. The operator's console
(`sendhub serve admin`) prints its own one-time link.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from sendhub.demo_access import AUDITOR, BRISTOL
from services.shared.access import Kind, Principal
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings


@dataclass(frozen=True)
class WebRole:
    who: str
    principal: Principal
    start: str
    what: str


ROLES = (
    WebRole("Receiving SENCO, Riverside Primary School", Principal(Kind.school, "131002"),
            "/inbox", "Amira's and Dylan's packets; send Dylan's receipt"),
    WebRole("SENCO, Hillcrest Academy", Principal(Kind.school, "137003"), "/inbox",
            "Ben's packet, with his EHC plan"),
    WebRole("SEND lead, Severn Vale Learning Trust",
            Principal(Kind.trust, "severn-vale-learning-trust"), "/oversight",
            "the trust's schools: transfers on time, unacknowledged packets"),
    WebRole("EHC team, Bristol City Council (LA 801)", BRISTOL, "/oversight",
            "the LA's schools, EHC clocks; its inbox of plans and lost pupils"),
    WebRole("Auditor", AUDITOR, "/pupils", "replay a pupil as known at an instant"),
)


@dataclass(frozen=True)
class SignIn:
    role: WebRole
    token: str


def web_sign_ins(settings: HubSettings) -> list[SignIn]:
    """A one-day token for each role (the principals are added if the demo has not)."""
    store = PrincipalStore(settings.database_conninfo)
    found = []
    for role in ROLES:
        if store.active(role.principal.name) is None:
            store.add(role.principal)
        found.append(SignIn(role, store.issue_token(role.principal.name, days=1).token))
    return found


def show_web(console: Console, gateway_url: str, sign_ins: list[SignIn],
             admin_link: str | None) -> None:
    console.print(Rule("The hub in a browser"))
    table = Table(title="Open these addresses (the certificate is the hub's local CA's: "
                  ".cache/local/tls/ca.pem; accept it or import it in your browser)",
                  show_lines=True)
    table.add_column("Who")
    table.add_column("Address")
    table.add_column("Sign in with this hub token")
    table.add_column("What to look at")
    for sign_in in sign_ins:
        table.add_row(sign_in.role.who, f"{gateway_url}{sign_in.role.start}", sign_in.token,
                      sign_in.role.what)
    if admin_link:
        table.add_row("Operator (administration console)", admin_link,
                      "(the link signs you in, once)", "principals, tokens, webhooks, "
                      "the settings registry")
    console.print(table)


def keep_serving(console: Console) -> None:
    """At a terminal, the web application runs until Ctrl+C; otherwise (a pipe, a CI job)
    the demo ends now, saying so."""
    if not sys.stdin.isatty():
        console.print("Not a terminal: the web application stops with the demo. Run "
                      "`make demo` in a terminal to keep it open.")
        return
    console.print("[bold]The web application is running. Press Ctrl+C to stop the demo."
                  "[/bold]")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print()
