"""Readable summaries of packets and dead letters for the terminal (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from contracts.dead_letter import DeadLetterV1
from contracts.packet import TransferPacketV1
from services.shared.sen_record import STATUS_WORDS, words
from services.transfers.domain import PacketDelivery


def packet_summary(packet: TransferPacketV1) -> Panel:
    p = packet.pupil
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("Pupil", f"{p.given_name} {p.family_name}, born {p.date_of_birth}, UPN {p.upn}"
                  + (" (temporary)" if p.upn_is_temporary else ""))
    origin = packet.from_setting.name or f"URN {packet.from_setting.urn}"
    to = ("an unknown destination (lost pupil: for the local authority)"
          if packet.to_setting.kind == "unknown"
          else packet.to_setting.name or packet.to_setting.receiver)
    lines.add_row("Move", f"{words(packet.move.kind.value)} from {origin} to {to}, "
                  f"effective {packet.move.effective_date}")
    if packet.supersedes:
        what = "Re-routes" if packet.rerouted_from_lost_pupils else "Amends"
        lines.add_row(Text(what, style="bold yellow"), f"packet {packet.supersedes}"
                      + "".join(f"\n{change}" for change in packet.changes))
    if packet.policy == "post16":
        lines.add_row("Policy", "post-16: current picture in full, history before "
                      + "two years summarised" + "".join(f"\n{s}" for s in packet.history_summary))
    lines.add_row("SEN status", STATUS_WORDS[packet.sen_status])
    if not packet.has_sen_history:
        lines.add_row("History", Text(packet.sen_history_statement, style="italic"))
    else:
        needs = ", ".join(f"{n.rank}. {n.code}" for n in packet.current_needs) or "none identified"
        lines.add_row("Current needs", needs)
        if packet.concerns_open:
            lines.add_row(Text("Open concerns", style="bold red"), "; ".join(
                f"{c.raised_on} {'/'.join(c.areas_of_need)}: {c.summary}"
                for c in packet.concerns_open))
        current = packet.plans.current
        if current:
            lines.add_row("Current plan", f"{words(current.plan_kind.value)}, "
                          f"last reviewed {current.reviewed_on}; "
                          f"{len(current.targets)} target(s), {len(current.provision)} provision(s)")
            last = packet.plans.reviews[-1]
            lines.add_row("What worked", last.what_worked or "not recorded")
            lines.add_row("Parent/carer views", last.parent_carer_views or "not recorded")
            lines.add_row("Pupil views", last.pupil_views or "not recorded")
        lines.add_row("Timeline", f"{len(packet.timeline)} event(s) across "
                      f"{len({t.setting_urn for t in packet.timeline})} setting(s), "
                      f"history version {packet.history_version}")
    return Panel(Group(lines), title=f"Transfer packet {packet.packet_id}", expand=False)


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
        if d.receiver_name is None and d.receiver != "lost-pupils":
            note.append("not in registry")
        table.add_row(str(d.packet_id)[:8], d.pupil, d.receiver_name or d.receiver, d.kind,
                      Text(d.delivery.state, style=STATE_STYLE.get(d.delivery.state, "")),
                      str(d.delivery.attempts), str(d.school_days_waiting), "; ".join(note))
    return table
