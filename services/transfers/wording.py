"""A packet in the receiving setting's words: settings by name, an amendment as a
sentence, what is still open at the move, and what has been tried. Shared by the HTML
page and the terminal summary so both say the same thing.

Pure: a function of the packet (and, for an amendment's date, the packet it replaces
when the caller has it).
"""

from __future__ import annotations

import re
from datetime import date

from contracts.packet import Intervention, TransferPacketV1
from contracts.school_events import MoveKind
from services.shared.sen_record import words

WHAT_WAS_RECORDED = {"concern_raised": "a concern", "assessment_completed": "an assessment",
                     "plan_reviewed": "a review"}
EXAM_ARRANGEMENTS_FROM_AGE = 10
"""A phase transfer at this age or older is into secondary school (Year 7 starts at 11)."""


def day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def setting_name(packet: TransferPacketV1, urn: str | None) -> str:
    """A setting by the name the packet knows for it; 'the school with URN n' otherwise."""
    for setting in (packet.from_setting, packet.to_setting):
        if urn and setting.urn == urn and setting.name:
            return setting.name
    if urn and urn in packet.setting_names:
        return packet.setting_names[urn]
    return f"the school with URN {urn}"


def described(packet: TransferPacketV1, description: str) -> str:
    """A timeline line with each "school URN n" replaced by the school's name, when known."""
    def name(found: re.Match[str]) -> str:
        named = setting_name(packet, found.group(1))
        return found.group(0) if named.startswith("the school with URN") else named

    return re.sub(r"school URN ([0-9]{6})", name, description)


def sending_school(packet: TransferPacketV1) -> str:
    return setting_name(packet, packet.from_setting.urn)


def receiving_setting(packet: TransferPacketV1) -> str:
    to = packet.to_setting
    if to.kind == "unknown":
        return "an unknown destination (lost pupil: for the local authority)"
    if to.name:
        return to.name
    return (f"the school with URN {to.urn}" if to.kind == "school"
            else f"the post-16 provider with UKPRN {to.ukprn}")


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def amendment_sentence(packet: TransferPacketV1,
                       replaced: TransferPacketV1 | None = None) -> str | None:
    """'Replaces the packet sent on 1 December 2025 because Oakfield Primary School
    recorded an assessment after Amira left.' None for a first packet."""
    if packet.supersedes is None:
        return None
    sent = (f"the packet sent on {day(replaced.generated_at.date())}" if replaced
            else f"the packet sent earlier for {packet.pupil.given_name}")
    if packet.rerouted_from_lost_pupils:
        return (f"Replaces {sent} to the local authority's lost-pupils inbox: "
                f"{packet.pupil.given_name}'s new setting is now known.")
    added = sorted(packet.timeline, key=lambda t: t.history_version)
    added = added[len(added) - len(packet.changes):] if packet.changes else []
    if replaced is not None:
        added = [t for t in packet.timeline if t.history_version > replaced.history_version]
    if not added:
        return f"Replaces {sent}: {sending_school(packet)} added to the record."
    parts = []
    for after_leaving, when in ((True, "after"), (False, "late, dated before")):
        kinds = sorted({WHAT_WAS_RECORDED.get(t.event_type, "an entry") for t in added
                        if t.recorded_after_leaving is after_leaving})
        if kinds:
            parts.append(f"{_joined(kinds)} {when} {packet.pupil.given_name} left")
    schools = _joined(sorted({setting_name(packet, t.setting_urn) for t in added}))
    return f"Replaces {sent} because {schools} recorded {'; and '.join(parts)}."


OPEN_CONCERNS = "Open concerns: not yet followed up"
REFERRALS = "Referrals still waiting"
EHC_REQUEST = "EHC needs assessment requested, not concluded"
REVIEW_OVERDUE = "Plan review overdue"


def open_items(packet: TransferPacketV1) -> list[tuple[str, str]]:
    """What was still open at the move: (heading, one plain sentence) each."""
    items = []
    for c in packet.concerns_open:
        items.append((OPEN_CONCERNS, f"{', '.join(c.areas_of_need)}: raised "
                      f"{day(c.raised_on)} by {words(c.raised_by.value)} at "
                      f"{setting_name(packet, c.setting_urn)}, not yet answered by an "
                      f"assessment. {c.summary}"))
    for r in packet.referrals_pending:
        to = r.referred_to or "a specialist"
        areas = f" ({', '.join(r.areas)})" if r.areas else ""
        items.append((REFERRALS, f"Referred to {to}{areas} on {day(r.referred_on)} by "
                      f"{setting_name(packet, r.setting_urn)}; still waiting at the move. "
                      f"{r.summary}"))
    if packet.ehc_request_open:
        e = packet.ehc_request_open
        items.append((EHC_REQUEST, f"Requested on {day(e.requested_on)} by "
                      f"{setting_name(packet, e.setting_urn)}; no decision or plan yet."))
    if packet.review_overdue_since:
        items.append((REVIEW_OVERDUE, f"The plan's review was due on "
                      f"{day(packet.review_overdue_since)} and was not held before the move."))
    return items


NOTHING_OPEN = ("Nothing open at the move: no unanswered concern, pending referral, "
                "EHC needs assessment request or overdue review.")


def intervention_when(packet: TransferPacketV1, i: Intervention) -> str:
    if i.open_at_move:
        return (f"from {day(i.started_on)} until the move "
                f"(provided by {setting_name(packet, i.setting_urn)})")
    return f"from {day(i.started_on)} to {day(i.ended_on)}"


def intervention_line(packet: TransferPacketV1, i: Intervention) -> str:
    """One provision tried, for the terminal: what, where, when, with what result."""
    line = (f"{i.description} ({words(i.kind.value)}, {i.frequency}) at "
            f"{setting_name(packet, i.setting_urn)}, {intervention_when(packet, i)}")
    if i.what_worked:
        line += f"; worked: {i.what_worked}"
    if i.what_did_not_work:
        line += f"; did not work: {i.what_did_not_work}"
    return line


def exam_arrangements_first(packet: TransferPacketV1) -> bool:
    """Exam access arrangements go first for a post-16 provider or a move into
    secondary (a post-16 move, or a phase transfer at 10 or older): they must apply
    for them again before the pupil's next exams."""
    if packet.to_setting.kind == "post16_provider" or packet.move.kind is MoveKind.POST16:
        return True
    born, moved = packet.pupil.date_of_birth, packet.move.effective_date
    age = moved.year - born.year - ((moved.month, moved.day) < (born.month, born.day))
    return packet.move.kind is MoveKind.PHASE_TRANSFER and age >= EXAM_ARRANGEMENTS_FROM_AGE
