"""The pupils' current history states, kept between batches.

Application layer, no I/O. Each batch would otherwise rebuild every pupil's state from
their whole stream (decrypting every event). A state is trusted only while the store's
newest version for that pupil is the one it was built to: a history written by another
process (a rebalance moved the partition, an erasure tool, a misfiled entry moved in)
shows a different version and is simply read again. Only states of committed
transactions are kept, so a failed batch leaves nothing stale behind.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from services.records.domain import PupilHistory, PupilId


class CurrentStates:
    """At most `capacity` pupils' states, the least recently used forgotten first
    (`SENDHUB_PUPIL_STATE_CACHE`; 0 keeps none)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._states: OrderedDict[PupilId, PupilHistory] = OrderedDict()

    def current(self, pupil_id: PupilId, stored_version: int) -> PupilHistory | None:
        """The kept state, if it is at the version the store holds now."""
        state = self._states.get(pupil_id)
        if state is None or state.version != stored_version:
            return None
        self._states.move_to_end(pupil_id)
        return state

    def keep(self, states: Iterable[PupilHistory]) -> None:
        if self.capacity <= 0:
            return
        for state in states:
            self._states[state.id] = state
            self._states.move_to_end(state.id)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def forget(self, pupil_ids: Iterable[PupilId]) -> None:
        """Drop these pupils' states (erased: the hub keeps nothing of them)."""
        for pupil_id in pupil_ids:
            self._states.pop(pupil_id, None)

    def __len__(self) -> int:
        return len(self._states)
