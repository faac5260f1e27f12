"""Transfers keeps one partition's batch of histories in as many statements however many
pupils it holds (issue 15): reads and writes go per batch, not per event or per packet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow, dict_row

from services.shared.pupil_keys import PupilKeys, pupil_keys_for
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from services.transfers.postgres import PostgresRepository
from services.transfers.registry import RegisteredSetting
from services.transfers.repository import TransfersRepository
from tests.factories import random_upn
from tests.transfers_cases import CONCERN, LATE, at, history_messages, moved

pytestmark = pytest.mark.integration


class CountingCursor(psycopg.Cursor[DictRow]):
    """Counts the statements sent (an `executemany` is one pipelined round trip)."""

    statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> CountingCursor:
        CountingCursor.statements += 1
        super().execute(*args, **kwargs)
        return self

    def executemany(self, *args: Any, **kwargs: Any) -> None:
        CountingCursor.statements += 1
        super().executemany(*args, **kwargs)


class CountedTransfers:
    """PostgreSQL transfers on one connection whose statements are counted."""

    def __init__(self, conninfo: str, keys: PupilKeys) -> None:
        self.conn = psycopg.connect(conninfo, row_factory=dict_row,
                                    cursor_factory=CountingCursor)
        self.keys = keys

    @contextmanager
    def transaction(self) -> Iterator[TransfersRepository]:
        with self.conn.transaction():
            yield PostgresRepository(self.conn, self.keys)

    def close(self) -> None:
        self.conn.close()
        self.keys.close()  # type: ignore[attr-defined]


def statements_for(app: TransfersApplication, pupils: int) -> int:
    """Statements to keep one batch of `pupils` new pupils, each with a concern, an
    assessment and a move to a school of their own (so each gets its packet)."""
    messages = []
    for n in range(pupils):
        upn = random_upn()
        messages.append(history_messages(upn, CONCERN, LATE, moved(
            {"kind": "school", "urn": f"{200001 + n}"})))
    interleaved = [m for version in zip(*messages, strict=True) for m in version]
    before = CountingCursor.statements
    issued = app.record_history(at(f"history-{pupils}", interleaved))
    assert len(issued) == pupils
    return CountingCursor.statements - before


def test_a_batch_of_histories_takes_as_many_statements_for_twenty_pupils_as_for_two(
        scratch_db: HubSettings) -> None:
    app = TransfersApplication(CountedTransfers(scratch_db.database_conninfo,
                                                pupil_keys_for(scratch_db)))
    try:
        app.import_settings([RegisteredSetting(
            urn=f"{200001 + n}", name=f"Receiver {n}", phase="Primary", la_code="801",
            establishment_number=f"{3000 + n}") for n in range(10)])  # half of them known
        two, twenty = statements_for(app, 2), statements_for(app, 20)
        # The position (read, saved), the extents, the histories kept, the latest packets,
        # the histories read, the registry, the packets held, kept, and their steps. The
        # pupils' keys are fetched on their own connection, once for each of the two
        # writes. Per event and per packet, as before, it was 34 for two and 322 for 20.
        assert two == twenty <= 10
    finally:
        app.close()
