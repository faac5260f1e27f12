"""People sign in to the web application with their organisation's account: OpenID
Connect's authorization code flow against a local identity provider (oidc-provider-mock),
on the real gateway process and database, in Chromium. The ID token's
`sendhub_principal` claim names the principal, as it does for the API's bearer JWTs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.shared.access import Kind, Principal
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings
from tests.browser_support import IdentityProvider, check_page, sign_in_at_provider
from tests.gateway_support import GatewayProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(hub_env: dict[str, str], scratch_db: HubSettings,
            identity_provider: IdentityProvider,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    secret = tmp_path_factory.mktemp("oidc") / "client-secret"
    secret.write_text("web-client-secret\n")
    log_dir = Path(__file__).resolve().parents[2] / "test-artifacts" / "service-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    process = GatewayProcess({
        **hub_env, "SENDHUB_DATABASE_URL": str(scratch_db.database_url),
        "SENDHUB_WEB_OIDC_ISSUER": identity_provider.issuer,
        "SENDHUB_WEB_OIDC_CLIENT_ID": "sendhub-web",
        "SENDHUB_WEB_OIDC_CLIENT_SECRET_FILE": str(secret),
    }, log_dir / f"gateway-oidc-{uuid.uuid4().hex[:6]}.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(ignore_https_errors=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_person_signs_in_with_their_organisations_account(
        gateway: GatewayProcess, identity_provider: IdentityProvider, scratch_db: HubSettings,
        browser_page: Any) -> None:
    store = PrincipalStore(scratch_db.database_conninfo)
    person = store.add(Principal(Kind.auditor, f"oidc{uuid.uuid4().hex[:8]}")).principal
    subject = f"lead-{uuid.uuid4().hex[:8]}"
    identity_provider.set_user(subject, sendhub_principal=person.name, name="Sam Lead")
    page = browser_page
    page.goto(f"{gateway.url}/signed-in")
    assert page.url.startswith(f"{gateway.url}/sign-in?next=")
    assert page.locator("#token").count() == 0  # with a provider, tokens are for systems
    check_page(page, "sign-in-oidc")
    page.get_by_role("link", name="Sign in with your organisation's account").click()
    assert page.url.startswith(identity_provider.issuer)
    sign_in_at_provider(page, subject)
    assert page.url == f"{gateway.url}/signed-in"
    assert person.name in page.locator("main").inner_text()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["__Host-sendhub-session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"
    check_page(page, "signed-in")
    missing = page.goto(f"{gateway.url}/no-such-page")
    assert missing is not None and missing.status == 404
    check_page(page, "not-found")
    page.goto(f"{gateway.url}/signed-in")
    page.get_by_role("button", name="Sign out").click()
    assert "You have signed out." in page.locator("main").inner_text()
    check_page(page, "signed-out")
    page.goto(f"{gateway.url}/signed-in")
    assert "/sign-in?next=" in page.url


def test_an_account_naming_no_principal_of_the_hub_is_told_so_and_not_signed_in(
        gateway: GatewayProcess, identity_provider: IdentityProvider,
        browser_page: Any) -> None:
    subject = f"stranger-{uuid.uuid4().hex[:8]}"
    identity_provider.set_user(subject, sendhub_principal="school-999990")
    page = browser_page
    page.goto(f"{gateway.url}/sign-in")
    page.get_by_role("link", name="Sign in with your organisation's account").click()
    sign_in_at_provider(page, subject)
    text = page.locator("main").inner_text()
    assert f"You signed in as {subject}" in text and "names no principal" in text
    check_page(page, "sign-in-refused")
    assert "__Host-sendhub-session" not in {c["name"] for c in page.context.cookies()}
