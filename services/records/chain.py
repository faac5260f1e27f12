"""Checking a pupil's stored history against its hash chain and the anchors.

Domain layer, like `domain.py` (which makes each event's hash as it is recorded): no
I/O. An auditor's proof that nothing was altered is these two walks: `first_break`
follows the chain from version 1, `anchor_break` compares it with the heads anchored
outside the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from services.records.domain import (
    EVENT_TYPE_OF,
    GENESIS_HASH,
    SENHistoryEvent,
    chain_hash,
)


@dataclass(frozen=True)
class ChainBreak:
    """The first place a pupil's stored history no longer matches its hash chain."""

    pupil_id: UUID
    version: int
    problem: str
    upn: str | None = None


@dataclass(frozen=True)
class ErasedEntry:
    """A stored event whose pupil was erased: its content is gone with the pupil's key,
    its hashes (kept outside the seal) remain, so the chain's links and the anchors can
    still be checked (`services/records/sealing.py`)."""

    version: int
    event_hash: str
    previous_hash: str
    erasure: str
    """"erased on D by X because Y"."""


StoredItem = SENHistoryEvent | ErasedEntry | str
"""A stored event as verification reads it: the event, what is left of an erased one,
or why it cannot be read."""


def erasure_in(stored: Sequence[tuple[int, StoredItem]]) -> str | None:
    """How the pupil's history was erased, if it was."""
    return next((e.erasure for _, e in stored if isinstance(e, ErasedEntry)), None)


def upn_in(stored: Sequence[tuple[int, StoredItem]]) -> str | None:
    """The pupil's UPN, from any event of theirs that can still be read."""
    return next((e.upn for _, e in stored if isinstance(e, SENHistoryEvent)), None)


def first_break(
    pupil_id: UUID, stored: Sequence[tuple[int, StoredItem]]
) -> ChainBreak | None:
    """Walk a pupil's stored events (version, event or why it is unreadable) from version 1.

    Checks, in order at each version: it exists (a deleted row leaves a gap), it can be
    read, it links to the hash of the version before (a reordered or replaced row does
    not), and its content still gives its own hash (an edited row does not). An erased
    event's content is gone, so only its link is checked, with the hash kept beside it.
    """
    expected_previous = GENESIS_HASH
    by_version = dict(stored)
    highest = max(by_version, default=0)
    for version in range(1, highest + 1):
        if version not in by_version:
            return ChainBreak(pupil_id, version, f"version {version} is missing: the stored "
                              f"history jumps from {version - 1} to "
                              f"{min(v for v in by_version if v > version)}")
        item = by_version[version]
        if isinstance(item, str):
            return ChainBreak(pupil_id, version, f"the stored event cannot be read: {item}")
        if item.previous_hash != expected_previous:
            sources = [v for v, e in stored if not isinstance(e, str) and e.event_hash
                       == item.previous_hash and v != version - 1]
            where = f" (it links to the event stored at version {sources[0]})" if sources else ""
            return ChainBreak(pupil_id, version, f"previous_hash {item.previous_hash[:12]}... "
                              f"does not match version {version - 1}'s hash "
                              f"{expected_previous[:12]}...{where}: rows reordered or replaced")
        if isinstance(item, ErasedEntry):
            expected_previous = item.event_hash
            continue
        recomputed = chain_hash(item)
        if recomputed != item.event_hash:
            return ChainBreak(pupil_id, version, f"the content was altered: it now hashes to "
                              f"{recomputed[:12]}... but was recorded as "
                              f"{item.event_hash[:12]}... (event {item.event_id}, "
                              f"{EVENT_TYPE_OF[type(item)]})")
        expected_previous = recomputed
    return None


def anchor_break(
    pupil_id: UUID, stored: Sequence[tuple[int, StoredItem]],
    anchored: dict[int, tuple[str, str]],
) -> tuple[int, ChainBreak | None]:
    """Compare a pupil's stored events with the chain heads the anchors hold for them
    ({version: (head, when anchored)}): (heads compared, the first mismatch). An erased
    event is compared by the hash kept beside it."""
    hashes = {v: e.event_hash if isinstance(e, ErasedEntry) else chain_hash(e)
              for v, e in stored if not isinstance(e, str)}
    checked = 0
    for version in sorted(anchored):
        checked += 1
        head, when = anchored[version]
        if not stored:
            return len(anchored), ChainBreak(pupil_id, min(anchored), f"anchored on {when} but "
                                             "the whole history is gone from the store")
        if version not in hashes:
            return checked, ChainBreak(pupil_id, version, f"anchored on {when} but no longer "
                                       "in the store (deleted or unreadable)", upn_in(stored))
        if hashes[version] != head:
            return checked, ChainBreak(
                pupil_id, version, f"the anchor of {when} holds head {head[:12]}... but the "
                f"store now gives {hashes[version][:12]}...: history rewritten", upn_in(stored))
    return checked, None


def chain_head(events: Sequence[SENHistoryEvent]) -> str:
    """The hash of the newest event, or the genesis hash for an empty history."""
    return events[-1].event_hash if events else GENESIS_HASH
