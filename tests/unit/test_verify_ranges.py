"""How `verify --all` splits the pupils among processes: ranges of pupil ids that cover
every pupil once, in order; the in-memory store is verified in one process."""

from __future__ import annotations

from uuid import UUID, uuid4

from services.records.application import RecordsApplication
from services.records.domain import pupil_id_for
from services.records.verification import pupil_ranges


def test_ranges_hold_every_pupil_once_in_order() -> None:
    ranges = pupil_ranges(7)
    assert ranges[0][0] is None and ranges[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    for pupil in [UUID(int=0), UUID(int=(1 << 128) - 1), *(uuid4() for _ in range(200)),
                  pupil_id_for("A123456789012")]:
        holding = [n for n, (low, high) in enumerate(ranges)
                   if (low is None or pupil >= low) and (high is None or pupil < high)]
        assert len(holding) == 1


def test_the_in_memory_store_is_verified_in_this_process_whatever_is_asked() -> None:
    app = RecordsApplication()
    assert app._verify_workers(4) == 1
    assert app.verify_all(workers=4) == (0, 0, [])
