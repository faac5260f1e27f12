"""The record's codes and events in the words people read: one wording, so the readable
packet, the forms, the auditor's replay, the report and the web pages never describe
the same fact differently.

Pure, like `sen_record.py`, whose entries and correction marks it describes.
"""

from __future__ import annotations

from contracts.inbound import InboundEvent
from contracts.la_events import (
    EHCAnnualReviewV1,
    EHCAssessmentDecisionV1,
    EHCPlanAmendedV1,
    EHCPlanCeasedV1,
    EHCPlanDecisionV1,
    EHCPlanIssuedV1,
    EHCPlanTransferredV1,
    EHCRequestReceivedV1,
)
from contracts.packet import SENStatus
from contracts.school_events import (
    AssessmentCompletedV1,
    ConcernRaisedV1,
    EntryCorrectedV1,
    EntryMisfiledV1,
    EntryRetractedV1,
    PlanReviewedV1,
    Post16Destination,
    PupilMovedV1,
    SchoolDestination,
)
from services.shared.sen_record import CorrectionKind, CorrectionMark, HistoryEntry

_ACRONYMS = {"ehc": "EHC", "sen": "SEN", "senco": "SENCO", "camhs": "CAMHS", "post16": "post-16"}


def words(code: str, capital: bool = False) -> str:
    """A code as words: `ehc_plan_issued` -> `EHC plan issued`."""
    text = " ".join(_ACRONYMS.get(w, w) for w in code.split("_"))
    return text[0].upper() + text[1:] if capital and text else text


def describe_event(event: HistoryEntry) -> str:
    e = event.event
    if isinstance(e, ConcernRaisedV1):
        areas = ", ".join(e.payload.areas_of_need)
        return f"Concern raised by {words(e.payload.raised_by.value)} ({areas})"
    if isinstance(e, AssessmentCompletedV1):
        needs = ", ".join(f"{n.code}" for n in e.payload.identified_needs) or "no needs identified"
        kind = {"screening": "Screening assessment", "specialist": "Specialist assessment",
                "ehc_needs_assessment": "EHC needs assessment"}[e.payload.assessment_kind.value]
        return (f"{kind} by {words(e.payload.assessor_role.value)}: "
                f"{words(e.payload.outcome.value)} ({needs})")
    if isinstance(e, PlanReviewedV1):
        return (f"{words(e.payload.plan_kind.value, capital=True)} reviewed: "
                f"{words(e.payload.decision.value)}")
    if isinstance(e, EntryRetractedV1 | EntryCorrectedV1 | EntryMisfiledV1):
        return describe_correction(e)
    if not isinstance(e, PupilMovedV1):
        return describe_la_event(e)
    d = e.payload.destination
    if isinstance(d, SchoolDestination):
        where = f"school URN {d.urn}"
    elif isinstance(d, Post16Destination):
        where = f"post-16 provider UKPRN {d.ukprn}"
    else:
        where = "an unknown destination (lost pupil)"
    return (f"Moved ({words(e.payload.move_kind.value)}) to {where}, "
            f"effective {e.payload.effective_date.isoformat()}")


def describe_correction(e: EntryRetractedV1 | EntryCorrectedV1 | EntryMisfiledV1) -> str:
    """A correction as the auditor's replay shows it (the corrected entry keeps its
    own line, marked); a misfiled entry's right pupil is not named."""
    target, reason = e.payload.corrects_event_id, e.payload.reason
    if isinstance(e, EntryRetractedV1):
        return f"Entry {target} withdrawn by the school that recorded it: {reason}"
    if isinstance(e, EntryMisfiledV1):
        return (f"Entry {target} had been filed under the wrong pupil and was moved to the "
                f"right pupil's history: {reason}")
    return f"Entry {target} corrected by the school that recorded it: {reason}"


MARK_WORDS: dict[CorrectionKind, str] = {
    "entry_retracted": "withdrawn", "entry_corrected": "corrected",
    "entry_misfiled": "moved to the right pupil"}


def mark_words(mark: CorrectionMark) -> str:
    """An entry's correction as the auditor sees it beside the entry."""
    return f"{MARK_WORDS[mark.kind]} on {mark.on.isoformat()} (v{mark.version}: {mark.reason})"


def describe_la_event(e: InboundEvent) -> str:
    """A local authority's EHC event in a sentence, naming the LA by its code."""
    la = f"LA {getattr(e.source, 'la', '?')}"
    if isinstance(e, EHCRequestReceivedV1):
        return (f"{la} received a request for an EHC needs assessment "
                f"(from {words(e.payload.requested_by.value)}) on {e.payload.received_on}")
    if isinstance(e, EHCAssessmentDecisionV1):
        verb = "will carry out" if e.payload.decision == "assess" else "will not carry out"
        return f"{la} decided it {verb} an EHC needs assessment ({e.payload.decided_on})"
    if isinstance(e, EHCPlanDecisionV1):
        verb = "will issue" if e.payload.decision == "issue" else "will not issue"
        return f"{la} decided it {verb} an EHC plan ({e.payload.decided_on})"
    if isinstance(e, EHCPlanIssuedV1):
        needs = ", ".join(n.code.value for n in e.payload.needs)
        return (f"{la} issued the final EHC plan on {e.payload.issued_on} "
                f"(maintained by LA {e.payload.maintaining_la}; {needs})")
    if isinstance(e, EHCAnnualReviewV1):
        kind = "phase-transfer review" if e.payload.for_phase_transfer else "annual review"
        return f"EHC plan {kind} held on {e.payload.held_on}: {words(e.payload.outcome)}"
    if isinstance(e, EHCPlanAmendedV1):
        return f"{la} amended the EHC plan on {e.payload.amended_on}"
    if isinstance(e, EHCPlanCeasedV1):
        return (f"{la} ceased to maintain the EHC plan on {e.payload.ceased_on} "
                f"({words(e.payload.reason.value)})")
    if isinstance(e, EHCPlanTransferredV1):
        return (f"{la} transferred the EHC plan to LA {e.payload.to_la} "
                f"on {e.payload.transferred_on}")
    return words(e.event_type, capital=True)


STATUS_WORDS: dict[SENStatus, str] = {
    "none": "No SEN", "sen_support": "SEN support (K)", "ehc_plan": "EHC plan (E)"}
"""A status as people read it, with its census code: one wording, so the readable packet,
the terminal summaries and the replay never describe the same status differently."""
