"""Subject access (UK GDPR Article 15): everything the hub holds about one pupil, in one
read, as a JSON document for programs and one readable page to hand to a pupil or parent.

What the hub holds about a pupil, and where this reads it from (the existing reading
functions, so that encryption at rest changes the reads underneath and not this module):

- the SEN history as records stores it, every event whole, with both of its times
  (when it happened in school, when the hub recorded it) and who recorded it
  (`RecordsApplication.history_events`), each withdrawn or corrected entry marked as
  such; except what is about another pupil (below);
- every packet transfers built for the pupil (first packets, amendments, re-routes, the
  local authorities' notices), whom it was for, the inbox it went to and each of its
  delivery events, receipts included (`TransfersApplication.deliveries` and `.packet`);
- the access log: who looked at the pupil's record, when, why and how (`AccessLog`);
- dead letters on `sen.rejected.v1` that carry the pupil's UPN (messages the hub
  refused, kept with their original bytes until their topic's retention removes them).

Another pupil's information is left out (UK GDPR Article 15(4): the right of access
does not adversely affect the rights of others; Data Protection Act 2018 Schedule 2
Part 3 paragraph 16: information identifying another individual need not be given).
When a setting filed an entry under this pupil by mistake and then sent
`entry_misfiled`, the entry (which is about the other pupil) is listed with its times,
type and who recorded it, but none of its content; the `entry_misfiled` event without
the right pupil's identity or the setting's reason (which may name that pupil), and a
packet built while it held the entry without its content (`_withheld_packets`). On the
right pupil's side, the entry moved in is theirs, shown whole, and where it came from
(the other pupil's stream id) is not given: "another pupil's record".

The Kafka inbox topics hold the same packets as the hub sent them, and transfers keeps a
copy of the history to build packets from; the document says so rather than repeat them.

An erased pupil (`sendhub erase` destroys the pupil's data key, and reading what was
sealed with it raises `services.shared.pupil_keys.PupilErased`) still gets an answer:
what was erased, when, on whose authority, by whom and why, and who had received
packets before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from jinja2 import Environment, StrictUndefined, select_autoescape

from contracts.dead_letter import DeadLetterV1
from contracts.inbound import where_recorded
from contracts.packet import TransferPacketV1
from contracts.school_events import EntryMisfiledV1
from sendhub.access_log import Access, Reader
from services.records.domain import pupil_id_for
from services.shared.pupil_keys import Erasure as KeyErasure
from services.shared.pupil_keys import PupilErased
from services.shared.sen_record import CorrectionMark, HistoryEntry, corrections_of, is_correction
from services.shared.sen_wording import STATUS_WORDS, describe_event
from services.transfers.domain import DeliveryEvent, PacketDelivery

if TYPE_CHECKING:
    from services.shared.settings import HubSettings

DOCUMENT_VERSION = 1
DEFAULT_REASON = "subject access request (UK GDPR Article 15)"
ACTION = "subject-access"
"""The access log's name for this read."""

ERASE_ACTION = "erase"
"""The access log's name for `sendhub erase` (`sendhub.erasure`)."""


# -- what was gathered ----------------------------------------------------------------


@dataclass(frozen=True)
class PacketHeld:
    """A packet the hub built for the pupil: its delivery record (who, when, every
    delivery event) and its content, None when that can no longer be read (erased)."""

    delivery: PacketDelivery
    packet: TransferPacketV1 | None
    inbox: str


@dataclass(frozen=True)
class Erasure:
    """The pupil's record was erased: when, by whom, on whose authority and why."""

    erased_at: datetime
    authorised_by: str
    reason: str
    erased_by: str | None = None
    """Who ran `sendhub erase` (the access log's actor)."""
    detail: str | None = None


@dataclass(frozen=True)
class SubjectAccess:
    """Everything gathered for one subject access request."""

    upn: str
    generated_at: datetime
    reader: Reader
    history: Sequence[HistoryEntry]
    packets: Sequence[PacketHeld]
    access: Sequence[Access]
    dead_letters: Sequence[DeadLetterV1]
    setting_names: dict[str, str]
    erasure: Erasure | None = None
    dead_letters_unread: str | None = None
    """Why the dead letters could not be read (for example, no Kafka access), if so."""
    history_unreadable: bool = False

    @property
    def holds_anything(self) -> bool:
        """Whether the hub holds a record of this pupil at all (the access log alone,
        which this read has just written to, is not a record of the pupil)."""
        return bool(self.history or self.packets or self.erasure or self.history_unreadable)


class Holdings(Protocol):
    """Where the hub keeps what it holds about pupils: the reading functions."""

    def history(self, upn: str) -> list[HistoryEntry]: ...

    def packets(self, upn: str) -> list[PacketHeld]: ...

    def access_entries(self, upn: str) -> list[Access]: ...

    def dead_letters(self, upn: str, packet_ids: Sequence[UUID]) -> list[DeadLetterV1]: ...

    def setting_names(self) -> dict[str, str]:
        """`urn-<URN>` / `ukprn-<UKPRN>` to the settings registry's name."""
        ...

    def erasure(self, upn: str) -> KeyErasure | None:
        """The pupil's erasure, if their data key was destroyed."""
        ...


def erasure_in(destroyed: KeyErasure | None, entries: Sequence[Access]) -> Erasure | None:
    """The erasure as the pupil's destroyed key records it (when, on whose authority,
    why), with who ran it and what it noted from the access log's `erase` entry."""
    if destroyed is None:
        return None
    entry = next((e for e in reversed(entries) if e.action == ERASE_ACTION), None)
    return Erasure(erased_at=destroyed.erased_at, authorised_by=destroyed.authorised_by,
                   reason=destroyed.reason, erased_by=entry.actor if entry else None,
                   detail=entry.detail if entry else None)


def gather(holdings: Holdings, upn: str, reader: Reader, now: datetime) -> SubjectAccess:
    """Read everything the hub holds about the pupil. The caller has written this read
    to the access log already, so the access log read here lists it too."""
    unreadable = False
    history: list[HistoryEntry] = []
    try:
        history = holdings.history(upn)
    except PupilErased:  # the key is gone: the history cannot be read by anyone
        unreadable = True
    packets = holdings.packets(upn)
    access = holdings.access_entries(upn)
    unread = None
    try:
        letters = holdings.dead_letters(upn, [p.delivery.packet_id for p in packets])
    except Exception as exc:  # noqa: BLE001 - Kafka unreachable or not allowed: say so
        letters, unread = [], f"{type(exc).__name__}: {exc}"
    return SubjectAccess(upn=upn, generated_at=now, reader=reader, history=history,
                         packets=packets, access=access, dead_letters=letters,
                         setting_names=holdings.setting_names(),
                         erasure=erasure_in(holdings.erasure(upn), access),
                         dead_letters_unread=unread, history_unreadable=unreadable)


class HubHoldings:
    """The hub's own stores behind `Holdings`: records' history through the eventsourcing
    application, transfers' packets and delivery events through its application, the
    access log, the pupil's key record, and the dead-letter topic. No SQL of its own:
    the stores' reading functions open what is sealed with the pupil's key, and raise
    `PupilErased` where the key is gone. After an erasure the hub's tables name the
    pupil by a pseudonym (`sendhub.erasure.pseudonym_of`), so both are looked up."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings

    def history(self, upn: str) -> list[HistoryEntry]:
        from sendhub.commands.common import records_app
        from services.records.handlers import to_history_entry

        return [to_history_entry(e) for e in records_app(self.settings).history_events(upn)]

    def packets(self, upn: str) -> list[PacketHeld]:
        from sendhub.erasure import pseudonym_of
        from services.shared.access import inbox_of, packet_inbox
        from services.transfers.application import TransfersApplication

        store = TransfersApplication.for_settings(self.settings)
        try:
            held = []
            found = [d for ref in (upn, pseudonym_of(upn)) for d in store.deliveries(upn=ref)]
            for d in sorted(found, key=lambda d: (d.built_at, str(d.packet_id))):
                try:
                    body = store.packet(d.packet_id)
                except PupilErased:  # the content's key is gone
                    body = None
                inbox = packet_inbox(body) if body else inbox_of(d.receiver, None)
                held.append(PacketHeld(d, body, inbox))
            return held
        finally:
            store.close()

    def access_entries(self, upn: str) -> list[Access]:
        from sendhub.access_log import AccessLog
        from sendhub.erasure import pseudonym_of

        log = AccessLog(self.settings.database_conninfo)
        entries = [*log.entries(upn), *log.entries(pseudonym_of(upn))]
        return sorted(entries, key=lambda e: e.at)

    def dead_letters(self, upn: str, packet_ids: Sequence[UUID]) -> list[DeadLetterV1]:
        """Refused messages keyed by the UPN or one of the pupil's packets (receipts), or
        whose original bytes name the UPN (an event sent under another key)."""
        from sendhub.topics_reader import read_topic

        keys = {upn, *(str(p) for p in packet_ids)}
        found = []
        for r in read_topic(self.settings, self.settings.topics.rejected):
            letter = DeadLetterV1.model_validate_json(r.value)
            if letter.key in keys or upn.encode() in letter.original:
                found.append(letter)
        return found

    def erasure(self, upn: str) -> KeyErasure | None:
        from services.shared.pupil_keys import pupil_keys_for, pupil_ref_for_upn

        keys = pupil_keys_for(self.settings)
        try:
            return keys.erasure_of(pupil_ref_for_upn(upn))
        finally:
            keys.close()

    def setting_names(self) -> dict[str, str]:
        from services.transfers.application import TransfersApplication

        store = TransfersApplication.for_settings(self.settings)
        try:
            known = store.registered_settings()
        finally:
            store.close()
        names = {f"urn-{s.urn}": s.name for s in known if s.urn}
        names.update({f"ukprn-{s.ukprn}": s.name for s in known if s.ukprn})
        return names


# -- words ----------------------------------------------------------------------------

DELIVERY_WORDS = {
    "pending": "Built by the hub, waiting to be sent",
    "sent": "Sent to the receiving setting's inbox",
    "received": "The receiving setting confirmed it had received it",
    "accepted": "The receiving setting accepted it",
    "rejected": "The receiving setting rejected it",
    "superseded": "Replaced by a later packet (an amendment)",
    "rerouted": "Sent on to the pupil's new setting once that was known",
    "undeliverable": "Could not be delivered",
}
RECEIPT_STATES = frozenset({"received", "accepted", "rejected"})

KIND_WORDS = {
    "first": "Transfer packet",
    "amendment": "Amendment to a transfer packet",
    "reroute": "Transfer packet sent on from the local authority's lost-pupils inbox",
    "la_notice": "Notice to a local authority",
}

LA_NOTICE_WORDS = {
    "ehc_plan_transfer_in": "the EHC plan is moving into this local authority's care",
    "ehc_plan_transfer_out": "the EHC plan is moving out of this local authority's care",
    "children_missing_education": "a possible child missing education",
}

ACTION_WORDS = {
    "history": "the SEN history",
    "report": "the auditor's report",
    "access-log": "the list of who looked at the record (this list)",
    "oversight": "a list of pupils behind an oversight figure",
    ACTION: "everything the hub holds (a subject access request)",
    "erase": "the erasure of the record",
    "erasure": "the erasure of the record",
}
ACTION_PREFIX_WORDS = {
    "packet-rebuild": "a transfer packet, rebuilt from the history to check it",
    "packet-": "a transfer packet",
    "inbox-": "a transfer packet in the receiving setting's inbox",
}
ROUTE_WORDS = {"cli": "the hub's command-line tools", "https": "the hub's HTTPS interface",
               "web": "the hub's web pages", "kafka": "the hub's message broker"}


def action_words(action: str) -> str:
    if action in ACTION_WORDS:
        return ACTION_WORDS[action]
    for prefix, words in ACTION_PREFIX_WORDS.items():
        if action.startswith(prefix):
            form = action[len(prefix):]
            return words + (f" ({form.upper() if form in ('json', 'ctf') else form})"
                            if form and prefix.endswith("-") else "")
    return action


def receiver_words(receiver: str, names: dict[str, str], inbox: str | None = None) -> str:
    """A receiver as a parent reads it: `Hillside Academy (URN 131002)`."""
    if receiver.startswith("urn-") or receiver.startswith("ukprn-"):
        kind, number = receiver.split("-", 1)
        label = f"{'URN' if kind == 'urn' else 'UKPRN'} {number}"
        name = names.get(receiver)
        return f"{name} ({label})" if name else f"the setting with {label}"
    if receiver.startswith("la-"):
        return f"local authority {receiver[3:]}"
    if receiver == "lost-pupils":
        la = inbox.rsplit("la-", 1)[-1] if inbox and "la-" in inbox else "unknown"
        return (f"local authority {la}, for a pupil whose next school was not known"
                if la != "unknown" else "the hub's operator (no local authority was known)")
    return receiver


def setting_words(urn_or_la: str, names: dict[str, str]) -> str:
    """Who recorded an event: a school by name and URN, or a local authority."""
    if urn_or_la.startswith("la-"):
        return f"Local authority {urn_or_la[3:]}"
    return receiver_words(f"urn-{urn_or_la}", names)


# -- the JSON document ----------------------------------------------------------------


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pupil(access: SubjectAccess, marks: Marks) -> dict[str, Any]:
    """The pupil as the newest entry names them (never an entry filed here by mistake,
    which may carry the other pupil's name), or else the newest packet."""
    details: dict[str, Any] = {"upn": access.upn,
                               "pseudonymous_id": str(pupil_id_for(access.upn))}
    source = next((h.event.pupil for h in reversed(access.history)
                   if h.event.event_id not in marks.moved_away), None) or next(
        (p.packet.pupil for p in reversed(access.packets) if p.packet), None)
    if source is not None:
        details.update(given_name=source.given_name, family_name=source.family_name,
                       date_of_birth=_iso(source.date_of_birth),
                       uln=getattr(source, "uln", None), gender=getattr(source, "gender", None))
    return details


ANOTHER_PUPIL_SOURCES = ("UK GDPR Article 15(4); Data Protection Act 2018 Schedule 2 "
                         "Part 3 paragraph 16")
WITHHELD_ENTRY = (
    "The setting recorded this entry under this pupil by mistake: it was about another "
    "pupil, and was moved to that pupil's record. What it said is about the other pupil, "
    f"so it is not given here ({ANOTHER_PUPIL_SOURCES}). It is no longer part of this "
    "pupil's record, and the hub sent an amendment to anyone who had received it.")
WITHHELD_MISFILE = (
    "Which pupil the entry was moved to, and the setting's reason (which may name that "
    f"pupil), are about another pupil, so they are not given here ({ANOTHER_PUPIL_SOURCES}).")
WITHHELD_CORRECTION = (
    "This correction is of an entry that was about another pupil (it was later moved to that "
    f"pupil's record), so what it said is not given here ({ANOTHER_PUPIL_SOURCES}).")
WITHHELD_PACKET = (
    "This packet was built while this pupil's history still held an entry recorded under "
    "this pupil by mistake, which was about another pupil. What the packet said (its "
    "needs, SEN status, timeline and summaries) was worked out with that entry, so it "
    "cannot be separated cleanly from the other pupil's information, and its content is not "
    f"given here ({ANOTHER_PUPIL_SOURCES}). Who it was sent to, when, and what became of it "
    "are given in full; the hub sent an amendment once the entry was moved.")


def _day(value: datetime | date) -> str:
    return f"{value:%-d %B %Y}"


@dataclass(frozen=True)
class Marks:
    """What the answer needs to know of the corrections in the pupil's own history: each
    corrected entry's latest mark (as the auditor's replay marks it), when each
    correction was recorded, and which entries were moved to another pupil's record
    (`entry_misfiled`), with the misfiling, whose content is another pupil's."""

    marks: dict[UUID, CorrectionMark]
    recorded: dict[int, datetime]
    moved_away: dict[UUID, HistoryEntry]
    versions: dict[UUID, int]

    @classmethod
    def of(cls, history: Sequence[HistoryEntry]) -> Marks:
        return cls(marks=corrections_of(history),
                   recorded={h.version: h.recorded_at for h in history},
                   moved_away={h.event.payload.corrects_event_id: h for h in history
                               if isinstance(h.event, EntryMisfiledV1)},
                   versions={h.event.event_id: h.version for h in history})

    def about_another_pupil(self, h: HistoryEntry) -> bool:
        """The entry was filed here by mistake, or is a correction of such an entry."""
        target = getattr(h.event.payload, "corrects_event_id", None)
        return h.event.event_id in self.moved_away or (
            is_correction(h.event) and target in self.moved_away)

    def moved_on(self, event_id: UUID) -> date:
        """The day the hub recorded the misfiling, so moved the entry."""
        return self.moved_away[event_id].recorded_at.date()


def _recorded_by(h: HistoryEntry, names: dict[str, str]) -> dict[str, Any]:
    e = h.event
    setting = where_recorded(e)
    return {"setting": setting, "setting_name": setting_words(setting, names),
            "system": e.source.system, "role": e.recorded_by.role, "name": e.recorded_by.name}


def _mark(mark: CorrectionMark, marks: Marks) -> dict[str, Any]:
    """A withdrawn or corrected entry's mark, in the words the family reads."""
    on = marks.recorded.get(mark.version)
    day = _day(on) if on else _day(mark.on)
    reason = mark.reason.rstrip(".")
    words = {"entry_retracted": f"Withdrawn on {day} by the setting that recorded it "
                                f"(entry {mark.version}): {reason}",
             "entry_corrected": f"Corrected on {day} by the setting that recorded it "
                                f"(entry {mark.version}: the corrected form is there): "
                                f"{reason}",
             "entry_misfiled": f"Moved to another pupil's record on {day} (entry "
                               f"{mark.version})"}[mark.kind]
    return {"kind": mark.kind, "version": mark.version, "on": _iso(on.date() if on else mark.on),
            "reason": None if mark.kind == "entry_misfiled" else mark.reason, "words": words}


def _history_entry(h: HistoryEntry, names: dict[str, str], marks: Marks) -> dict[str, Any]:
    """One history event as stored, except another pupil's information (`Marks`): an
    entry filed here by mistake is given without its content, and the misfiling (or an
    earlier correction of that entry) without the right pupil or the setting's words."""
    e = h.event
    entry: dict[str, Any] = {
        "version": h.version,
        "event_id": str(e.event_id),
        "occurred_at": e.occurred_at.isoformat(),
        "recorded_at": h.recorded_at.isoformat(),
        "event_type": e.event_type,
        "description": _describe(h),
        "recorded_by": _recorded_by(h, names),
        "event": e.model_dump(mode="json"),
        "withheld": None,
        "correction": None,
        "moved_here": None,
        "previous_hash": h.previous_hash,
        "event_hash": h.event_hash,
    }
    mark = marks.marks.get(e.event_id)
    if mark is not None:
        entry["correction"] = _mark(mark, marks)
    if marks.about_another_pupil(h) and not is_correction(e):
        day = _day(marks.moved_on(e.event_id))
        entry.update(event=None, withheld=WITHHELD_ENTRY, description=(
            f"Recorded under this pupil by mistake, and moved to another pupil's record on "
            f"{day}"))
    elif marks.about_another_pupil(h):
        target = getattr(e.payload, "corrects_event_id", None)
        kept = {k: v for k, v in entry["event"].items() if k != "payload"}
        entry["event"] = {**kept, "payload": {"corrects_event_id": str(target)}}
        which = f"Entry {marks.versions[target]}" if target in marks.versions else "An entry"
        if isinstance(e, EntryMisfiledV1):
            entry.update(withheld=WITHHELD_MISFILE, description=(
                f"{which} had been recorded under this pupil by mistake, and was moved to "
                "another pupil's record"))
        else:
            how = "withdrawn" if e.event_type == "entry_retracted" else "corrected"
            entry.update(withheld=WITHHELD_CORRECTION, description=(
                f"{which} was {how} by the setting that recorded it"))
    if h.refiled_from is not None:  # the other pupil's stream id is theirs: not given
        day = _day(h.recorded_at)
        entry["moved_here"] = {
            "on": _iso(h.recorded_at.date()), "from": "another pupil's record",
            "words": f"Moved here from another pupil's record on {day}, where the setting "
                     "had recorded it by mistake"}
    return entry


def _describe(h: HistoryEntry) -> str:
    """The event in a sentence; an event type the sentence rules do not know yet (a new
    kind of event) is named by its type rather than failing the whole answer."""
    try:
        return describe_event(h)
    except Exception:  # noqa: BLE001
        return h.event.event_type.replace("_", " ").capitalize()


def _delivery_event(e: DeliveryEvent) -> dict[str, Any]:
    return {"state": e.state, "at": e.at.isoformat(), "detail": e.detail,
            "meaning": DELIVERY_WORDS.get(e.state, e.state)}


def receipts_of(access: SubjectAccess) -> list[dict[str, Any]]:
    """Every receipt a receiving setting sent for the pupil's packets, oldest first."""
    found = [{"packet_id": str(p.delivery.packet_id), "receiver": p.delivery.receiver,
              "receiver_words": receiver_words(p.delivery.receiver, access.setting_names,
                                               p.inbox),
              "status": e.state, "at": e.at.isoformat(), "reason": e.detail}
             for p in access.packets for e in p.delivery.events if e.state in RECEIPT_STATES]
    return sorted(found, key=lambda r: r["at"])


def superseded_by(packets: Sequence[PacketHeld]) -> dict[UUID, UUID]:
    return {p.delivery.supersedes: p.delivery.packet_id for p in packets
            if p.delivery.supersedes is not None}


def _withheld_packets(packets: Sequence[PacketHeld], history: Sequence[HistoryEntry],
                      marks: Marks) -> set[UUID]:
    """The packets built from a history that still held an entry filed here by mistake
    (its version was in what the packet was built from, its misfiling was not)."""
    version_of = {h.event.event_id: h.version for h in history}
    spans = [(version_of[i], m.version) for i, m in marks.moved_away.items() if i in version_of]
    return {p.delivery.packet_id for p in packets if p.packet is not None and any(
        held <= p.packet.history_version < moved for held, moved in spans)}


def _outline(packet: TransferPacketV1) -> dict[str, Any]:
    """Of a withheld packet, what is the pupil's own and not worked out from the history."""
    whole = packet.model_dump(mode="json")
    return {k: whole[k] for k in ("packet_id", "generated_at", "from_setting", "to_setting",
                                  "move", "history_version", "supersedes", "la_notice")}


def _packet(p: PacketHeld, names: dict[str, str], later: dict[UUID, UUID],
            withheld: set[UUID]) -> dict[str, Any]:
    d = p.delivery
    hide = d.packet_id in withheld and p.packet is not None
    return {
        "packet_id": str(d.packet_id),
        "kind": d.kind,
        "kind_words": KIND_WORDS.get(d.kind, d.kind),
        "built_at": d.built_at.isoformat(),
        "receiver": d.receiver,
        "receiver_words": receiver_words(d.receiver, names, p.inbox),
        "inbox": p.inbox,
        "supersedes": str(d.supersedes) if d.supersedes else None,
        "superseded_by": str(later[d.packet_id]) if d.packet_id in later else None,
        "state": d.delivery.state,
        "state_reason": d.delivery.reason,
        "attempts": d.delivery.attempts,
        "delivery_events": [_delivery_event(e) for e in d.events],
        "content": p.packet.model_dump(mode="json") if p.packet and not hide else None,
        "content_withheld": WITHHELD_PACKET if hide else None,
        "content_outline": _outline(p.packet) if hide and p.packet else None,
    }


def receivers_of(access: SubjectAccess) -> list[dict[str, Any]]:
    """Everyone the hub sent a packet about the pupil to, and whether they confirmed it:
    after an erasure, whom the operator tells (their own copies are theirs)."""
    seen: dict[str, dict[str, Any]] = {}
    for p in access.packets:
        d = p.delivery
        states = {e.state for e in d.events}
        entry = seen.setdefault(d.receiver, {
            "receiver": d.receiver, "receiver_words": receiver_words(
                d.receiver, access.setting_names, p.inbox),
            "inbox": p.inbox, "packets_sent": 0, "confirmed_receipt": False})
        entry["packets_sent"] += 1 if "sent" in states else 0
        entry["confirmed_receipt"] |= bool(states & {"received", "accepted"})
    return list(seen.values())


def document(access: SubjectAccess) -> dict[str, Any]:
    """The JSON answer: every record as stored, with the words the page uses beside it."""
    names = access.setting_names
    later = superseded_by(access.packets)
    erasure = access.erasure
    marks = Marks.of(access.history)
    withheld = _withheld_packets(access.packets, access.history, marks)
    return {
        "document": "subject access",
        "document_version": DOCUMENT_VERSION,
        "request": {"law": "UK GDPR Article 15 (right of access by the data subject)",
                    "generated_at": access.generated_at.isoformat(),
                    "requested_by": access.reader.actor, "reason": access.reader.reason,
                    "route": access.reader.route},
        "pupil": _pupil(access, marks),
        "erasure": None if erasure is None else {
            "erased_at": _iso(erasure.erased_at), "erased_by": erasure.erased_by,
            "authorised_by": erasure.authorised_by, "reason": erasure.reason,
            "detail": erasure.detail,
            "what_was_erased": ERASED_WHAT,
            "what_remains": ERASED_REMAINS,
            "received_before_erasure": receivers_of(access)},
        "summary": {"history_events": len(access.history), "packets": len(access.packets),
                    "receipts": len(receipts_of(access)),
                    "access_log_entries": len(access.access),
                    "rejected_messages": len(access.dead_letters)},
        "history": [_history_entry(h, names, marks) for h in access.history],
        "packets": [_packet(p, names, later, withheld) for p in access.packets],
        "receivers": receivers_of(access),
        "receipts": receipts_of(access),
        "access_log": [{"at": a.at.isoformat(), "who": a.actor, "why": a.reason,
                        "what": a.action, "what_words": action_words(a.action),
                        "route": a.route, "packet_id": str(a.packet_id) if a.packet_id else None,
                        "detail": a.detail} for a in access.access],
        "rejected_messages": [{"failed_at": d.failed_at.isoformat(), "reason": d.reason,
                               "problems": [p.model_dump() for p in d.problems],
                               "service": d.service, "source_topic": d.source_topic,
                               **_original(d, access.upn)}
                              for d in access.dead_letters],
        "rejected_messages_unread": access.dead_letters_unread,
        "other_copies": OTHER_COPIES,
    }


WITHHELD_REFUSED_MISFILE = (
    "This refused message said an entry had been recorded under the wrong pupil. The other "
    "pupil it names, and the setting's reason (which may name them), are left out "
    f"({ANOTHER_PUPIL_SOURCES}).")


def _without_the_other_pupil(event: Any, upn: str) -> dict[str, Any] | None:
    """A refused `entry_misfiled` without the pupil who is not `upn` and the reason; None
    for any other message."""
    if not (isinstance(event, dict) and event.get("event_type") == "entry_misfiled"
            and isinstance(event.get("payload"), dict)):
        return None
    pupil = event.get("pupil")
    filed_under = pupil.get("upn") if isinstance(pupil, dict) else None
    kept = {k: v for k, v in event.items() if k != "payload"}
    kept["payload"] = {k: v for k, v in event["payload"].items()
                       if k not in ("correct_pupil", "reason")}
    if filed_under != upn:  # this is the right pupil: the one filed under is the other
        kept.pop("pupil", None)
    return kept


def _original(letter: DeadLetterV1, upn: str) -> dict[str, Any]:
    """A refused message's bytes as they arrived, except a refused `entry_misfiled` (as a
    school sent it, or as ingest accepted it, under `event`, when records refused it): it
    names two pupils, the one the entry was filed under and `correct_pupil`, so the
    answer for either leaves the other, and the reason, out."""
    text = letter.original.decode("utf-8", "replace")
    try:
        message = json.loads(text)
    except ValueError:
        return {"original": text, "withheld": None}
    kept = _without_the_other_pupil(message, upn)
    inner = (_without_the_other_pupil(message.get("event"), upn)
             if kept is None and isinstance(message, dict) else None)
    if kept is None and inner is None:
        return {"original": text, "withheld": None}
    redacted = kept if kept is not None else {**message, "event": inner}
    return {"original": json.dumps(redacted, ensure_ascii=False),
            "withheld": WITHHELD_REFUSED_MISFILE}


ERASED_WHAT = [
    "The pupil's data key was destroyed, so the SEN history and the hub's copies of the "
    "transfer packets can no longer be read by anyone, the hub included.",
    "The pupil's messages were removed from the hub's own message topics.",
]
ERASED_REMAINS = [
    "That events and packets existed, when, and their hash-chain fingerprints (which reveal "
    "nothing of their content), so the audit chain still verifies.",
    "Who received packets before the erasure (listed here): their own copies are theirs, "
    "and the hub's operator tells them of the erasure.",
    "The access log, including the erasure itself.",
]
OTHER_COPIES = [
    "The receiving settings' inbox topics on the hub's message broker hold the packets "
    "listed here, as they were sent, until the topics' retention removes them.",
    "The transfers service keeps a copy of the SEN history listed here, to build packets "
    "from; it is the same events.",
    "Receiving settings keep their own copies of what they received in their own systems; "
    "ask them for those.",
]


# -- the readable page ----------------------------------------------------------------

_CODE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")
"""A code the contracts define (`parent_carer`, `sen_support`), shown as words."""


_env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["day"] = lambda value: value.strftime("%-d %B %Y") if value else "not known"
_env.filters["when"] = (lambda value: value.astimezone(UTC).strftime("%-d %B %Y, %H:%M UTC")
                        if value else "not known")
_env.filters["words"] = lambda value: str(value).replace("_", " ")
_env.tests["code"] = lambda value: isinstance(value, str) and _CODE.fullmatch(value) is not None


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def render_page(access: SubjectAccess) -> str:
    """One self-contained HTML page (no script, no external asset, print styles) in plain
    language, for the pupil or parent; the JSON document holds every record whole."""
    doc = document(access)
    template = _env.from_string(
        resources.files("sendhub").joinpath("templates/subject_access.html.j2").read_text())
    return template.render(
        doc=doc, access=access, at=_at, status_words=STATUS_WORDS,
        la_notice_words=LA_NOTICE_WORDS, route_words=ROUTE_WORDS,
        packets=[(p, doc_p) for p, doc_p in zip(access.packets, doc["packets"], strict=True)],
        history=[(h, doc_h) for h, doc_h in zip(access.history, doc["history"], strict=True)])
