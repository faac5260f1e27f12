"""The transfer packet built from a pupil's history: what a receiving setting gets when
the pupil moves, post-16 packets, amendments, and rebuilding a sent packet.

Domain layer, pure: no I/O. It reads the shared SEN read model (`HistoryEntry`,
`record_at`) and writes the packet contract, because the packet *is* that
standardised format. The rules here are the packet's: which events it covers, what it
flags, and the post-16 policy (a local policy, see README "Post-16 packets"). A packet
holds the history as its settings now stand by it (`as_corrected`): a withdrawn entry is
left out of every form, and an amendment says only that it was withdrawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

from contracts.inbound import is_la_event, where_recorded
from contracts.packet import (
    ClockDue,
    LANotice,
    Move,
    PacketPupil,
    ProvisionEpisode,
    Setting,
    TimelineEntry,
    TransferPacketV1,
)
from contracts.school_events import Post16Destination, PupilMovedV1, SchoolDestination
from services.shared.sen_record import (
    CorrectionMark,
    HistoryEntry,
    SENRecord,
    as_corrected,
    corrections_of,
    is_correction,
    provision_episodes,
    record_at,
)
from services.shared.sen_wording import describe_event
from services.transfers import packet_parts
from services.transfers.post16 import DEFAULT_RULES, Post16Rules, post16_packet


class NotAMove(Exception):
    """Raised when a packet is asked for at a history event that is not a move (a bug of
    the caller: moves are found by their event type)."""


_PACKET_NAMESPACE = UUID("0b8f3f4e-6a8d-4d0e-8f1c-2f6b7c9d0e11")

NO_HISTORY_STATEMENT = (
    "No SEN history is recorded for this pupil at any setting connected to the hub: "
    "no concern, assessment or plan review was ever received. This is a statement "
    "that none exists, not a missing file."
)

BUILDER_VERSION = 3
"""Raise when the packet's content or wording rules change, so rebuilds can tell.
2: the EHC plan (`ehc_plan`) and the children-missing-education notice (`la_notice`).
3: post-16 packets full or minimal by the recorded basis (`post16_basis`), old concerns
summarised (`concerns_summary`), the ULN first (`learner_identifier`)."""

def packet_id_for(upn: str, move_event_id: UUID, history_version: int | None = None,
                  receiver: str | None = None) -> UUID:
    """Deterministic: rebuilding or re-sending a packet keeps its id. The first packet for
    a move is keyed by the move; an amendment also by the history version it covers; a
    local authority's notice about the move also by its receiver (`la-803`)."""
    name = f"{upn}/{move_event_id}"
    if history_version is not None:
        name += f"/{history_version}"
    if receiver is not None:
        name += f"/to/{receiver}"
    return uuid5(_PACKET_NAMESPACE, name)


def destination_of(move: PupilMovedV1) -> Setting:
    d = move.payload.destination
    if isinstance(d, SchoolDestination):
        return Setting(kind="school", urn=d.urn)
    if isinstance(d, Post16Destination):
        return Setting(kind="post16_provider", ukprn=d.ukprn)
    return Setting(kind="unknown")


def move_goes_nowhere(move: PupilMovedV1) -> bool:
    """The destination is not known: the packet goes to the leaving school's LA."""
    return destination_of(move).kind == "unknown"


def la_notice_packet(packet: TransferPacketV1, *, receiver: str, notice: LANotice,
                     clocks: Sequence[ClockDue]) -> TransferPacketV1:
    """The packet as a notice to a local authority (`la-803`): the whole packet, its own
    id (per pupil, move and receiver), which notice it is and the clocks now running. It
    replaces nothing: what the receiving setting's packet supersedes stays its own."""
    return packet.model_copy(update={
        "packet_id": packet_id_for(packet.pupil.upn, packet.move.event_id, receiver=receiver),
        "la_notice": notice, "addressed_to": receiver, "clocks_now_running": list(clocks),
        "supersedes": None, "changes": [], "rerouted_from_lost_pupils": False})


def departures(history: Sequence[HistoryEntry]) -> dict[str, date]:
    """For each setting the pupil left, the effective date of the (last) move away."""
    left: dict[str, date] = {}
    for h in sorted(history, key=lambda h: h.version):
        if isinstance(h.event, PupilMovedV1):
            left[where_recorded(h.event)] = h.event.payload.effective_date
    return left


def recorded_after_leaving(event: HistoryEntry, left: dict[str, date]) -> bool:
    """A setting recorded something that happened after the pupil had left it."""
    if isinstance(event.event, PupilMovedV1):
        return False
    effective = left.get(where_recorded(event.event))
    return effective is not None and event.event.occurred_at.date() > effective


def covered_events(
    history: Sequence[HistoryEntry], move_version: int, up_to_version: int
) -> list[HistoryEntry]:
    """The events a packet covers: everything up to the move, and what was recorded
    later (late entries, former settings) except the receiving setting's own records."""
    move = next(h for h in history if h.version == move_version).event
    if not isinstance(move, PupilMovedV1):
        raise NotAMove(f"history version {move_version} is not a pupil_moved event")
    destination = move.payload.destination
    receiver_urn = destination.urn if isinstance(destination, SchoolDestination) else None
    return sorted(
        (h for h in history if h.version <= move_version or (
            h.version <= up_to_version and where_recorded(h.event) != receiver_urn)),
        key=lambda h: h.version,
    )


def build_transfer_packet(
    history: Sequence[HistoryEntry],
    move_version: int,
    generated_at: datetime,
    *,
    up_to_version: int | None = None,
    supersedes: UUID | None = None,
    changes: Sequence[str] = (),
    rerouted_from_lost_pupils: bool = False,
    post16: Post16Rules = DEFAULT_RULES,
    for_local_authority: bool = False,
) -> TransferPacketV1:
    """The packet for the move at `move_version`, from the history up to `up_to_version`
    (the move itself for a first packet; later for an amendment). To a post-16 provider
    it is full or minimal by the move's `post16_sharing` (`services.transfers.post16`),
    except the local authority's copy (`for_local_authority`: an EHC plan notice)."""
    by_version = {h.version: h for h in history}
    move_entry = by_version.get(move_version)
    if move_entry is None or not isinstance(move_entry.event, PupilMovedV1):
        raise NotAMove(f"history version {move_version} is not a pupil_moved event")
    up_to = max(up_to_version or move_version, move_version)
    move = move_entry.event
    covered = covered_events(history, move_version, up_to)
    upto = as_corrected(covered)
    record = record_at(upto)
    pupil = move.pupil
    packet = TransferPacketV1(
        packet_id=packet_id_for(pupil.upn, move.event_id,
                                up_to if up_to != move_version else None),
        generated_at=generated_at,
        pupil=PacketPupil(
            upn=pupil.upn, upn_is_temporary=move_entry.upn_is_temporary,
            given_name=pupil.given_name, family_name=pupil.family_name,
            date_of_birth=pupil.date_of_birth, uln=pupil.uln, gender=pupil.gender,
        ),
        from_setting=Setting(kind="school", urn=move.source.urn),
        to_setting=destination_of(move),
        move=Move(
            kind=move.payload.move_kind, effective_date=move.payload.effective_date,
            admissions_reference=move.payload.admissions_reference, event_id=move.event_id,
        ),
        sen_status=record.status,
        has_sen_history=record.has_sen_history,
        sen_history_statement=_history_statement(record, upto),
        current_needs=record.needs,
        concerns_open=packet_parts.open_concerns(record),
        assessments=packet_parts.assessments(record),
        plans=packet_parts.plans(record),
        timeline=_timeline(upto),
        history_version=up_to,
        sen_provision_history=[
            ProvisionEpisode(start_date=start, provision=code)
            for start, code in provision_episodes(record)
        ],
        supersedes=supersedes,
        changes=list(changes),
        rerouted_from_lost_pupils=rerouted_from_lost_pupils,
        **packet_parts.what_is_open(record, move),
        history_chain_head=max(covered, key=lambda h: h.version).event_hash,
        builder_version=BUILDER_VERSION,
        ehc_plan=packet_parts.ehc_plan(record),
        # A pupil gone to an unknown destination is a possible child missing education,
        # for the LA of the school they left (Education Act 1996 s.436A).
        la_notice="children_missing_education" if move_goes_nowhere(move) else None,
    )
    if packet.to_setting.kind == "post16_provider":
        packet = post16_packet(packet, move.payload.post16_sharing, record.concerns, post16,
                               for_local_authority=for_local_authority)
    return packet


def _history_statement(record: SENRecord, covered: Sequence[HistoryEntry]) -> str:
    if not record.has_sen_history:
        return NO_HISTORY_STATEMENT
    places = {where_recorded(h.event) for h in covered}
    las = sorted(p[3:] for p in places if p.startswith("la-"))
    statement = (f"SEN history recorded at {len(places) - len(las)} setting(s): "
                 f"{len(record.concerns)} concern(s), {len(record.assessments)} "
                 f"assessment(s), {len(record.reviews)} plan review(s).")
    if las:
        events = sum(1 for h in covered if is_la_event(h.event))
        statement += (f" {events} EHC event(s) recorded by the local authority "
                      f"({', '.join(f'LA {la}' for la in las)}).")
    return statement


def _timeline(covered: Sequence[HistoryEntry]) -> list[TimelineEntry]:
    left = departures(covered)
    return [
        TimelineEntry(
            occurred_at=h.event.occurred_at,
            event_type=h.event.event_type,
            setting_urn=where_recorded(h.event),
            recorded_by_role=h.event.recorded_by.role,
            description=describe_event(h),
            history_version=h.version,
            recorded_after_leaving=recorded_after_leaving(h, left),
        )
        for h in sorted(covered, key=lambda h: (h.event.occurred_at, h.version))
    ]


def amendment_changes(
    previous: TransferPacketV1, history: Sequence[HistoryEntry]
) -> list[str]:
    """What an amendment changes in the packet it supersedes, one line per history
    event, in history order: each entry it adds (as now corrected; an entry withdrawn
    before it was ever sent is not mentioned), and each entry the receiver had that
    its setting has since withdrawn or corrected (`correction_note`)."""
    covered = {t.history_version for t in previous.timeline}
    receiver = previous.to_setting.urn
    left = departures(history)
    lines: list[tuple[int, str]] = [
        (h.version, f"Added: {describe_event(h)} on {h.event.occurred_at:%-d %B %Y} at "
         f"{_place(where_recorded(h.event))} ({_why_added(h, left)}, history version "
         f"{h.version})")
        for h in as_corrected(history)
        if h.version not in covered and h.version > previous.history_version
        and where_recorded(h.event) != receiver
    ]
    by_id = {h.event.event_id: h for h in history if h.version <= previous.history_version}
    for event_id, mark in corrections_of(history).items():
        entry = by_id.get(event_id)
        if mark.version > previous.history_version and entry is not None \
                and was_sent(entry, previous):
            lines.append((mark.version, correction_note(entry, mark)))
    return [line for _, line in sorted(lines)]


def was_sent(entry: HistoryEntry, packet: TransferPacketV1) -> bool:
    """Whether a packet told its receiver about an entry: itemised in its timeline, or
    (a post-16 packet) summarised among the older history; never the receiver's own."""
    if entry.version in {t.history_version for t in packet.timeline}:
        return True
    return (packet.policy == "post16" and entry.version <= packet.history_version
            and where_recorded(entry.event) != packet.to_setting.urn)


def _why_added(entry: HistoryEntry, left: dict[str, date]) -> str:
    if entry.refiled_from is not None:
        return "moved here from another pupil's record, where it had been filed by mistake"
    if recorded_after_leaving(entry, left):
        return "recorded after the pupil had left"
    return "recorded late"


def correction_note(entry: HistoryEntry, mark: CorrectionMark) -> str:
    """An amendment's line for an entry its setting withdrew or corrected, in neutral
    words: when it was dated, who recorded it, why (the setting's reason; for a misfiled
    entry only that it was the wrong pupil's, never whose), and nothing of what it said."""
    what = (f"the entry of {entry.event.occurred_at:%-d %B %Y} recorded by "
            f"{_place(where_recorded(entry.event))} (history version {entry.version})")
    reason = mark.reason.rstrip(".")
    if mark.kind == "entry_corrected":
        return (f"Corrected: {what} was corrected by that setting: {reason}. This "
                f"packet holds it as corrected (history version {mark.version})")
    why = ("it had been recorded under the wrong pupil" if mark.kind == "entry_misfiled"
           else reason)
    return (f"Withdrawn: {what} was withdrawn by that setting: {why}. It is no longer part "
            f"of this pupil's record; please remove it from yours (history version "
            f"{mark.version})")


def is_late_entry(event: HistoryEntry, move: PupilMovedV1) -> bool:
    """An event about a day on or before the move's effective date, recorded after it:
    the former school catching up, or the local authority deciding about the plan
    before the pupil arrives (the plan issued, amended to name the new school for a
    phase transfer), or an entry moved here from another pupil's record (whoever
    recorded it). It calls for an amendment to the receiver."""
    return (not isinstance(event.event, PupilMovedV1)
            and event.event.occurred_at.date() <= move.payload.effective_date
            and (where_recorded(event.event) == move.source.urn
                 or is_la_event(event.event) or event.refiled_from is not None))


def corrects_what_was_sent(event: HistoryEntry, history: Sequence[HistoryEntry],
                           sent: TransferPacketV1) -> bool:
    """A correction of an entry the packet gave its receiver: it calls for an amendment
    that says the entry was withdrawn or corrected (`correction_note`)."""
    e = event.event
    if not is_correction(e) or event.version <= sent.history_version:
        return False
    target = getattr(e.payload, "corrects_event_id", None)
    entry = next((h for h in history if h.event.event_id == target
                  and h.version <= sent.history_version), None)
    return entry is not None and was_sent(entry, sent)


LONG_TEXT = 1_000
"""Local policy: in a packet too large for one message, texts longer than this many
characters are shortened (README "Packets too large for one message")."""


def _shortened(value: Any, counter: list[int]) -> Any:
    if isinstance(value, str) and len(value) > LONG_TEXT:
        counter[0] += 1
        return (value[:LONG_TEXT] + f" [... {len(value) - LONG_TEXT:,} more characters not "
                "sent: the full text is in the hub's records]")
    if isinstance(value, list):
        return [_shortened(v, counter) for v in value]
    if isinstance(value, dict):
        return {k: _shortened(v, counter) for k, v in value.items()}
    return value


def condense(packet: TransferPacketV1) -> TransferPacketV1:
    """The packet with every text over `LONG_TEXT` characters shortened, and a note that
    says so. Nothing else changes: every concern, need, review and event is still there."""
    counter = [0]
    data = _shortened(packet.model_dump(mode="json", exclude={"condensed"}), counter)
    data["condensed"] = (f"{counter[0]} text(s) longer than {LONG_TEXT:,} characters were "
                         "shortened so that this packet fits one message; each says how much "
                         "is missing. The full texts are kept in the hub's records: ask the "
                         "sending setting or the hub's operators (sendhub history UPN).")
    return TransferPacketV1.model_validate(data)


def fitted(packet: TransferPacketV1, max_bytes: int) -> tuple[TransferPacketV1, bool]:
    """The packet as it will be sent, and whether it fits `max_bytes`: whole when it
    fits, else condensed; a packet too large even condensed cannot be sent. A packet
    already condensed (an LA's copy of a condensed packet) is not condensed again."""
    if len(packet.model_dump_json().encode()) <= max_bytes:
        return packet, True
    if packet.condensed:
        return packet, False
    condensed = condense(packet)
    return condensed, len(condensed.model_dump_json().encode()) <= max_bytes


def rebuild_transfer_packet(
    sent: TransferPacketV1,
    history: Sequence[HistoryEntry],
    superseded: TransferPacketV1 | None = None,
) -> TransferPacketV1:
    """The packet `sent` built again from the history, by the same rules.

    The registry's names and numbers are copied from `sent`: they describe where the
    packet went, not the pupil's history; a post-16 packet is rebuilt by the
    concerns rule it states (`post16_basis.concerns_itemised_months`). An amendment's
    changes are recomputed from the packet it superseded.
    """
    move_version = next((h.version for h in history if h.event.event_id == sent.move.event_id),
                        None)
    if move_version is None:
        raise NotAMove(f"the history holds no move {sent.move.event_id}")
    months = sent.post16_basis.concerns_itemised_months if sent.post16_basis else None
    rebuilt = build_transfer_packet(
        history, move_version, sent.generated_at,
        up_to_version=sent.history_version,
        post16=Post16Rules(months) if months else DEFAULT_RULES,
        for_local_authority=sent.addressed_to is not None,
        supersedes=sent.supersedes,
        changes=amendment_changes(superseded, [h for h in history
                                              if h.version <= sent.history_version])
        if superseded and not sent.rerouted_from_lost_pupils else (),
        rerouted_from_lost_pupils=sent.rerouted_from_lost_pupils,
    )
    described = {"from_setting": sent.from_setting, "to_setting": sent.to_setting,
                 "setting_names": sent.setting_names}
    if rebuilt.ehc_plan is not None and sent.ehc_plan is not None:
        described["ehc_plan"] = rebuilt.ehc_plan.model_copy(
            update={"maintaining_la_name": sent.ehc_plan.maintaining_la_name})
    rebuilt = rebuilt.model_copy(update=described)
    if sent.addressed_to and sent.la_notice in ("ehc_plan_transfer_in", "ehc_plan_transfer_out"):
        rebuilt = la_notice_packet(
            rebuilt, receiver=sent.addressed_to, notice=sent.la_notice,
            clocks=packet_parts.clocks_for_new_la(
                rebuilt.ehc_plan, rebuilt.move.effective_date, rebuilt.to_setting.la_code or "")
            if rebuilt.ehc_plan and rebuilt.to_setting.la_code else ())
    if sent.condensed:
        rebuilt = condense(rebuilt)
    return rebuilt


def differences(sent: TransferPacketV1, rebuilt: TransferPacketV1) -> list[str]:
    """The top-level fields where two packets differ (empty when they match exactly)."""
    a, b = sent.model_dump(mode="json"), rebuilt.model_dump(mode="json")
    return [key for key in a if a[key] != b.get(key)]


def _place(recorded_by: str) -> str:
    """`URN 131001` for a school, `LA 801` for a local authority."""
    return f"LA {recorded_by[3:]}" if recorded_by.startswith("la-") else f"URN {recorded_by}"
