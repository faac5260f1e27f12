"""Transfers' use cases on the real PostgreSQL: the same test bodies as in memory."""

from __future__ import annotations

import pytest

from tests.postgres_transfers import OnPostgres
from tests.transfers_cases import TransfersCases

pytestmark = pytest.mark.integration


class TestTransfersOnPostgres(OnPostgres, TransfersCases):
    pass
