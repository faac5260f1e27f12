"""A batch of history events as transfers keeps it, and what the batch calls for:
which pupils are due a packet, which have entries behind a move, whose former school
recorded late, which were erased. Everything the packets are built from is read in one
round trip per kind, however many pupils the batch holds.

Application layer, beside `application.py`, which runs it inside the batch's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar
from uuid import UUID

from contracts.history import PupilHistoryEventV1
from contracts.inbound import where_recorded
from contracts.school_events import CORRECTION_TYPES, PupilMovedV1, SchoolDestination
from services.shared.pupil_keys import PupilErased, pupil_ref_for_upn
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import Issue, IssuedPacket, calls_for_amendment
from services.transfers.repository import TransfersRepository

log = logging.getLogger("sendhub.transfers")
T = TypeVar("T")


def entry_at(history: Sequence[HistoryEntry], version: int) -> HistoryEntry | None:
    """The entry of that version, if the history holds it."""
    return next((h for h in history if h.version == version), None)


def _rank(issued: IssuedPacket) -> tuple[int, int]:
    """How a pupil's packets are ordered for the latest (`latest_packets`)."""
    return issued.move_version, issued.packet.history_version


def _reading(read: Callable[[list[str]], dict[str, T]], upns: set[str], erased: set[str]
             ) -> dict[str, T]:
    """Read the pupils' rows in one round trip; a pupil erased meanwhile is set aside
    with the erased (nothing more is built for them) and the others are read again."""
    while True:
        wanted = sorted(upns - erased)
        try:
            return read(wanted)
        except PupilErased as gone:
            upn = next((u for u in wanted if pupil_ref_for_upn(u) == gone.erasure.pupil_ref),
                       None)
            if upn is None:
                raise
            erased.add(upn)
            log.warning("packet.pupil_erased", extra={"read": True})


@dataclass
class HistoryBatch:
    """A batch of history events once kept, and what it calls for: the
    pupils whose move is due its packet (a move, or a missing event filled in), those with
    entries behind that move in the same batch, those whose former school recorded late,
    those erased. With it, what the packets are built from, each read in one round trip:
    the histories needed, the latest packets (followed as packets are kept) and the
    packets already held; and the packets issued, kept together at the end (`keep_all`).
    """

    due: set[str]
    behind_a_move: set[str]
    late: set[str]
    erased: set[str]
    histories: dict[str, list[HistoryEntry]]
    latest: dict[str, IssuedPacket]
    held: set[UUID]
    issued: list[Issue] = field(default_factory=list)

    @classmethod
    def kept(cls, repo: TransfersRepository, messages: Sequence[PupilHistoryEventV1]
             ) -> HistoryBatch:
        """Keep the messages, then judge each newly held one in the batch's order, with
        the pupil's extent and history as they stood once the ones before it were kept."""
        extents = repo.history_extents(sorted({m.upn for m in messages}))
        kept = repo.add_histories(messages)
        erased = set(kept.erased)
        due: set[str] = set()
        behind_a_move: set[str] = set()
        to_check: list[HistoryEntry] = []  # entries that may be late for the latest packet
        order: dict[tuple[str, int], int] = {}  # when each newly held version was kept
        entries: dict[tuple[str, int], HistoryEntry] = {}
        for message in messages:
            if message.upn in erased:
                log.warning("history.pupil_erased", extra={"version": message.version})
                continue
            key = (message.upn, message.version)
            if key not in kept.added or key in order:
                continue
            order[key] = len(order)
            entry = entries[key] = HistoryEntry.from_contract(message)
            highest, held = extents.get(entry.upn, (0, 0))
            highest, held = max(highest, entry.version), held + 1
            extents[entry.upn] = (highest, held)
            if entry.event.event_type == "pupil_moved" or entry.version < highest:
                due.add(entry.upn)  # a move, or a missing event filled in
            elif entry.upn in due:
                behind_a_move.add(entry.upn)
            elif held == highest:
                to_check.append(entry)
        latest = _reading(repo.latest_packets, due | {e.upn for e in to_check}, erased)
        newer = [e for e in to_check if e.upn in latest
                 and e.version > latest[e.upn].packet.history_version]
        histories = _reading(partial(repo.histories, known=entries),
                             due | {e.upn for e in newer}, erased)
        late: set[str] = set()
        for entry in newer:
            if entry.upn in erased:
                continue
            then = order[(entry.upn, entry.version)]
            history = [h for h in histories[entry.upn]
                       if order.get((entry.upn, h.version), then) <= then]
            if _is_late(entry, history, latest[entry.upn]):
                late.add(entry.upn)
        building = (due | late) - erased
        repo.read_registry(_settings_named(h for upn in building for h in histories[upn]))
        return cls(due, behind_a_move, late, erased, histories, latest,
                   repo.packets_of(building))

    def keep(self, repo: TransfersRepository, issue: Issue) -> None:
        """An issued packet to keep, unless one of its id is already held (then the
        stored one stays the pupil's latest, read again). A packet kept is the pupil's
        latest, unless it is an LA's notice."""
        issued = issue.issued
        upn = issued.packet.pupil.upn
        if issued.packet.packet_id in self.held:
            if issued.kind != "la_notice" and all(
                    i.issued.packet.packet_id != issued.packet.packet_id for i in self.issued):
                self.latest.update(repo.latest_packets([upn]))
            return
        self.held.add(issued.packet.packet_id)
        self.issued.append(issue)
        if issued.kind != "la_notice" and (
                upn not in self.latest or _rank(issued) >= _rank(self.latest[upn])):
            self.latest[upn] = issued

    def keep_all(self, repo: TransfersRepository) -> set[str]:
        """Keep the packets issued, then their delivery steps in order, each in one round
        trip; returns the pupils erased meanwhile, of whom nothing was kept."""
        kept = repo.add_packets([i.issued for i in self.issued])
        stored = [i for i in self.issued if i.issued.packet.packet_id in kept.added]
        repo.append_deliveries([step for i in stored for step in i.steps])
        for issue in stored:
            _kept(issue)
        if kept.erased:
            log.warning("packet.pupil_erased", extra={"kept": True, "pupils": len(kept.erased)})
        return set(kept.erased)


def _kept(issue: Issue) -> None:
    """What is logged of a packet kept: its kind, and when it cannot be delivered or its
    receiver is not in the registry."""
    packet = issue.issued.packet
    if issue.issued.kind == "la_notice":
        log.info("packet.la_notice", extra={"packet_id": str(packet.packet_id),
                                            "receiver": packet.receiver,
                                            "notice": packet.la_notice})
    elif issue.issued.kind == "amendment":
        log.info("packet.amended", extra={"packet_id": str(packet.packet_id),
                                          "supersedes": str(packet.supersedes)})
    first = issue.steps[0].event
    if first.state == "undeliverable":
        log.error("packet.undeliverable", extra={
            "packet_id": str(packet.packet_id), "reason": first.detail})
    if packet.to_setting.in_registry is False and issue.issued.kind != "la_notice":
        log.warning("packet.receiver_not_in_registry", extra={
            "packet_id": str(packet.packet_id), "receiver": packet.to_setting.receiver})


def _settings_named(history: Iterable[HistoryEntry]) -> set[str]:
    """The schools a packet built from these entries names: where each was recorded, and
    where the pupil moved to."""
    urns = set()
    for h in history:
        urns.add(where_recorded(h.event))
        if isinstance(h.event, PupilMovedV1) and isinstance(
                h.event.payload.destination, SchoolDestination):
            urns.add(h.event.payload.destination.urn)
    return {u for u in urns if not u.startswith("la-")}


def _is_late(entry: HistoryEntry, history: Sequence[HistoryEntry], latest: IssuedPacket
             ) -> bool:
    """Whether an entry newer than the latest packet calls for an amendment, against the
    history as it stood when the entry was kept."""
    corrected = history if entry.event.event_type in CORRECTION_TYPES else ()
    return calls_for_amendment(entry, corrected, latest, entry_at(history, latest.move_version))
