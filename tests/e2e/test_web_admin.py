"""The operator's administration console in Chromium: `sendhub serve admin` as its own
process on this session's database and broker (as the operator, as `hub_env` gives it),
beside a real gateway. The one-time link signs the operator in once; a school is added
with Kafka, given a token that works on the gateway, rotated and revoked; a webhook is
added and revoked; a registry CSV with a bad line is reported line by line exactly as
`sendhub settings import` reports it; and nobody else reaches the console's pages.

Needs PostgreSQL and Kafka, not the services: an integration test.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from sendhub.principal_rules import BUILT_IN
from services.shared.access import Kind, Principal
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings
from tests.browser_support import check_page
from tests.conftest import CLI, ROOT
from tests.gateway_support import GatewayProcess, trust

pytestmark = pytest.mark.integration
LOGS = ROOT / "test-artifacts" / "service-logs"
LINK = re.compile(r"https://127\.0\.0\.1:\d+/sign-in/link\?code=[A-Za-z0-9_-]+")


class AdminProcess:
    """`sendhub serve admin` on https://127.0.0.1:<free port>; its output in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env, "SENDHUB_ADMIN_URL": "https://127.0.0.1:0"}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.link = ""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sendhub.cli", "serve", "admin"], cwd=ROOT, env=self.env,
            stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the console exited: {self.log()[-3000:]}")
            for line in self.log().splitlines():
                if '"admin.listening"' in line:
                    self.port = int(json.loads(line)["port"])
                if not line.startswith("{") and (found := LINK.search(line)):
                    self.link = found.group(0)  # the printed line, not the log's copy
            if self.port and self.link and self._healthy():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the console did not start: {self.log()[-3000:]}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", verify=trust(), timeout=2).is_success
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="module")
def admin(hub_env: dict[str, str]) -> Iterator[AdminProcess]:
    LOGS.mkdir(parents=True, exist_ok=True)
    process = AdminProcess(hub_env, LOGS / f"admin-{uuid.uuid4().hex[:6]}.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def gateway(hub_env: dict[str, str]) -> Iterator[GatewayProcess]:
    LOGS.mkdir(parents=True, exist_ok=True)
    process = GatewayProcess(hub_env, LOGS / f"gateway-admin-{uuid.uuid4().hex[:6]}.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def operator(chromium: Any, admin: AdminProcess) -> Iterator[Page]:
    """The operator's browser, signed in with the link the console printed."""
    context = chromium.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(admin.link)
    try:
        yield page
    finally:
        context.close()


def press(page: Page, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state()


def heading(page: Page, text: str) -> None:
    expect(page.locator("h1")).to_have_text(text)


def inbox_status(gateway: GatewayProcess, token: str) -> int:
    with gateway.client(token) as client:
        return client.get("/v1/inbox").status_code


def test_the_one_time_link_signs_the_operator_in_once(
        operator: Page, admin: AdminProcess, chromium: Any) -> None:
    assert operator.url == f"{admin.url}/admin"
    heading(operator, "Administration")
    assert "Signed in as operator" in operator.locator("header").inner_text()
    check_page(operator, "admin-overview")
    again = chromium.new_context(ignore_https_errors=True)
    try:
        second = again.new_page()
        answer = second.goto(admin.link)
        assert answer is not None and answer.status == 401
        assert "that sign-in link has been used or has expired" in second.inner_text("main")
        check_page(second, "admin-link-used")
    finally:
        again.close()
    assert admin.log().count('"admin.sign_in_link"') == 1


def test_a_school_with_kafka_gets_a_token_shown_once_rotated_and_revoked(
        operator: Page, admin: AdminProcess, gateway: GatewayProcess, settings: HubSettings,
        cli: CLI) -> None:
    urn = f"{random.randint(600000, 699999)}"
    name = f"school-{urn}"
    password = settings.credentials_dir / f"{settings.topic_namespace}{name}.password"
    page = operator
    page.goto(f"{admin.url}/admin/principals")
    check_page(page, "admin-principals")
    page.get_by_role("link", name="Add a principal").click()
    page.get_by_label("Identifier").fill("12345")  # not 6 digits: the CLI's own error
    press(page, "Add the principal")
    by_cli = cli("principals", "add", "school", "12345", check=False)
    assert by_cli.returncode == 2
    assert by_cli.stderr.strip() in page.inner_text("main")
    assert "a school is identified by a 6-digit URN, not '12345'" in by_cli.stderr
    check_page(page, "admin-principal-add-refused")
    page.get_by_label("Identifier").fill(urn)
    page.get_by_label("Give it Kafka credentials and its own topics").check()
    press(page, "Add the principal")
    heading(page, f"Added {name}")
    shown = page.inner_text("main")
    assert f"Kafka user {settings.topic_namespace}{name}" in shown
    assert f"{settings.topic_namespace}sen.inbox.urn-{urn}" in shown  # its topic, created
    assert password.is_file()
    check_page(page, "admin-principal-added")

    page.get_by_role("link", name=f"Back to {name}").click()
    heading(page, name)
    check_page(page, "admin-principal")
    press(page, "Issue a token")
    token = page.locator("#secret").inner_text().strip()
    assert token.startswith("shb_") and "copy it now" in page.inner_text("main")
    check_page(page, "admin-token-shown-once")
    assert inbox_status(gateway, token) == 200
    page.goto(f"{admin.url}/admin/principals/{name}")
    assert token not in page.content()
    assert token not in admin.log()

    press(page, "Rotate")
    rotated = page.locator("#secret").inner_text().strip()
    assert "1 older token(s) revoked" in page.inner_text("main")
    assert inbox_status(gateway, token) == 401 and inbox_status(gateway, rotated) == 200
    page.goto(f"{admin.url}/admin/principals/{name}")
    press(page, "Issue a token")
    spare = page.locator("#secret").inner_text().strip()
    page.goto(f"{admin.url}/admin/principals/{name}")
    check_page(page, "admin-principal-tokens")
    spare_id = uuid.UUID(hex=spare.split("_")[1])
    page.get_by_role("button", name=f"Revoke token {spare_id}").click()
    heading(page, f"Tokens of {name} revoked")
    assert inbox_status(gateway, spare) == 401 and inbox_status(gateway, rotated) == 200

    page.goto(f"{admin.url}/admin/principals/{name}")
    page.get_by_role("link", name=f"Revoke {name}").click()
    heading(page, f"Revoke {name}?")
    check_page(page, "admin-principal-revoke-confirm")
    press(page, f"Yes, revoke {name}")
    heading(page, f"Revoked {name}")
    assert f"{settings.topic_namespace}{name}" in page.locator("dl.summary").inner_text()
    check_page(page, "admin-principal-revoked")
    assert inbox_status(gateway, rotated) == 401
    assert not password.exists()
    assert rotated not in admin.log()
    assert '"admin.principal_revoked"' in admin.log()


def test_services_and_the_operator_cannot_be_added_or_revoked(
        operator: Page, admin: AdminProcess, cli: CLI) -> None:
    page = operator
    page.goto(f"{admin.url}/admin/principals/new")
    form = {"csrf_token": page.locator('input[name="csrf_token"]').first.input_value()}
    origin = {"Origin": admin.url}
    added = page.request.post(f"{admin.url}/admin/principals", headers=origin,
                              form={**form, "kind": "service", "identifier": "ingest"})
    assert added.status == 422 and BUILT_IN in html.unescape(added.text())
    for name in ("operator", "service-gateway"):
        revoked = page.request.post(f"{admin.url}/admin/principals/{name}/revoke",
                                    headers=origin, form=form)
        assert revoked.status == 400
        assert f"{name} is built in and cannot be revoked" in revoked.text()
    assert cli("principals", "revoke", "operator", check=False).returncode == 2
    page.goto(f"{admin.url}/admin/principals")
    press(page, "Sync with the broker")
    heading(page, "Synced with the broker")
    assert re.search(r"principals synced: \d+ Kafka users", page.inner_text("main"))
    check_page(page, "admin-synced")
    forged = page.request.post(f"{admin.url}/admin/principals/operator/revoke",
                               headers=origin, form={"csrf_token": "guess"})
    assert forged.status == 403


def test_a_webhook_is_added_with_its_secret_shown_once_and_revoked(
        operator: Page, admin: AdminProcess, settings: HubSettings) -> None:
    receiver = PrincipalStore(settings.database_conninfo).add(
        Principal(Kind.school, f"{random.randint(700000, 799999)}")).principal.name
    page = operator
    page.goto(f"{admin.url}/admin/webhooks")
    page.get_by_label("Receiver").fill(receiver)
    page.get_by_label("HTTPS URL").fill("http://127.0.0.1:9/hook")
    press(page, "Add the webhook")
    assert "a webhook URL must be https://host/..." in page.inner_text("main")
    check_page(page, "admin-webhooks-refused")
    page.get_by_label("HTTPS URL").fill("https://127.0.0.1:9/hook")
    press(page, "Add the webhook")
    heading(page, f"Webhook added for {receiver}")
    secret = page.locator("#secret").inner_text().strip()
    assert secret and secret not in admin.log()
    check_page(page, "admin-webhook-added")
    page.get_by_role("link", name="Webhooks", exact=True).click()
    row = page.locator("tr", has_text=receiver)
    expect(row).to_contain_text("https://127.0.0.1:9/hook")
    check_page(page, "admin-webhooks")
    row.get_by_role("button").click()
    heading(page, "Webhook stopped")
    page.goto(f"{admin.url}/admin/webhooks")
    expect(page.locator("tr", has_text=receiver)).to_have_count(0)


def test_a_registry_csv_is_reported_line_by_line_as_the_cli_reports_it(
        operator: Page, admin: AdminProcess, cli: CLI, tmp_path: Path) -> None:
    first, second = (f"{random.randint(800000, 899999)}" for _ in range(2))
    csv = tmp_path / "registry.csv"
    csv.write_text("URN,EstablishmentName,PhaseOfEducation (name),LA (code)\n"
                   f"{first},Admin Test Primary,Primary,801\n"
                   "12345,Too Short School,Secondary,801\n"
                   f"{second},Admin Test Academy,Secondary,801\n", encoding="utf-8")
    page = operator
    page.goto(f"{admin.url}/admin/registry")
    check_page(page, "admin-registry")
    page.get_by_label("Registry CSV file").set_input_files(str(csv))
    press(page, "Import")
    heading(page, "Settings registry imported")
    summary = page.locator("#summary").inner_text()
    refused = page.locator("ul.refused li").all_inner_texts()
    by_cli = cli("settings", "import", str(csv), check=False)
    assert by_cli.stdout.strip().replace(str(csv), "registry.csv") == summary
    assert [line.replace(str(csv), "registry.csv") for line in by_cli.stderr.splitlines()
            if "skipped:" in line] == refused
    assert summary == "Imported 2 setting(s) from registry.csv; 1 row(s) skipped"
    assert refused == ["registry.csv:3: skipped: URN '12345' is not 6 digits"]
    lines = page.locator("tbody tr").all_inner_texts()
    assert [re.split(r"\s+", line.strip())[0] for line in lines] == ["2", "3", "4"]
    assert ["Refused" in line for line in lines] == [False, True, False]
    check_page(page, "admin-registry-report")


def test_nobody_else_reaches_the_console(
        chromium: Any, admin: AdminProcess, gateway: GatewayProcess,
        settings: HubSettings) -> None:
    store = PrincipalStore(settings.database_conninfo)
    school = store.add(Principal(Kind.school, f"{random.randint(900000, 999999)}")).principal
    token = store.issue_token(school.name).token
    context = chromium.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{gateway.url}/signed-in")
        page.locator("#token").fill(token)
        press(page, "Sign in")
        assert f"Signed in as {school.name}" in page.inner_text("header")
        missing = page.goto(f"{gateway.url}/admin/principals")
        assert missing is not None and missing.status == 404  # not served by the gateway
        # the browser sends the school's session cookie to the console too (same host)
        page.goto(f"{admin.url}/admin/principals")
        assert page.url == f"{admin.url}/sign-in?next=%2Fadmin%2Fprincipals"
        assert "one-time link" in page.inner_text("main")
        assert page.locator("#token").count() == 0
        check_page(page, "admin-sign-in")
        with httpx.Client(base_url=admin.url, verify=trust()) as anyone:
            posted = anyone.post("/admin/principals", data={"kind": "school",
                                                            "identifier": "100001"})
            assert posted.status_code == 303 and posted.headers["location"].startswith(
                "/sign-in")
    finally:
        context.close()
