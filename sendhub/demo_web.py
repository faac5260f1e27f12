"""The demonstration's last act: the web application, left running, with the address
and the sign-in of each role the demo created.

Each person gets a hub token (one day) to paste at the sign-in page, as a trust without
an identity provider would hand them out; with `SENDHUB_WEB_OIDC_ISSUER` set they would
sign in with their organisation's account instead. The operator's console
(`sendhub serve admin`) prints its own one-time link.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

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


ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"https?://\S+/sign-in/link\?code=[A-Za-z0-9_-]+")


def start_admin(log_dir: Path, timeout: float = 60) -> tuple[subprocess.Popen[bytes], Path, str]:
    """`sendhub serve admin` on a free loopback port; its one-time sign-in link."""
    log_path = log_dir / "admin.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "sendhub.cli", "serve", "admin"], cwd=ROOT,
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "SENDHUB_ADMIN_URL": "https://127.0.0.1:0"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the admin console exited; see {log_path}")
        text = log_path.read_text()
        listening = any('"admin.listening"' in line for line in text.splitlines())
        found = LINK.search("\n".join(line for line in text.splitlines()
                                      if not line.startswith("{")))
        if listening and found:
            return process, log_path, found.group(0)
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"the admin console did not start within {timeout:.0f} s; see {log_path}")


SIGN_INS_FILE = ROOT / ".cache" / "demo" / "web-sign-ins.txt"


def show_web(console: Console, gateway_url: str, sign_ins: list[SignIn],
             admin_link: str | None) -> None:
    """Each role's address and token, whole (a token cut short signs nobody in), also
    written to .cache/demo/web-sign-ins.txt (mode 600) to copy from."""
    console.print(Rule("The hub in a browser"))
    console.print("Open these addresses. The certificate is signed by the hub's local CA "
                  "(.cache/local/tls/ca.pem): import it in your browser, or accept the "
                  "warning. Paste the token at the sign-in page.")
    lines = []
    for sign_in in sign_ins:
        lines += [f"{sign_in.role.who}: {sign_in.role.what}",
                  f"    {gateway_url}{sign_in.role.start}",
                  f"    token: {sign_in.token}"]
    if admin_link:
        lines += ["Operator, the administration console (principals, tokens, webhooks, "
                  "the settings registry): this link signs you in, once, within 10 minutes",
                  f"    {admin_link}"]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    SIGN_INS_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(SIGN_INS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    console.print(f"(also in {SIGN_INS_FILE.relative_to(ROOT)})")


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
