"""drop_database waits out an autovacuum worker (which its owner may not end) and raises
any other refusal at once; PostgreSQL played by a fake connection."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest
from psycopg import errors

from services.shared import database

REFUSED = "must be a member of the role whose process is being terminated"


class FakeServer:
    """Refuses the DROP `refusals` times; reports an autovacuum worker while `vacuuming`."""

    def __init__(self, refusals: int, vacuuming: list[bool],
                 refusal: type[Exception] = errors.InsufficientPrivilege) -> None:
        self.refusals, self.vacuuming, self.refusal = refusals, vacuuming, refusal
        self.drops = 0
        self.dropped = False

    def connect(self, conninfo: str, autocommit: bool = False) -> FakeServer:
        return self

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None

    def execute(self, statement: Any, params: tuple[Any, ...] | None = None) -> FakeServer:
        if "pg_stat_activity" in str(statement):
            self.row = (int(self.vacuuming.pop(0) if self.vacuuming else False),)
            return self
        self.drops += 1
        if self.drops <= self.refusals:
            raise self.refusal(REFUSED)
        self.dropped = True
        return self

    def fetchone(self) -> tuple[int]:
        return self.row


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database.time, "sleep", lambda s: None)


def drop(monkeypatch: pytest.MonkeyPatch, server: FakeServer, **kwargs: float) -> None:
    monkeypatch.setattr(database.psycopg, "connect", server.connect)
    database.drop_database("dbname=postgres", "sendhub_test_x", **kwargs)


def test_it_waits_while_an_autovacuum_worker_is_in_the_database(
        monkeypatch: pytest.MonkeyPatch, no_sleep: None) -> None:
    server = FakeServer(refusals=3, vacuuming=[True, True, True])
    drop(monkeypatch, server)
    assert server.dropped and server.drops == 4


def test_a_worker_gone_between_the_refusal_and_the_look_gets_one_more_try(
        monkeypatch: pytest.MonkeyPatch, no_sleep: None) -> None:
    server = FakeServer(refusals=1, vacuuming=[False])
    drop(monkeypatch, server)
    assert server.dropped and server.drops == 2


def test_a_refusal_with_no_worker_in_the_database_is_raised(
        monkeypatch: pytest.MonkeyPatch, no_sleep: None) -> None:
    server = FakeServer(refusals=10, vacuuming=[])
    with pytest.raises(errors.InsufficientPrivilege, match=REFUSED):
        drop(monkeypatch, server)
    assert not server.dropped and server.drops == 2


def test_it_stops_waiting_after_its_patience(monkeypatch: pytest.MonkeyPatch,
                                              no_sleep: None) -> None:
    server = FakeServer(refusals=10**6, vacuuming=[True] * 10**6)
    with pytest.raises(errors.InsufficientPrivilege):
        drop(monkeypatch, server, patience_s=0.05)
    assert not server.dropped


def test_other_errors_are_not_waited_on(monkeypatch: pytest.MonkeyPatch, no_sleep: None) -> None:
    server = FakeServer(refusals=1, vacuuming=[True], refusal=errors.WrongObjectType)
    with pytest.raises(errors.WrongObjectType):
        drop(monkeypatch, server)
    assert server.drops == 1
