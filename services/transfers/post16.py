"""Post-16 packets: what a post-16 provider gets, decided by the lawful basis (and, with
consent, the agreement) the sending school recorded on the move.

Domain layer, pure. There is no legal duty to send a college anything; the sending
school needs a lawful basis to share (UK GDPR Article 6, and Article 9 for SEN as
health data), and from the end of compulsory school age the decision is the young
person's, or their parent's only when the young person lacks capacity (SEND Code of
Practice 2015 chapter 8; Children and Families Act 2014 s.80; Mental Capacity Act 2005).

- **Full** (the post-16 policy below) when the basis is `public_task` or
  `vital_interests`, or `consent` with agreement `agreed`.
- **Minimal** otherwise (no `post16_sharing` recorded, or consent `refused` or
  `withdrawn`): that an SEN history exists, the SEN status, and whom to contact at the
  sending school; nothing about needs, concerns, assessments or plans.

A full post-16 packet keeps the current picture whole and itemises history for the two
years before the move (`HISTORY_ITEMISED_YEARS`); concerns raised more than
`concerns_itemised_months` before the move (a local policy,
SENDHUB_POST16_CONCERNS_ITEMISED_MONTHS, default 24) are summarised per area of need
(`concerns_summary`), not itemised; an open concern stays itemised at any age (README
"What the packet never hides"). Every post-16 packet names the learner by ULN first
where known (`learner_identifier`).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import date
from typing import Literal
from uuid import UUID

from contracts.identifiers import TEMPORARY_ULN
from contracts.packet import (
    ConcernSummary,
    LearnerIdentifier,
    Plans,
    Post16Basis,
    TransferPacketV1,
)
from contracts.post16 import AgreedBy, Agreement, LawfulBasis, Post16Sharing
from contracts.school_events import ConcernRaisedV1, NeedCode
from services.transfers.packet_parts import add_months

PacketForm = Literal["full", "minimal"]

HISTORY_ITEMISED_YEARS = 2
"""Post-16 policy: timeline, assessments and reviews older than this before the move are
summarised per setting, not itemised (the latest assessment and review are kept)."""
CONCERNS_ITEMISED_MONTHS = 24
"""The default of SENDHUB_POST16_CONCERNS_ITEMISED_MONTHS (local policy, not law)."""

ARTICLE_6 = {LawfulBasis.CONSENT: "consent, UK GDPR Article 6(1)(a)",
             LawfulBasis.VITAL_INTERESTS: "vital interests, UK GDPR Article 6(1)(d)",
             LawfulBasis.PUBLIC_TASK: "public task, UK GDPR Article 6(1)(e)"}

MINIMAL_CHANGE = ("The sending school added to the record after the move. This is a "
                  "minimal packet, so what was added is not itemised.")


@dataclass(frozen=True)
class Post16Rules:
    """The local policy a post-16 packet is built by (from the hub's settings)."""

    concerns_itemised_months: int = CONCERNS_ITEMISED_MONTHS


DEFAULT_RULES = Post16Rules()

def _who(sharing: Post16Sharing) -> str:
    if sharing.agreed_by is AgreedBy.PARENT:
        return "the parent (the young person lacks capacity to decide)"
    return "the young person"


def _on(day: date | None) -> str:
    return f"{day.day} {day:%B %Y}" if day else "a date not given"


def decide(sharing: Post16Sharing | None) -> tuple[PacketForm, str]:
    """Full or minimal, and why. Full: public task or vital interests, or consent that
    was agreed; minimal: nothing recorded, or consent refused or withdrawn."""
    if sharing is None:
        return "minimal", ("The move records no lawful basis for sharing the SEN history "
                           "with the post-16 provider (no post16_sharing).")
    basis = ARTICLE_6[sharing.lawful_basis]
    if sharing.lawful_basis is not LawfulBasis.CONSENT:
        return "full", f"Shared on the basis of {basis}, as the sending school recorded."
    who, when = _who(sharing), _on(sharing.agreed_on)
    if sharing.agreement is Agreement.AGREED:
        return "full", f"Shared with {basis}: {who} agreed on {when}."
    if sharing.agreement is Agreement.WITHDRAWN:
        return "minimal", f"The basis was {basis}, and {who} withdrew agreement on {when}."
    return "minimal", f"The basis was {basis}, and {who} refused on {when}."


def basis_of(sharing: Post16Sharing | None, form: PacketForm, reason: str,
             rules: Post16Rules) -> Post16Basis:
    """The packet's record of what the school recorded and the form that follows."""
    return Post16Basis(
        recorded=sharing is not None,
        lawful_basis=sharing.lawful_basis if sharing else None,
        agreement=sharing.agreement if sharing else None,
        agreed_by=sharing.agreed_by if sharing else None,
        agreed_on=sharing.agreed_on if sharing else None,
        young_person_lacks_capacity=sharing.young_person_lacks_capacity if sharing else False,
        packet_form=form, reason=reason,
        concerns_itemised_months=rules.concerns_itemised_months if form == "full" else None)


def learner_identifier(packet: TransferPacketV1) -> LearnerIdentifier:
    """The ULN where known (the temporary 9999999999 is not a learner's number), else
    the UPN."""
    uln = packet.pupil.uln
    if uln and uln != TEMPORARY_ULN:
        return LearnerIdentifier(scheme="ULN", value=uln)
    return LearnerIdentifier(scheme="UPN", value=packet.pupil.upn)


FOR_LOCAL_AUTHORITY = ("A notice to the local authority about the EHC plan, which follows "
                       "the young person (SEND Regulations 2014, reg. 15): not limited by "
                       "what was recorded for sharing with the post-16 provider.")


def post16_packet(packet: TransferPacketV1, sharing: Post16Sharing | None,
                  concerns: Sequence[ConcernRaisedV1], rules: Post16Rules = DEFAULT_RULES,
                  *, for_local_authority: bool = False) -> TransferPacketV1:
    """The packet for a post-16 provider: full or minimal by `decide`, the ULN first.
    `concerns` are every concern the packet covers (the SEN record's); a local
    authority's copy (`for_local_authority`) is the full form whatever was recorded."""
    form, reason = decide(sharing)
    if for_local_authority:
        form, reason = "full", FOR_LOCAL_AUTHORITY
    packet = packet.model_copy(update={
        "policy": "post16", "learner_identifier": learner_identifier(packet),
        "post16_basis": basis_of(sharing, form, reason, rules)})
    if form == "minimal":
        return minimal(packet, reason)
    return full(packet, concerns, rules)


def minimal_statement(packet: TransferPacketV1, reason: str) -> str:
    exists = ("an SEN history exists" if packet.has_sen_history
              else "no SEN history is recorded")
    return (f"Minimal packet. {reason} It says only that {exists}, the SEN status, and whom "
            "to contact at the sending school; nothing about needs, concerns, assessments "
            "or plans. The hub sends the full packet only for a move that records a lawful "
            "basis (public task or vital interests) or the young person's agreement.")


HISTORY_WITHHELD = ("An SEN history is recorded for this young person. This minimal packet "
                    "does not itemise it: ask the sending school's SEN contact.")


def minimal(packet: TransferPacketV1, reason: str) -> TransferPacketV1:
    """That an SEN history exists, the SEN status, whom to contact; nothing else about
    needs, concerns, assessments or plans (and no list of the schools in the history)."""
    return packet.model_copy(update={
        "minimal_packet": minimal_statement(packet, reason),
        "sen_history_statement": (HISTORY_WITHHELD if packet.has_sen_history
                                  else packet.sen_history_statement),
        "current_needs": [], "concerns_open": [], "assessments": [],
        "plans": Plans(current=None, reviews=[]), "timeline": [],
        "sen_provision_history": [], "history_summary": [], "concerns_summary": [],
        "referrals_pending": [], "ehc_request_open": None, "review_overdue_since": None,
        "interventions": [], "exam_access_arrangements": [], "ehc_plan": None,
        "setting_names": {}, "changes": [MINIMAL_CHANGE] if packet.changes else []})


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def concerns_cutoff(moved_on: date, rules: Post16Rules) -> date:
    """Concerns raised on or after this day are itemised; earlier ones summarised."""
    return add_months(moved_on, -rules.concerns_itemised_months)


def old_concerns(concerns: Sequence[ConcernRaisedV1], cutoff: date,
                 open_ids: Set[UUID]) -> list[ConcernSummary]:
    """Concerns raised before `cutoff`, per area of need (a concern about two areas
    counts in each): how many, from when to when, how many still open."""
    by_area: dict[NeedCode, list[ConcernRaisedV1]] = {}
    for concern in concerns:
        if concern.occurred_at.date() < cutoff:
            for area in concern.payload.areas_of_need:
                by_area.setdefault(area, []).append(concern)
    summary = []
    for area, raised in sorted(by_area.items()):
        days = sorted(c.occurred_at.date() for c in raised)
        summary.append(ConcernSummary(
            area_of_need=area, concerns=len(raised), first_raised_on=days[0],
            last_raised_on=days[-1],
            still_open=sum(1 for c in raised if c.event_id in open_ids)))
    return summary


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def full(packet: TransferPacketV1, concerns: Sequence[ConcernRaisedV1],
         rules: Post16Rules = DEFAULT_RULES) -> TransferPacketV1:
    """What a college needs and no more (README, "Post-16 packets").

    Kept whole: SEN status and its census history, current needs, the current plan with
    its targets and provision, open concerns, and the most recent review (what worked,
    the parent/carer's and the pupil's views). Itemised only for the last two years
    before the move: assessments, reviews and the timeline's other entries; concerns
    only for `rules.concerns_itemised_months`, older ones counted per area of need.
    What is not itemised is summarised in one line per setting. Always kept: the latest
    assessment and the latest review."""
    moved_on = packet.move.effective_date
    cutoff = years_before(moved_on, HISTORY_ITEMISED_YEARS)
    concern_cutoff = concerns_cutoff(moved_on, rules)

    def itemised(t_type: str, on: date) -> bool:
        return on >= (concern_cutoff if t_type == "concern_raised" else cutoff)

    old = [t for t in packet.timeline if not itemised(t.event_type, t.occurred_at.date())]
    summary = []
    for urn in sorted({t.setting_urn for t in old}):
        at = [t for t in old if t.setting_urn == urn]
        kinds = {k: sum(1 for t in at if t.event_type == k) for k in
                 ("concern_raised", "assessment_completed", "plan_reviewed")}
        period = f"({at[0].occurred_at:%B %Y} to {at[-1].occurred_at:%B %Y})"
        counts = (f"{kinds['assessment_completed']} assessment(s), {kinds['plan_reviewed']} "
                  "plan review(s); itemised in the school's own records.")
        if concern_cutoff == cutoff:
            summary.append(f"Before {_day(cutoff)} at URN {urn} {period}: "
                           f"{kinds['concern_raised']} concern(s), {counts}")
        else:
            summary.append(f"Not itemised here, at URN {urn} {period}: "
                           f"{kinds['concern_raised']} concern(s) raised before "
                           f"{_day(concern_cutoff)}; from before {_day(cutoff)}, {counts}")
    latest_assessment = packet.assessments[-1:] if packet.assessments else []
    latest_review = packet.plans.reviews[-1:] if packet.plans.reviews else []
    assessments = [a for a in packet.assessments if a.completed_on >= cutoff]
    reviews = [r for r in packet.plans.reviews if r.reviewed_on >= cutoff]
    return packet.model_copy(update={
        "history_summary": summary,
        "timeline": [t for t in packet.timeline if itemised(t.event_type, t.occurred_at.date())],
        "assessments": assessments or latest_assessment,
        "plans": packet.plans.model_copy(update={"reviews": reviews or latest_review}),
        "concerns_summary": old_concerns(concerns, concern_cutoff,
                                         {c.event_id for c in packet.concerns_open}),
    })
