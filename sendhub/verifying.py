"""`sendhub verify`: recompute hash chains, and compare them with the anchors in Kafka."""

from __future__ import annotations

import time
from uuid import UUID

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.anchors import AuditAnchorV1
from sendhub.topics_reader import read_topic
from services.records.application import AnchorHeads, RecordsApplication
from services.records.chain import ChainBreak
from services.records.domain import pupil_id_for
from services.shared.settings import HubSettings


def anchored_heads(settings: HubSettings, *, service: str | None = None
                   ) -> tuple[int, dict[UUID, dict[int, tuple[str, str]]], AuditAnchorV1 | None]:
    """Every chain head in the anchors topic: (anchor messages, {pupil: {version: (head,
    when)}}, the latest anchor). Read as the operator, or as `service`."""
    heads: dict[UUID, dict[int, tuple[str, str]]] = {}
    count = 0
    latest: AuditAnchorV1 | None = None
    for record in read_topic(settings, settings.topics.audit_anchors, service=service):
        anchor = AuditAnchorV1.model_validate_json(record.value)
        count += 1
        if latest is None or anchor.up_to_notification_id > latest.up_to_notification_id:
            latest = anchor
        when = anchor.anchored_at.strftime("%Y-%m-%d %H:%M:%S")
        for head in anchor.heads:
            heads.setdefault(head.pupil_id, {})[head.version] = (head.head, when)
    return count, heads, latest


def _show(console: Console, breaks: list[ChainBreak], upns: dict[UUID, str], title: str) -> None:
    table = Table(title=title)
    for column in ("pupil", "version", "what differs"):
        table.add_column(column)
    for b in breaks:
        table.add_row(b.upn or upns.get(b.pupil_id, f"pupil id {b.pupil_id}"), str(b.version),
                      b.problem)
    console.print(table)


def verify_command(settings: HubSettings, records: RecordsApplication, console: Console, *,
                   upn: str | None, against_anchors: bool) -> int:
    started = time.perf_counter()
    upns: dict[UUID, str] = {}
    if upn:
        upns[pupil_id_for(upn)] = upn
        events, broken = records.verify_pupil(upn)
        breaks = [broken] if broken else []
        pupils = 1 if events else 0
        if not events:
            console.print(f"No SEN history is stored for UPN {upn}.")
    else:
        total = records.pupil_count()
        with Progress(TextColumn("verifying hash chains"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("pupils"), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("pupils", total=total)

            def pupil_checked(done: int) -> None:
                if done % 250 == 0 or done == total:
                    progress.update(task, completed=done)

            pupils, events, breaks = records.verify_all(pupil_checked)
            progress.update(task, completed=pupils, total=max(total, pupils))
    elapsed = time.perf_counter() - started
    erased = records.keys.erasures()
    if upn:
        erased = [e for e in erased if e.pupil_ref == str(pupil_id_for(upn))]
    for erasure in erased:
        who = upn or upns.get(UUID(erasure.pupil_ref), f"pupil id {erasure.pupil_ref}")
        console.print(f"{who}: {erasure.describe()}; the content of its events is gone, their "
                      "links were checked with the hashes kept beside them.")
    if breaks:
        _show(console, breaks, upns, f"{len(breaks)} broken chain(s)")
    console.print(f"Checked {events} event(s) of {pupils} pupil(s) in {elapsed:.2f} s: "
                  + ("[green]every chain intact[/green]" if not breaks
                     else f"[red]{len(breaks)} pupil(s) with a broken chain[/red]"))
    failed = bool(breaks)
    if against_anchors:
        anchors, heads, latest = anchored_heads(settings)
        if latest is not None and latest.all_heads_digest and not upn:
            now = records.all_heads(latest.up_to_notification_id)
            if AnchorHeads.digest(now) == latest.all_heads_digest:
                console.print(f"The digest of all {len(now)} chain heads at the latest anchor "
                              f"({latest.anchored_at:%Y-%m-%d %H:%M:%S}) matches the store.")
            else:
                failed = True
                console.print(f"[red]The digest of all chain heads at the latest anchor "
                              f"({latest.anchored_at:%Y-%m-%d %H:%M:%S}, {latest.pupils} pupils) "
                              f"does not match the store ({len(now)} pupils).[/red]")
        if upn:
            heads = {k: v for k, v in heads.items() if k == pupil_id_for(upn)}
        compared, mismatches = records.verify_against_anchors(heads)
        if mismatches:
            _show(console, mismatches, upns, f"{len(mismatches)} pupil(s) differ from the anchors")
        console.print(f"Compared {compared} anchored chain head(s) from {anchors} anchor "
                      "message(s): " + ("[green]all match the store[/green]" if not mismatches
                                         else f"[red]{len(mismatches)} mismatch(es)[/red]"))
        if anchors == 0:
            console.print("[yellow]No anchors have been published yet (records publishes them "
                          "every SENDHUB_ANCHOR_INTERVAL_SECONDS).[/yellow]")
        failed = failed or bool(mismatches)
    return 1 if failed else 0
