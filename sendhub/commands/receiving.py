"""Commands for receiving settings: a packet in the form their system or SENCO uses, the
packets waiting in their inbox, and receipts for those without a system that sends them.

Reading a packet reads a pupil's record, so it needs an authenticated principal (the
receiving setting's, or an auditor's) and a reason and is
recorded in the access log.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer

from sendhub.commands.common import (
    Reason,
    access_log,
    console,
    errors,
    fail,
    hub_settings,
    principal_of,
    reader_for,
    records_app,
)
from services.shared.access import may_read_history, may_receive_for, packet_inbox, receivers_of
from services.shared.pupil_keys import PupilErased, pupil_keys_for

if TYPE_CHECKING:
    from contracts.packet import TransferPacketV1
    from services.shared.settings import HubSettings


class PacketForm(StrEnum):
    json = "json"
    ctf = "ctf"
    html = "html"


class InboxForm(StrEnum):
    summary = "summary"
    json = "json"
    ctf = "ctf"
    html = "html"


def packet(
    ctx: typer.Context,
    packet_id: UUID,
    form: Annotated[PacketForm, typer.Option("--format", help="json, ctf (XML) or html")] = (
        PacketForm.json),
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write to this file")] = None,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="rebuild it from the records store and show that it matches")] = False,
    reason: Reason = None,
) -> None:
    """One transfer packet, as sent, in the form a receiving setting uses."""
    from services.transfers.application import TransfersApplication
    from services.transfers.forms import CTFRefused, render, with_current_registry

    settings = hub_settings(ctx)
    principal_of(settings)  # who asks is known before anything about the packet is said
    store = TransfersApplication.on_postgres(settings.database_conninfo,
                                             keys=pupil_keys_for(settings))
    try:
        sent = store.packet(packet_id)
        superseded = store.packet(sent.supersedes) if sent and sent.supersedes else None
        known = store.registered_settings() if sent and form is PacketForm.ctf else []
    except PupilErased as erased:
        raise fail(f"Packet {packet_id} cannot be read: its pupil's data was "
                   f"{erased.erasure.describe()}.", 1) from None
    finally:
        store.close()
    if sent is None:
        raise fail(f"No packet {packet_id} has been built by this hub.", 1)
    inbox = packet_inbox(sent)
    who = reader_for(settings, reason, lambda p: may_read_history(p) or may_receive_for(
        p, inbox), f"packet {packet_id} (for {inbox})")
    access_log(settings).record(who, "packet-rebuild" if rebuild else f"packet-{form.value}",
                                upn=sent.pupil.upn, packet_id=packet_id)
    if rebuild:
        raise typer.Exit(_rebuild(settings, sent, superseded))
    try:
        (described,) = with_current_registry([sent], known) if known else (sent,)
        body = render(described, form.value, replaced=superseded)
    except CTFRefused as refused:
        raise fail(str(refused), 1) from None
    if output:
        output.write_bytes(body)
        console.print(f"Wrote packet {packet_id} ({form.value}) to {output}")
    else:
        sys.stdout.buffer.write(body)


def _rebuild(settings: HubSettings, sent: TransferPacketV1,
             superseded: TransferPacketV1 | None) -> int:
    from services.records.handlers import to_history_entry
    from services.transfers.packets import differences, rebuild_transfer_packet

    events = records_app(settings).history_events(sent.pupil.upn)
    history = [to_history_entry(e) for e in events]
    rebuilt = rebuild_transfer_packet(sent, history, superseded)
    differ = differences(sent, rebuilt)
    if differ:
        console.print(f"[red]The rebuilt packet differs from what was sent in: "
                      f"{', '.join(differ)}[/red]")
        if sent.builder_version != rebuilt.builder_version:
            console.print(f"It was built by packet rules version {sent.builder_version or 0}, "
                          f"rebuilt by version {rebuilt.builder_version}: the difference may be "
                          "wording; compare the history itself with `sendhub verify`.")
        return 1
    console.print(f"[green]Rebuilt packet {sent.packet_id} from history versions 1.."
                  f"{sent.history_version}: it matches what was sent, field for field "
                  f"(chain head {sent.history_chain_head}).[/green]")
    return 0


INBOX_WORDS = {"lost-pupils.la-": "pupils who left a school in the LA for an unknown "
                                  "destination (possible children missing education)",
               "la-": "EHC plans moving into or out of the LA's care"}


def inbox_heading(receiver: str) -> str:
    """An inbox as its reader knows it: `la-801: EHC plans moving into or out of ...`."""
    what = next((words for prefix, words in INBOX_WORDS.items()
                 if receiver.startswith(prefix)), None)
    return f"Inbox {receiver}" + (f": {what}" if what else "")


def inbox(
    ctx: typer.Context,
    receiver: Annotated[str | None, typer.Argument(help=(
        "urn-<URN>, ukprn-<UKPRN>, la-<LA code> or lost-pupils.la-<LA code>; left out: every "
        "inbox of the token's principal (a local authority has two)"))] = None,
    form: Annotated[InboxForm, typer.Option("--format")] = InboxForm.summary,
    as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="ctf, html: a folder (one CTF per sending school; one page "
        "per packet)")] = None,
    from_urn: Annotated[str | None, typer.Option(
        "--from", help="ctf: only the packets from this sending school (URN)")] = None,
    reason: Reason = None,
) -> None:
    """The transfer packets in a receiving setting's inbox topic (or in every inbox of
    the caller: an LA reads its lost pupils and its EHC plan notices), in the form it uses."""
    from contracts.packet import TransferPacketV1
    from sendhub.summaries import packet_summary
    from sendhub.topics_reader import read_topic
    from services.transfers.forms import render

    settings = hub_settings(ctx)
    if receiver is None:
        caller = principal_of(settings)
        inboxes = receivers_of(caller)
        if not inboxes:
            raise fail(f"{caller.name} has no inbox of its own: name the inbox to read "
                       "(RECEIVER).", 2)
    else:
        inboxes = (receiver,)
    if form is InboxForm.ctf and any(r.startswith("ukprn-") for r in inboxes):
        raise fail(f"{inboxes[0]} is a post-16 provider: post-16 providers do not import CTFs. "
                   "Use --format html or --format json.", 2)
    who = reader_for(settings, reason, lambda p: may_read_history(p) or all(
        may_receive_for(p, r) for r in inboxes), f"the inbox of {' and '.join(inboxes)}")
    form = InboxForm.json if as_json else form
    seen: dict[str, TransferPacketV1] = {}
    found_in: dict[str, str] = {}
    for name in inboxes:
        for r in read_topic(settings, settings.topics.inbox(name)):
            packet = TransferPacketV1.model_validate_json(r.value, extra="ignore")
            seen[str(packet.packet_id)] = packet
            found_in[str(packet.packet_id)] = name
    log = access_log(settings)
    for key, p in seen.items():
        log.record(who, f"inbox-{form.value}", upn=p.pupil.upn, packet_id=p.packet_id,
                   detail=found_in[key])
    if not seen:
        console.print(f"The inbox of {' and '.join(inboxes)} is empty.")
        return
    packets = list(seen.values())
    if form is InboxForm.summary:
        for name in inboxes:
            mine = [p for p in packets if found_in[str(p.packet_id)] == name]
            if len(inboxes) > 1:
                console.print(f"[bold]{inbox_heading(name)}[/bold]: {len(mine)} packet(s)")
            for p in mine:
                console.print(packet_summary(p, seen.get(str(p.supersedes))))
    elif form is InboxForm.json:
        for p in packets:
            sys.stdout.write(p.model_dump_json() + "\n")
    elif form is InboxForm.ctf:
        raise typer.Exit(_inbox_ctf(settings, packets, output, from_urn))
    else:
        folder = output or Path(f"inbox-{receiver or who.actor}")
        folder.mkdir(parents=True, exist_ok=True)
        for p in packets:
            (folder / f"{p.packet_id}.html").write_bytes(
                render(p, "html", replaced=seen.get(str(p.supersedes))))
        console.print(f"Wrote {len(packets)} readable packet(s) to {folder}/")


def _inbox_ctf(settings: HubSettings, packets: list[TransferPacketV1], output: Path | None,
               from_urn: str | None) -> int:
    """One CTF per sending school (a CTF header names one), superseded packets left out:
    into the folder `-o`, or to stdout when there is one school (or `--from` picks one).
    Exits 1 when a packet got no CTF (each is named, with why)."""
    from services.transfers.application import TransfersApplication
    from services.transfers.forms import ctf_files, with_current_registry

    store = TransfersApplication.on_postgres(settings.database_conninfo,
                                             keys=pupil_keys_for(settings))
    try:
        packets = with_current_registry(packets, store.registered_settings())
    finally:
        store.close()
    if from_urn:
        packets = [p for p in packets if p.from_setting.urn == from_urn]
    files, refused = ctf_files(packets)
    for reason in refused:
        errors.print(f"[red]No CTF for {reason}[/red]")
    if output is None and len(files) > 1:
        schools = "; ".join(f"{f.school} (--from {f.from_urn})" for f in files)
        raise fail(f"The inbox holds packets from {len(files)} sending schools and a CTF "
                   f"names one: give -o FOLDER for one CTF per school, or --from URN. "
                   f"Schools: {schools}.", 2)
    if output is None:
        for f in files:
            sys.stdout.buffer.write(f.body)
    else:
        output.mkdir(parents=True, exist_ok=True)
        for f in files:
            (output / f.name).write_bytes(f.body)
            console.print(f"Wrote {f.pupils} pupil(s) from {f.school} to {output / f.name}")
    return 1 if refused else 0


def receipt(
    ctx: typer.Context,
    packet_id: UUID,
    receiver: Annotated[str, typer.Option("--receiver", help=(
        "the packet's receiver: urn-<URN>, ukprn-<UKPRN>, lost-pupils or la-<LA code>"))],
    status: Annotated[str, typer.Option("--status", help="received, accepted or rejected")],
    reason: Annotated[str | None, typer.Option("--reason", help="why it was rejected")] = None,
) -> None:
    """Send a receipt for a packet (for receivers without a system that does it)."""
    from pydantic import ValidationError

    from contracts.receipts import PacketReceiptV1
    from sendhub.publishing import publish_receipt

    settings = hub_settings(ctx)
    try:
        message = PacketReceiptV1.model_validate({
            "packet_id": packet_id, "receiver": receiver, "status": status, "reason": reason,
            "at": datetime.now(UTC)})
    except ValidationError as exc:
        raise fail("; ".join(e["msg"] for e in exc.errors())) from None
    publish_receipt(settings, message)
    console.print(f"Receipt sent: {receiver} {status} packet {packet_id}")
