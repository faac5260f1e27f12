"""Packets counted by delivery state on the real PostgreSQL: the same bodies as in memory."""

from __future__ import annotations

import pytest

from tests.packet_counts_cases import PacketCountsCases
from tests.postgres_transfers import OnPostgres

pytestmark = pytest.mark.integration


class TestPacketCountsOnPostgres(OnPostgres, PacketCountsCases):
    pass
