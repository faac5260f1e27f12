"""A pupil's SEN history: the events it holds and the rule for adding one.

Domain layer: no I/O; imports only the standard library and eventsourcing.domain.
Guarantees: one stream per pupil (id = uuid5 of the UPN); events are only ever
appended; each says who recorded it, at which setting, and when it happened; an
`event_id` already in the history is never stored twice. Each event carries the SHA-256
hash of the one before it and its own, so a pupil's history is a hash chain: altering,
deleting or reordering stored rows breaks it where it happened (`chain.first_break`;
replay on the two time axes is `replay.py`).

A setting corrects one of its own entries with a new event (retracted, corrected,
misfiled), never by changing the entry: the entry stays in the chain, marked by the
correction. A misfiled entry is refiled in the right pupil's history as a new event
(`EntryRefiled`) carrying the original's content and where it came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NewType
from uuid import UUID, uuid5

from eventsourcing.domain import DomainEvent

UPN = NewType("UPN", str)
PupilId = NewType("PupilId", UUID)

_PUPIL_NAMESPACE = UUID("6f0f6c3e-2b7a-4c54-9a4f-5d1c0e9b1a10")
GENESIS_HASH = "0" * 64
"""The `previous_hash` of a pupil's first event."""


def pupil_id_for(upn: str) -> PupilId:
    """Deterministic stream id, so every service and tool finds the same pupil."""
    return PupilId(uuid5(_PUPIL_NAMESPACE, upn))


@dataclass(frozen=True)
class SENHistoryEvent(DomainEvent):
    """Something that happened to a pupil's SEN support, as recorded by a setting.

    `timestamp` (from DomainEvent) is when the hub recorded it; `occurred_at` is when it
    happened in school. `school_event` is the event exactly as the school system sent
    it (after validation), kept whole so that nothing a setting said is lost.
    """

    event_id: str
    occurred_at: datetime
    setting_urn: str
    recorded_by_role: str
    upn_is_temporary: bool
    school_event: dict[str, Any]
    previous_hash: str = ""
    event_hash: str = ""

    @property
    def upn(self) -> UPN:
        """Whose history this is, read from the event as the school sent it."""
        return UPN(str(self.school_event["pupil"]["upn"]))


class ConcernRaised(SENHistoryEvent):
    """A teacher, parent, the pupil or an agency raised a concern about possible SEN."""


class AssessmentCompleted(SENHistoryEvent):
    """An assessment (screening, specialist, EHC needs assessment) reached an outcome."""


class PlanReviewed(SENHistoryEvent):
    """A SEN support plan or an EHC plan was reviewed (assess, plan, do, review)."""


@dataclass(frozen=True)
class Destination:
    """Where a pupil moved to: a school (URN), a post-16 provider (UKPRN), or unknown."""

    kind: str
    urn: str | None = None
    ukprn: str | None = None


class PupilMoved(SENHistoryEvent):
    """The pupil left the recording setting (admissions' record of the move)."""

    @property
    def destination(self) -> Destination:
        """The stored destination, typed; the stored event itself stays as sent, since
        its bytes are what the hash chain covers."""
        d = self.school_event["payload"]["destination"]
        return Destination(kind=str(d["kind"]), urn=d.get("urn"), ukprn=d.get("ukprn"))


class EntryRetracted(SENHistoryEvent):
    """The recording setting withdrew one of its entries (recorded in error): the entry
    stays in the chain, and readers of the record leave it out."""


class EntryCorrected(SENHistoryEvent):
    """The recording setting corrected one of its entries: readers of the record show
    the corrected content in its place; the entry itself stays as it was recorded."""


class EntryMisfiled(SENHistoryEvent):
    """The recording setting had filed one of its entries under this pupil by mistake:
    it leaves this pupil's record and is refiled under the right pupil."""


@dataclass(frozen=True)
class EntryRefiled(SENHistoryEvent):
    """An entry moved here from the pupil it had been misfiled under. `school_event` is
    the original as the setting sent it, with this pupil's identity; its `event_id` is
    the original's, so the entry keeps its identity (a later correction names it). The
    `refiled_*` fields point to where it came from: that pupil's stream (its id, not
    its UPN), the version the entry holds there, and the misfiling event."""

    refiled_from_pupil_id: str = ""
    refiled_from_version: int = 0
    refiled_by_event_id: str = ""


CORRECTIONS: tuple[type[SENHistoryEvent], ...] = (EntryRetracted, EntryCorrected, EntryMisfiled)


class LAEventRecorded(SENHistoryEvent):
    """Something the local authority recorded about the pupil's EHC needs assessment or
    plan; `setting_urn` names the LA as `la-<code>`. One subclass per event type, so the
    stored topic says which."""


class EHCRequestReceived(LAEventRecorded):
    """The LA received a request for an EHC needs assessment."""


class EHCAssessmentDecision(LAEventRecorded):
    """The LA decided whether to carry out an EHC needs assessment."""


class EHCPlanDecision(LAEventRecorded):
    """The LA decided whether to issue an EHC plan."""


class EHCPlanIssued(LAEventRecorded):
    """The LA issued the final EHC plan."""


class EHCAnnualReview(LAEventRecorded):
    """An annual review of the EHC plan was held and the LA decided on it."""


class EHCPlanAmended(LAEventRecorded):
    """The LA amended the EHC plan."""


class EHCPlanCeased(LAEventRecorded):
    """The LA ceased to maintain the EHC plan."""


class EHCPlanTransferred(LAEventRecorded):
    """The EHC plan passed to another LA."""


EVENT_CLASSES: Mapping[str, type[SENHistoryEvent]] = {
    "concern_raised": ConcernRaised,
    "assessment_completed": AssessmentCompleted,
    "plan_reviewed": PlanReviewed,
    "pupil_moved": PupilMoved,
    "ehc_request_received": EHCRequestReceived,
    "ehc_assessment_decision": EHCAssessmentDecision,
    "ehc_plan_decision": EHCPlanDecision,
    "ehc_plan_issued": EHCPlanIssued,
    "ehc_annual_review": EHCAnnualReview,
    "ehc_plan_amended": EHCPlanAmended,
    "ehc_plan_ceased": EHCPlanCeased,
    "ehc_plan_transferred": EHCPlanTransferred,
    "entry_retracted": EntryRetracted,
    "entry_corrected": EntryCorrected,
    "entry_misfiled": EntryMisfiled,
    "entry_refiled": EntryRefiled,
}
CORRECTABLE = frozenset({"concern_raised", "assessment_completed", "plan_reviewed"})
"""The entries a setting may correct: its concerns, assessments and plan reviews (a move
is admissions' record, an EHC event the local authority's)."""
EVENT_TYPE_OF: Mapping[type[SENHistoryEvent], str] = {v: k for k, v in EVENT_CLASSES.items()}


@dataclass(frozen=True)
class Entry:
    """What the correction rules need to know of one entry in the history."""

    version: int
    event_type: str
    """The entry's kind (`concern_raised`...); a refiled entry has its original's."""
    setting_urn: str
    occurred_at: datetime
    recorded_by_role: str
    school_event: Mapping[str, Any]
    withdrawn_by: str | None = None
    """The event id of the retraction or misfiling that withdrew it."""


@dataclass(frozen=True)
class PupilHistory:
    """What the history's rules need to know; the events themselves are the record."""

    id: PupilId
    version: int = 0
    event_ids: Mapping[str, str] = field(default_factory=dict)
    """Each event id in the history, with the digest of what the school sent under it."""
    current_setting_urn: str | None = None
    head_hash: str = GENESIS_HASH
    entries: Mapping[str, Entry] = field(default_factory=dict)
    """Each entry by event id, for the correction rules."""


@dataclass(frozen=True)
class Correction:
    """What a correction event asks: which entry, and how (the handler reads it from
    the contract)."""

    kind: str
    """`entry_retracted`, `entry_corrected` or `entry_misfiled`."""
    corrects_event_id: str
    replacement_type: str | None = None
    """For a correction: the event type the replacement payload belongs to."""
    correct_pupil: Mapping[str, Any] | None = None
    """For a misfiled entry: the right pupil's identity, as the school sent it."""
    correct_upn_is_temporary: bool = False

    @property
    def correct_upn(self) -> UPN:
        if self.correct_pupil is None:
            raise ValueError("only a misfiled entry names a correct pupil")
        return UPN(str(self.correct_pupil["upn"]))


@dataclass(frozen=True)
class SchoolEventRecord:
    """A school event to be recorded, as the application hands it to the domain."""

    upn: UPN
    event_type: str
    event_id: str
    occurred_at: datetime
    setting_urn: str
    recorded_by_role: str
    upn_is_temporary: bool
    school_event: dict[str, Any]
    correction: Correction | None = None


class RecordsError(Exception):
    """Base class of the records domain's refusals."""


class UnknownEventType(RecordsError):
    """Raised when a school event's type has no history event (a contract mismatch)."""


class EventIdConflict(RecordsError):
    """Raised when a school re-uses an event id already in the pupil's history for
    different content: the history keeps what it has, and the sender must be told that
    its correction was not applied (a correction needs an event id of its own)."""

    def __init__(self, event_id: str, stored: str, sent: str) -> None:
        super().__init__(f"event_id {event_id} is already in this pupil's history with other "
                         f"content (stored content SHA-256 {stored}, this message's {sent}); "
                         "send a correction as a new event with its own event_id")


class CorrectionRefused(RecordsError):
    """Raised when a correction cannot apply: a setting corrects only its own
    concerns, assessments and plan reviews, in the history of the pupil it corrects,
    and only while they stand (an entry withdrawn stays withdrawn)."""


def check_correction(history: PupilHistory, event: SchoolEventRecord,
                     right_pupil: PupilHistory | None = None) -> Entry:
    """The entry a correction applies to, or why it cannot (`CorrectionRefused`)."""
    correction = event.correction
    if correction is None:
        raise ValueError("not a correction")
    target = correction.corrects_event_id
    entry = history.entries.get(target)
    if entry is None:
        raise CorrectionRefused(f"{correction.kind}: event {target} is not in this pupil's "
                                "history (a correction is sent under the pupil whose "
                                "history holds the entry)")
    if entry.event_type not in CORRECTABLE:
        raise CorrectionRefused(f"{correction.kind}: event {target} is a {entry.event_type}, "
                                "which cannot be corrected this way (only concerns, "
                                "assessments and plan reviews; a move is admissions' "
                                "record and an EHC event the local authority's)")
    if entry.setting_urn != event.setting_urn:
        raise CorrectionRefused(f"{correction.kind}: event {target} was recorded by "
                                f"{entry.setting_urn}, not by {event.setting_urn}; a setting "
                                "corrects only its own entries")
    if entry.withdrawn_by is not None:
        raise CorrectionRefused(f"{correction.kind}: event {target} was already withdrawn "
                                f"by event {entry.withdrawn_by}")
    if correction.kind == "entry_corrected" and correction.replacement_type != entry.event_type:
        raise CorrectionRefused(f"entry_corrected: event {target} is a {entry.event_type}, "
                                f"and the replacement is a {correction.replacement_type} "
                                "payload; a correction keeps the entry's kind")
    if correction.kind == "entry_misfiled":
        if right_pupil is None:
            raise ValueError("a misfiled entry is decided with the right pupil's history")
        if target in right_pupil.event_ids:
            raise CorrectionRefused(f"entry_misfiled: the right pupil's history already "
                                    f"holds event {target}")
    return entry


def content_digest(school_event: Mapping[str, Any]) -> str:
    """SHA-256 of what the school sent, in the hash chain's canonical JSON."""
    return hashlib.sha256(json.dumps(school_event, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def record_school_event(
    history: PupilHistory, event: SchoolEventRecord, right_pupil: PupilHistory | None = None,
) -> list[SENHistoryEvent]:
    """Decide: the history events a school event adds. None when the same event is
    already there (a re-delivery); refused when its id is there with other content, or
    when it is a correction that cannot apply (`check_correction`). A misfiled entry
    adds two events, in two histories: the mark in this one, and the entry refiled in
    `right_pupil`'s (the right pupil's history as it stands)."""
    stored = history.event_ids.get(event.event_id)
    if stored is not None:
        sent = content_digest(event.school_event)
        if sent != stored:
            raise EventIdConflict(event.event_id, stored, sent)
        return []
    try:
        event_class = EVENT_CLASSES[event.event_type]
    except KeyError:
        raise UnknownEventType(event.event_type) from None
    entry = check_correction(history, event, right_pupil) if event.correction else None
    new = event_class(
        originator_id=history.id,
        originator_version=history.version + 1,
        timestamp=event_class.create_timestamp(),
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        setting_urn=event.setting_urn,
        recorded_by_role=event.recorded_by_role,
        upn_is_temporary=event.upn_is_temporary,
        school_event=event.school_event,
        previous_hash=history.head_hash,
    )
    decided: list[SENHistoryEvent] = [replace(new, event_hash=chain_hash(new))]
    if event.correction and event.correction.kind == "entry_misfiled" and entry is not None \
            and right_pupil is not None:
        decided.append(refile(entry, event, event.correction, history.id, right_pupil))
    return decided


def refile(entry: Entry, event: SchoolEventRecord, correction: Correction,
           from_pupil: PupilId, right_pupil: PupilHistory) -> EntryRefiled:
    """The misfiled entry as a new event at the head of the right pupil's history."""
    if correction.correct_pupil is None:
        raise ValueError("a misfiled entry names the right pupil")
    refiled = EntryRefiled(
        originator_id=right_pupil.id,
        originator_version=right_pupil.version + 1,
        timestamp=EntryRefiled.create_timestamp(),
        event_id=correction.corrects_event_id,
        occurred_at=entry.occurred_at,
        setting_urn=entry.setting_urn,
        recorded_by_role=entry.recorded_by_role,
        upn_is_temporary=correction.correct_upn_is_temporary,
        school_event={**entry.school_event, "pupil": dict(correction.correct_pupil)},
        previous_hash=right_pupil.head_hash,
        refiled_from_pupil_id=str(from_pupil),
        refiled_from_version=entry.version,
        refiled_by_event_id=event.event_id,
    )
    return replace(refiled, event_hash=chain_hash(refiled))


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""`json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, the same
bytes, without making an encoder for every event verify hashes."""


def canonical_bytes(event: SENHistoryEvent) -> bytes:
    """Everything an event says, in one fixed serialisation (sorted keys, no spaces, UTF-8).

    Covers the pupil, the version, the type, both times and the previous hash, so that a
    row moved to another version or another pupil no longer matches its hash.
    """
    content = {
        "pupil_id": str(event.originator_id),
        "version": event.originator_version,
        "type": EVENT_TYPE_OF[type(event)],
        "recorded_at": event.timestamp.isoformat(),
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "setting_urn": event.setting_urn,
        "recorded_by_role": event.recorded_by_role,
        "upn_is_temporary": event.upn_is_temporary,
        "school_event": event.school_event,
        "previous_hash": event.previous_hash,
    }
    if isinstance(event, EntryRefiled):  # only refiled events have these (older hashes hold)
        content["refiled_from"] = {"pupil_id": event.refiled_from_pupil_id,
                                   "version": event.refiled_from_version,
                                   "by_event_id": event.refiled_by_event_id}
    return _CANONICAL_JSON.encode(content).encode()


def chain_hash(event: SENHistoryEvent) -> str:
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


def evolve(history: PupilHistory, event: SENHistoryEvent) -> PupilHistory:
    """A correction or a refiled entry says nothing of where the pupil is now."""
    return replace(
        history,
        version=event.originator_version,
        event_ids={**history.event_ids, event.event_id: content_digest(event.school_event)},
        current_setting_urn=(event.destination.urn if isinstance(event, PupilMoved)
                             else history.current_setting_urn
                             if isinstance(event, (LAEventRecorded, EntryRefiled, *CORRECTIONS))
                             else event.setting_urn),
        head_hash=event.event_hash,
        entries=_entries_after(history.entries, event),
    )


def _entries_after(entries: Mapping[str, Entry], event: SENHistoryEvent) -> Mapping[str, Entry]:
    kind = (str(event.school_event["event_type"]) if isinstance(event, EntryRefiled)
            else EVENT_TYPE_OF[type(event)])
    after = {**entries, event.event_id: Entry(
        version=event.originator_version, event_type=kind, setting_urn=event.setting_urn,
        occurred_at=event.occurred_at, recorded_by_role=event.recorded_by_role,
        school_event=event.school_event)}
    if isinstance(event, EntryRetracted | EntryMisfiled):
        target = str(event.school_event["payload"]["corrects_event_id"])
        if (found := after.get(target)) is not None:
            after[target] = replace(found, withdrawn_by=event.event_id)
    return after


def project_pupil_history(
    history: PupilHistory | None, events: Iterable[SENHistoryEvent]
) -> PupilHistory | None:
    """Rebuild the state from stored events (the repository's projector function)."""
    for event in events:
        if history is None:
            history = PupilHistory(id=PupilId(event.originator_id))
        history = evolve(history, event)
    return history
