"""A packet in the receiving setting's words: settings by name, an amendment as a
sentence, what is still open at the move, what has been tried, the EHC plan and, for a
local authority's notice, what the notice is. Shared by the HTML page and the terminal
summary so both say the same thing.

Pure: a function of the packet (and, for an amendment's date, the packet it replaces
when the caller has it).
"""

from __future__ import annotations

import re
from datetime import date

from contracts.packet import EHCPlanDetails, Intervention, TransferPacketV1
from contracts.school_events import MoveKind
from services.shared.sen_wording import words

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
        return "an unknown destination (a possible child missing education: for the local authority)"
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


# -- post-16 packets ----------------------------------------------------------------


def post16_basis_sentence(packet: TransferPacketV1) -> str | None:
    """On what basis a post-16 packet was shared, as the packet states it."""
    return packet.post16_basis.reason if packet.post16_basis else None


def post16_policy_sentence(packet: TransferPacketV1) -> str:
    """What a full post-16 packet itemises and what it summarises."""
    sentence = ("Post-16 packet: current plan, needs, views and open concerns in full; "
                "history itemised for the two years before the move and summarised before "
                "that")
    months = packet.post16_basis.concerns_itemised_months if packet.post16_basis else None
    if months:
        sentence += (f"; concerns raised more than {months} months before the move are "
                     "counted per area of need, not itemised (open ones are listed in full)")
    return sentence + "."


def concern_summary_lines(packet: TransferPacketV1) -> list[str]:
    """'SEMH: 3 concerns raised from 5 October 2021 to 2 March 2023 (1 still open)'."""
    lines = []
    for s in packet.concerns_summary:
        when = (f"on {day(s.first_raised_on)}" if s.first_raised_on == s.last_raised_on
                else f"from {day(s.first_raised_on)} to {day(s.last_raised_on)}")
        line = f"{s.area_of_need.value}: {s.concerns} concern(s) raised {when}"
        if s.still_open:
            line += f" ({s.still_open} still open, listed in full)"
        lines.append(line)
    return lines


# -- the local authority's notices and the EHC plan ----------------------------------

CME_DUTY = ("Education Act 1996, s.436A; DfE statutory guidance \"Children missing "
            "education\"")
NOT_CONFIRMED = "Reported by the school, not confirmed by the LA"


def la_named(code: str | None, name: str | None = None) -> str:
    """`Bristol, City of (LA 801)`, `LA 801`, or `an LA not known to the hub`."""
    if not code:
        return "an LA not known to the hub"
    return f"{name} (LA {code})" if name else f"LA {code}"


def _new_la(packet: TransferPacketV1) -> str:
    clock = next((c for c in packet.clocks_now_running if c.la_code), None)
    return la_named(clock.la_code if clock else packet.to_setting.la_code)


def notice_heading(packet: TransferPacketV1) -> str | None:
    """What a notice to a local authority is, as its heading; None for a setting's packet."""
    if packet.la_notice == "children_missing_education":
        return "Possible child missing education: no destination known"
    if packet.la_notice == "ehc_plan_transfer_in":
        return "EHC plan transfer: a plan moves into your care"
    if packet.la_notice == "ehc_plan_transfer_out":
        return "EHC plan transfer: a plan you maintain moves to another local authority"
    return None


def notice_sentence(packet: TransferPacketV1) -> str | None:
    """The notice in plain words: what happened, whose duty it now is, and why."""
    name = packet.pupil.given_name
    left = day(packet.move.effective_date)
    if packet.la_notice == "children_missing_education":
        la = la_named(packet.from_setting.la_code)
        return (f"{name} left {sending_school(packet)} on {left} and no destination is known. "
                f"{name} is a possible child missing education, for {la}, the local "
                "authority of the school they left: it must make arrangements to identify "
                f"children missing education in its area ({CME_DUTY}). When {name}'s new "
                "setting becomes known, the packet is re-sent there and this one is marked "
                "re-routed.")
    plan = packet.ehc_plan
    if packet.la_notice not in ("ehc_plan_transfer_in", "ehc_plan_transfer_out") or plan is None:
        return None
    old = la_named(plan.maintaining_la, plan.maintaining_la_name)
    new = _new_la(packet)
    moved = (f"{name}, whose EHC plan is maintained by {old}, moves to "
             f"{receiving_setting(packet)} in {new}, effective {left}. The plan transfers to "
             f"{new} (SEND Regulations 2014, reg. 15)")
    if packet.la_notice == "ehc_plan_transfer_in":
        return moved + ": the clocks below now run for you."
    return moved + f": {new} has the same notice, and the clocks below now run for it."


def plan_maintained_by(plan: EHCPlanDetails) -> str:
    if not plan.confirmed_by_la:
        return la_named(plan.maintaining_la, plan.maintaining_la_name) if plan.maintaining_la \
            else "Not known: no local authority has confirmed the plan through the hub"
    return la_named(plan.maintaining_la, plan.maintaining_la_name)


def case_officer_line(plan: EHCPlanDetails) -> str | None:
    officer = plan.case_officer
    if officer is None:
        return None
    return ", ".join(x for x in (officer.role, officer.work_email, officer.work_telephone) if x)


def plan_lines(packet: TransferPacketV1) -> list[tuple[str, str]]:
    """The EHC plan as (label, text) rows, for the terminal and the page alike."""
    plan = packet.ehc_plan
    if plan is None:
        return []
    rows = [("Maintained by", plan_maintained_by(plan))]
    if not plan.confirmed_by_la:
        rows.append(("Confirmed", NOT_CONFIRMED))
    rows.append(("Issued", day(plan.issued_on) if plan.issued_on else "not known"))
    officer = case_officer_line(plan)
    if officer:
        rows.append(("Case officer", officer))
    if plan.needs:
        rows.append(("Needs (section B)", ", ".join(f"{n.rank}. {n.code.value}"
                                                    for n in plan.needs)))
    if plan.provision:
        rows.append(("Provision (section F)", "; ".join(
            f"{p.description}, {p.frequency}" for p in plan.provision)))
    if plan.outcomes:
        rows.append(("Outcomes (section E)", "; ".join(plan.outcomes)))
    if plan.named_setting_urn:
        rows.append(("Named setting (section I)", setting_name(packet, plan.named_setting_urn)))
    if plan.last_reviewed_on:
        rows.append(("Last reviewed", day(plan.last_reviewed_on)))
    rows.append(("Next annual review due", day(plan.next_annual_review_due)
                 if plan.next_annual_review_due else "not known"))
    if plan.transferred_from_la:
        rows.append(("Transferred from", la_named(plan.transferred_from_la)))
    return rows
