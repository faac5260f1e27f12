"""Shared fixtures: the real Kafka and PostgreSQL, the `sendhub` program, Chromium.

Tests that need Kafka or PostgreSQL fail (never skip) when `CI` is set. Each test
session gets its own topic namespace and its own database, so runs never see each
other's data, nor the demo's. SENDHUB_TEST_INFRA=containers runs Kafka and PostgreSQL
in containers instead (tests/infrastructure.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg
import pytest

from services.shared.database import drop_database, upgrade
from services.shared.settings import HubSettings
from tests import infrastructure

if TYPE_CHECKING:
    from tests.browser_support import IdentityProvider

RUN_ID = uuid.uuid4().hex[:8]


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def unavailable(message: str) -> NoReturn:
    """Missing infrastructure: a failure under CI, never a skip; a skip in local runs only."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _need(what: str, host: str, port: int) -> None:
    if not _reachable(host, port):
        unavailable(f"{what} is not reachable on {host}:{port}; start it with deploy/local/up "
                    "or set SENDHUB_KAFKA_BOOTSTRAP / SENDHUB_DATABASE_URL")


@pytest.fixture(scope="session")
def base_settings() -> Iterator[HubSettings]:
    """Where this session's Kafka and PostgreSQL are (tests/infrastructure.py): deploy/local
    or SENDHUB_*, or with SENDHUB_TEST_INFRA=containers, containers started for it."""
    if infrastructure.chosen() == "local":
        yield HubSettings()
        return
    with infrastructure.containers(unavailable) as (bootstrap, database_url):
        # testcontainers' Kafka is plaintext and without an authorizer
        yield HubSettings(kafka_bootstrap=bootstrap, database_url=database_url,
                          kafka_security_protocol="PLAINTEXT")


@pytest.fixture(scope="session")
def kafka(base_settings: HubSettings) -> str:
    host, _, port = base_settings.kafka_bootstrap.split(",")[0].rpartition(":")
    _need("Kafka", host, int(port))
    return base_settings.kafka_bootstrap


@pytest.fixture(scope="session")
def database_url(base_settings: HubSettings) -> Iterator[str]:
    """A database of this test session's own, dropped at the end."""
    url = base_settings.database_url
    host = url.hosts()[0]
    _need("PostgreSQL", host["host"] or "127.0.0.1", host["port"] or 5432)
    name = f"sendhub_test_{RUN_ID}"
    admin = base_settings.database_conninfo  # with the password the settings found
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    # Naming the owner: the services under test connect as it, not as their own roles
    # (tests/integration/test_database_roles.py tests those).
    test_url = base_settings.database_url_for(name)
    upgrade(HubSettings(database_url=test_url))  # as `sendhub db upgrade` does
    yield test_url
    drop_database(admin, name)


@pytest.fixture(scope="module")
def scratch_db(database_url: str, request: pytest.FixtureRequest) -> Iterator[HubSettings]:
    """A database of one test module's own, for tests that damage or bind it."""
    name = f"{database_url.rsplit('/', 1)[1]}_{request.module.__name__.rsplit('.', 1)[-1]}"[:63]
    admin = HubSettings(database_url=database_url).database_conninfo
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    scratch = HubSettings(database_url=database_url.rsplit("/", 1)[0] + f"/{name}")
    upgrade(scratch)
    yield scratch
    drop_database(admin, name)


@pytest.fixture(scope="session")
def hub_env(base_settings: HubSettings, kafka: str, database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """SENDHUB_* variables for services and tools under test. The session's services get
    their own Kafka users and least-privilege grants in its namespace (as
    `sendhub principals sync` gives them); at the end the session's topics, users and
    grants are deleted, like its database, so a developer's broker does not fill up."""
    namespace = f"test-{RUN_ID}."
    env = {
        "SENDHUB_KAFKA_BOOTSTRAP": kafka,
        "SENDHUB_KAFKA_SECURITY_PROTOCOL": base_settings.kafka_security_protocol,
        "SENDHUB_DATABASE_URL": database_url,
        "SENDHUB_TOPIC_NAMESPACE": namespace,
        "SENDHUB_RELAY_INTERVAL_SECONDS": "0.1",
        "SENDHUB_ANCHOR_INTERVAL_SECONDS": "0.5",
        "SENDHUB_DELIVERY_INTERVAL_SECONDS": "0.5",
        "SENDHUB_HTTP_PORT": "0",  # any free port: several services and sessions on one host
        "SENDHUB_METRICS_INTERVAL_SECONDS": "0.5",
        # An erasure's second pass over the topics waits for every process's key cache.
        "SENDHUB_KEY_CACHE_SECONDS": "1",
    }
    session = HubSettings(kafka_bootstrap=kafka, database_url=database_url,
                          topic_namespace=namespace,
                          kafka_security_protocol=base_settings.kafka_security_protocol)
    secured = session.kafka_security_protocol != "PLAINTEXT"
    if secured:
        from sendhub.principals_admin import sync

        sync(session)
    env["SENDHUB_TOKEN_FILE"] = str(_auditor_token(session, tmp_path_factory))
    yield env
    from kafka.admin import KafkaAdminClient

    from services.shared.kafka import client_options

    admin = KafkaAdminClient(**client_options(session), client_id="sendhub-tests")
    try:
        ours = [t for t in admin.list_topics() if t.startswith(namespace)]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()
    if secured:
        _forget_principals(session)


def _auditor_token(session: HubSettings, tmp: pytest.TempPathFactory) -> Path:
    """The CLI's identity in tests: an auditor, `auditor-tests`, with a bearer token."""
    from services.shared.access import Kind, Principal
    from services.shared.principals import PrincipalStore

    store = PrincipalStore(session.database_conninfo)
    store.add(Principal(Kind.auditor, "tests"))
    path = tmp.mktemp("credentials") / "auditor.token"
    path.write_text(store.issue_token("auditor-tests").token)
    path.chmod(0o600)
    return path


def _forget_principals(session: HubSettings) -> None:
    from sendhub.principals_admin import forget_namespace
    from services.shared.principals import PrincipalStore

    stored = PrincipalStore(session.database_conninfo).all()
    forget_namespace(session, [s.principal for s in stored])
    for leftover in session.credentials_dir.glob(f"{session.topic_namespace}*.password"):
        leftover.unlink()


@pytest.fixture(scope="session")
def settings(hub_env: dict[str, str]) -> HubSettings:
    return HubSettings(
        kafka_bootstrap=hub_env["SENDHUB_KAFKA_BOOTSTRAP"],
        database_url=hub_env["SENDHUB_DATABASE_URL"],
        topic_namespace=hub_env["SENDHUB_TOPIC_NAMESPACE"],
        kafka_security_protocol=hub_env["SENDHUB_KAFKA_SECURITY_PROTOCOL"],
        relay_interval_seconds=0.1,
        key_cache_seconds=1,
    )


@pytest.fixture(scope="session")
def db_settings(database_url: str) -> HubSettings:
    """Settings for tests that need only PostgreSQL."""
    return HubSettings(database_url=database_url)


ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

CLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def cli(hub_env: dict[str, str]) -> CLI:
    """Run `sendhub ...` as a user would, against this session's broker, topics and database."""

    def run(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "sendhub.cli", *args], capture_output=True, text=True,
            cwd=ROOT, env={k: v for k, v in {**os.environ, **hub_env, "COLUMNS": "200",
                                             **env}.items() if v != ""}, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"sendhub {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (browser downloads are not possible here).

    Module-scoped: Playwright's sync API keeps an event loop running in this thread
    while it is open, which pytest-asyncio's tests elsewhere must not see."""
    executable = os.environ.get("SENDHUB_CHROMIUM") or shutil.which("chromium")
    if not executable:
        unavailable("chromium is not installed: run `make browser` (Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def identity_provider() -> Iterator[IdentityProvider]:
    """The local OpenID provider (tests/browser_support.py), one for the session: give
    each test's subjects their claims with `set_user`, and use subjects of their own."""
    from tests.browser_support import IdentityProvider

    with IdentityProvider() as provider:
        yield provider


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
