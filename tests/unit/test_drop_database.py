"""drop_database ends an autovacuum worker's session with a plain DROP when FORCE may
not, raises at once what this role may not drop, and gives up after its patience;
PostgreSQL played by a fake connection."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest
from psycopg import errors

from services.shared import database

NOT_MEMBER = "must be a member of the role whose process is being terminated"


class FakeServer:
    """One database: `own` sessions of this role (`reconnecting`: back as soon as ended),
    perhaps an autovacuum worker, perhaps another role's."""

    def __init__(self, *, worker: bool = False, own: int = 0, reconnecting: bool = False,
                 ours: bool = True, force_error: type[Exception] | None = None) -> None:
        self.worker, self.own, self.reconnecting, self.ours = worker, own, reconnecting, ours
        self.force_error = force_error
        self.statements: list[str] = []
        self.dropped = False
        self.row: tuple[bool] | None = None

    def connect(self, conninfo: str, autocommit: bool = False) -> FakeServer:
        assert autocommit
        return self

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None

    def execute(self, statement: Any, params: tuple[Any, ...] | None = None) -> FakeServer:
        text = statement if isinstance(statement, str) else statement.as_string(None)
        self.statements.append(text)
        if "FROM pg_database" in text:
            self.row = (self.ours,)
        elif "pg_terminate_backend" in text:
            self.own = 1 if self.reconnecting else 0
        elif "WITH (FORCE)" in text:
            if self.force_error:
                raise self.force_error("refused")
            if not self.ours:
                raise errors.InsufficientPrivilege('must be owner of database "x"')
            if self.worker:
                raise errors.InsufficientPrivilege(NOT_MEMBER)
            self.dropped = True
        elif text.startswith("DROP DATABASE"):
            if self.own:
                raise errors.ObjectInUse("being accessed by other users")
            self.worker = False  # a plain DROP signals autovacuum workers to end
            self.dropped = True
        return self

    def fetchone(self) -> tuple[bool] | None:
        return self.row

    def drops(self) -> list[str]:
        return [s for s in self.statements if s.startswith("DROP")]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database.time, "sleep", lambda s: None)


def drop(monkeypatch: pytest.MonkeyPatch, server: FakeServer, **kwargs: float) -> None:
    monkeypatch.setattr(database.psycopg, "connect", server.connect)
    database.drop_database("postgresql://sendhub@localhost/postgres", "sendhub_test_x", **kwargs)


def test_force_ends_the_sessions_of_this_role(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeServer(own=2)
    drop(monkeypatch, server)
    assert server.dropped and len(server.drops()) == 1


def test_an_autovacuum_worker_is_ended_by_a_plain_drop_after_this_roles_sessions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeServer(worker=True, own=1)
    drop(monkeypatch, server)
    assert server.dropped and not server.worker
    assert any("pg_terminate_backend" in s for s in server.statements)
    assert server.drops()[-1] == 'DROP DATABASE IF EXISTS "sendhub_test_x"'


def test_another_roles_database_is_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeServer(ours=False, worker=True)
    with pytest.raises(errors.InsufficientPrivilege, match="must be owner"):
        drop(monkeypatch, server)
    assert not server.dropped and len(server.drops()) == 1


def test_sessions_that_keep_coming_back_are_given_up_on_after_the_patience(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeServer(worker=True, own=1, reconnecting=True)
    with pytest.raises(errors.ObjectInUse):
        drop(monkeypatch, server, patience_s=0.05)
    assert not server.dropped and len(server.drops()) > 2


def test_other_errors_are_raised_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeServer(force_error=errors.WrongObjectType)
    with pytest.raises(errors.WrongObjectType):
        drop(monkeypatch, server)
    assert len(server.drops()) == 1
