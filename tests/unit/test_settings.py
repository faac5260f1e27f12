"""Where the database password comes from, and which passwords are refused (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.shared import settings as settings_module
from services.shared.settings import HubSettings, InsecureDatabasePassword


@pytest.fixture(autouse=True)
def no_password_from_the_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the developer's environment nor deploy/local/up's file decides these tests."""
    for name in ("SENDHUB_DATABASE_URL", "SENDHUB_DATABASE_PASSWORD",
                 "SENDHUB_DATABASE_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(settings_module, "LOCAL_PASSWORD_FILE", tmp_path / "absent")


def test_the_default_url_carries_no_password() -> None:
    settings = HubSettings()
    assert settings.database_url.hosts()[0]["password"] is None
    assert settings.resolved_database_password() is None
    assert settings.database_conninfo == "postgresql://sendhub@127.0.0.1:5432/sendhub"
    # Empty tells libpq "none given", so it looks in ~/.pgpass.
    assert settings.eventsourcing_env()["POSTGRES_PASSWORD"] == ""


def test_the_password_from_the_environment_reaches_both_connections(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDHUB_DATABASE_PASSWORD", "s3cret/with@odd:chars")
    settings = HubSettings()
    assert settings.database_conninfo == (
        "postgresql://sendhub:s3cret%2Fwith%40odd%3Achars@127.0.0.1:5432/sendhub")
    assert settings.eventsourcing_env()["POSTGRES_PASSWORD"] == "s3cret/with@odd:chars"
    assert "s3cret" not in repr(settings)


def test_the_password_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text("from-a-secret\n")
    settings = HubSettings(database_password_file=secret)
    assert settings.resolved_database_password() == "from-a-secret"
    assert settings.database_conninfo == "postgresql://sendhub:from-a-secret@127.0.0.1:5432/sendhub"


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    settings = HubSettings(database_password_file=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="cannot read the database password file .*nowhere"):
        settings.resolved_database_password()


def test_the_local_deploys_file_is_found_when_it_exists(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    written = tmp_path / "password"
    monkeypatch.setattr(settings_module, "LOCAL_PASSWORD_FILE", written)
    settings = HubSettings()
    assert settings.resolved_database_password() is None  # before deploy/local/up ran
    written.write_text("sendhub\n")
    assert settings.resolved_database_password() == "sendhub"
    assert settings.eventsourcing_env()["POSTGRES_PASSWORD"] == "sendhub"


def test_a_url_that_carries_a_password_still_works(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    written = tmp_path / "password"
    written.write_text("other\n")
    monkeypatch.setattr(settings_module, "LOCAL_PASSWORD_FILE", written)
    settings = HubSettings(database_url="postgresql://hub:p%40ss@db.trust.internal:5433/hub")
    assert settings.resolved_database_password() == "p@ss"
    assert settings.database_conninfo == "postgresql://hub:p%40ss@db.trust.internal:5433/hub"
    env = settings.eventsourcing_env()
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"],
            env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == (
        "db.trust.internal", "5433", "hub", "hub", "p@ss")


def test_a_password_given_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="given twice"):
        HubSettings(database_url="postgresql://hub:one@db.trust.internal/hub",
                    database_password="two")


@pytest.mark.parametrize("url", [
    "postgresql://sendhub:sendhub@db.trust.internal:5432/sendhub",
    "postgresql://hub:changethis@10.0.0.5/hub",
])
def test_a_placeholder_password_over_the_network_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        HubSettings(database_url=url)


def test_a_placeholder_password_file_over_the_network_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text("changethis\n")
    settings = HubSettings(database_url="postgresql://hub@db.trust.internal/hub",
                           database_password_file=secret)
    with pytest.raises(InsecureDatabasePassword, match="SENDHUB_DATABASE_PASSWORD"):
        _ = settings.database_conninfo


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.1.1"])
def test_the_local_deploys_placeholder_is_accepted_on_loopback(host: str) -> None:
    settings = HubSettings(database_url=f"postgresql://sendhub:sendhub@{host}:5432/sendhub")
    assert settings.resolved_database_password() == "sendhub"


def test_with_no_user_in_the_url_each_process_connects_as_its_role() -> None:
    settings = HubSettings()  # the default URL names no user
    assert settings.database_user == "sendhub"  # the tools: the owner
    records = settings.for_service("records")
    assert records.database_user == "sendhub_records"
    assert records.database_conninfo == "postgresql://sendhub_records@127.0.0.1:5432/sendhub"
    assert records.eventsourcing_env()["POSTGRES_USER"] == "sendhub_records"
    assert settings.as_database_role("sendhub_reader").database_user == "sendhub_reader"
    assert settings.database_user == "sendhub"  # a copy: the original is unchanged


def test_a_user_named_in_the_url_is_used_by_every_process() -> None:
    settings = HubSettings(database_url="postgresql://hub@db.trust.internal/hub")
    assert settings.for_service("records").database_user == "hub"
    assert settings.as_database_role("sendhub_reader").database_conninfo == (
        "postgresql://hub@db.trust.internal/hub")


def test_each_role_finds_its_own_local_password_file(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setattr(settings_module, "LOCAL_PASSWORD_FILE", tmp_path / "password")
    (tmp_path / "password").write_text("sendhub\n")
    (tmp_path / "sendhub_records.password").write_text("records-own\n")
    settings = HubSettings()
    assert settings.resolved_database_password() == "sendhub"
    assert settings.for_service("records").resolved_database_password() == "records-own"
    assert settings.for_service("ingest").resolved_database_password() is None


def test_a_password_file_given_is_the_roles_own(tmp_path: Path) -> None:
    secret = tmp_path / "records-secret"
    secret.write_text("from-a-secret\n")
    records = HubSettings(database_password_file=secret).for_service("records")
    assert records.database_conninfo == (
        "postgresql://sendhub_records:from-a-secret@127.0.0.1:5432/sendhub")


def test_another_databases_url_names_the_same_user() -> None:
    reader = HubSettings(database_password="s3cret").as_database_role("sendhub_reader")
    assert reader.database_url_for("other") == "postgresql://sendhub_reader@127.0.0.1:5432/other"
    kept = HubSettings(database_url="postgresql://hub:p%40ss@db.trust.internal:5433/hub")
    assert kept.database_url_for("other") == "postgresql://hub:p%40ss@db.trust.internal:5433/other"
