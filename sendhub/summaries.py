"""Readable summaries of packets and dead letters for the terminal (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from contracts.dead_letter import DeadLetterV1
from contracts.packet import TransferPacketV1
from services.shared.sen_wording import STATUS_WORDS, words
from services.transfers import wording
from services.transfers.domain import PacketDelivery


def packet_summary(packet: TransferPacketV1,
                   replaced: TransferPacketV1 | None = None) -> Panel:
    """The packet in the receiver's words (the same sentences as the HTML page)."""
    p = packet.pupil
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    heading = wording.notice_heading(packet)
    if heading:
        lines.add_row(Text("Notice", style="bold magenta"), Text(heading, style="bold"))
        lines.add_row("", wording.notice_sentence(packet) or "")
        for clock in packet.clocks_now_running:
            lines.add_row(Text("Clock", style="bold magenta"),
                          f"{clock.title}: due {wording.day(clock.due_on)} ({clock.source})")
    lines.add_row("Pupil", f"{p.given_name} {p.family_name}")
    lines.add_row("Move", f"{words(packet.move.kind.value)} from {wording.sending_school(packet)} "
                  f"to {wording.receiving_setting(packet)}, effective "
                  f"{wording.day(packet.move.effective_date)}")
    amendment = wording.amendment_sentence(packet, replaced)
    if amendment:
        what = "Re-routed" if packet.rerouted_from_lost_pupils else "Amended"
        lines.add_row(Text(what, style="bold yellow"), amendment)
    contact = packet.sending_contact
    lines.add_row("SEN contact", ", ".join(x for x in (contact.role, contact.work_email,
                                                      contact.work_telephone) if x)
                  if contact else Text("not given", style="italic"))
    lines.add_row("For matching", _matching(packet))
    basis = wording.post16_basis_sentence(packet)
    if basis:
        lines.add_row("Shared", basis)
    lines.add_row("SEN status", STATUS_WORDS[packet.sen_status])
    if packet.minimal_packet:
        lines.add_row(Text("Minimal packet", style="bold yellow"), packet.minimal_packet)
        if packet.has_sen_history:
            lines.add_row("History", Text(packet.sen_history_statement, style="italic"))
        return Panel(Group(lines), title=f"Transfer packet for {p.given_name} {p.family_name}",
                     expand=False)
    if packet.policy == "post16":
        lines.add_row("Policy", wording.post16_policy_sentence(packet) + "".join(
            f"\n{s}" for s in (*packet.history_summary,
                                *wording.concern_summary_lines(packet))))
    for label, text in wording.plan_lines(packet):
        style = "bold yellow" if label == "Confirmed" else "bold"
        lines.add_row(Text(f"EHC plan: {label}", style=style), text)
    _still_open(lines, packet)
    if not packet.has_sen_history:
        lines.add_row("History", Text(packet.sen_history_statement, style="italic"))
    else:
        _history_rows(lines, packet)
    title = ("Notice to the local authority" if packet.la_notice else "Transfer packet")
    return Panel(Group(lines), title=f"{title} for {p.given_name} {p.family_name}",
                 expand=False)


def _matching(packet: TransferPacketV1) -> str:
    p = packet.pupil
    first = packet.learner_identifier
    parts = [f"ULN {p.uln}"] if first and first.scheme == "ULN" else []
    parts.append(f"born {wording.day(p.date_of_birth)}")
    if p.gender:
        parts.append({"M": "male", "F": "female"}[p.gender])
    parts.append(f"UPN {p.upn}" + (" (temporary)" if p.upn_is_temporary else ""))
    if p.uln and not parts[0].startswith("ULN"):
        parts.append(f"ULN {p.uln}")
    return ", ".join(parts)


def _still_open(lines: Table, packet: TransferPacketV1) -> None:
    items = wording.open_items(packet)
    if not items:
        lines.add_row("Still open", wording.NOTHING_OPEN)
    for heading, text in items:
        lines.add_row(Text(heading, style="bold red"), text)


def _history_rows(lines: Table, packet: TransferPacketV1) -> None:
    needs = ", ".join(f"{n.rank}. {n.code}" for n in packet.current_needs) or "none identified"
    lines.add_row("Current needs", needs)
    exams = packet.exam_access_arrangements
    if exams and wording.exam_arrangements_first(packet):
        lines.add_row(Text("Exam access", style="bold"), "\n".join(
            wording.intervention_line(packet, i) for i in exams))
    if packet.interventions:
        lines.add_row("What has been tried", "\n".join(
            wording.intervention_line(packet, i) for i in packet.interventions))
    current = packet.plans.current
    if current:
        lines.add_row("Current plan", f"{words(current.plan_kind.value)}, "
                      f"last reviewed {wording.day(current.reviewed_on)}; "
                      f"{len(current.targets)} target(s), {len(current.provision)} provision(s)")
        last = packet.plans.reviews[-1]
        lines.add_row("What worked", last.what_worked or "not recorded")
        lines.add_row("Parent/carer views", last.parent_carer_views or "not recorded")
        lines.add_row("Pupil views", last.pupil_views or "not recorded")
    settings = sorted({wording.setting_name(packet, t.setting_urn) for t in packet.timeline})
    lines.add_row("Timeline", f"{len(packet.timeline)} event(s) at {', '.join(settings)}")


def dead_letter_summary(letter: DeadLetterV1) -> Panel:
    body = Table.grid(padding=(0, 2))
    body.add_column(style="bold")
    body.add_column()
    body.add_row("Reason", letter.reason)
    for problem in letter.problems:
        body.add_row(problem.path or "(message)", problem.message)
    body.add_row("From", f"{letter.source_topic} partition {letter.partition} "
                 f"offset {letter.offset} (refused by {letter.service} at "
                 f"{letter.failed_at:%Y-%m-%d %H:%M:%S})")
    body.add_row("Original", f"{letter.original_size} bytes kept")
    return Panel(body, title="Rejected event", border_style="red", expand=False)


STATE_STYLE = {"pending": "yellow", "sent": "cyan", "received": "blue", "accepted": "green",
               "rejected": "bold red", "superseded": "dim", "rerouted": "dim",
               "undeliverable": "bold red"}


def deliveries_table(rows: Sequence[PacketDelivery], school_days: int) -> Table:
    table = Table(title=f"Transfer packets by delivery state (re-sent after {school_days} "
                  "school days without a receipt)")
    for column in ("packet", "pupil", "to", "kind", "state", "sends", "days", "note"):
        table.add_column(column)
    for d in rows:
        note = []
        if d.overdue:
            note.append("[bold red]OVERDUE[/bold red]")
        if d.delivery.state in ("rejected", "undeliverable") and d.delivery.reason:
            note.append(d.delivery.reason)
        if d.supersedes:
            note.append(f"replaces {str(d.supersedes)[:8]}")
        if d.receiver_name is None and d.receiver != "lost-pupils" and d.kind != "la_notice":
            note.append("not in registry")
        table.add_row(str(d.packet_id)[:8], d.pupil, d.receiver_name or d.receiver, d.kind,
                      Text(d.delivery.state, style=STATE_STYLE.get(d.delivery.state, "")),
                      str(d.delivery.attempts), str(d.school_days_waiting), "; ".join(note))
    return table
