"""The demo's correction, played through records and transfers in memory: Riverside's
retraction of the concern it recorded about Ben in error amends Hillcrest's packet,
which says so without the concern."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.inbound import INBOUND_EVENT
from sendhub import scenario
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.handlers import to_history_contract, to_school_event_record
from services.transfers.application import TransfersApplication
from services.transfers.memory import InMemoryTransfers
from services.transfers.repository import ConsumedPosition as TransfersPosition


def played(records: RecordsApplication, transfers: TransfersApplication,
           events: list[dict[str, object]], offset: int, relayed: int) -> tuple[int, int]:
    for event in events:
        try:
            parsed = INBOUND_EVENT.validate_python(event, context={"trusted": True})
        except ValidationError:
            continue  # the scenario's one invalid event
        accepted = AcceptedSchoolEventV1(accepted_at=datetime.now(UTC), upn_is_temporary=False,
                                         received_from=Position(topic="t", partition=0,
                                                                offset=offset), event=parsed)
        records.record_school_events([(to_school_event_record(accepted),
                                       ConsumedPosition("accepted", 0, offset))])
        offset += 1
    for n in records.notifications(after=relayed, limit=10_000):
        message = to_history_contract(records.to_history_event(n), n.id)
        transfers.record_history([(message, TransfersPosition("history", 0, n.id))])
        relayed = n.id
    return offset, relayed


def test_the_demos_retraction_amends_bens_packet_without_the_concern() -> None:
    records, transfers = RecordsApplication(), TransfersApplication(InMemoryTransfers())
    offset, relayed = played(records, transfers, scenario.scenario_events(), 0, 0)
    [first] = [p for p in transfers.packets_for("urn-137003") if p.pupil.upn == scenario.BEN.upn]
    assert scenario.BEN_CONCERN_IN_ERROR in first.model_dump_json()
    played(records, transfers, scenario.later_events(), offset, relayed)
    [amended] = [p for p in transfers.packets_for("urn-137003")
                 if p.pupil.upn == scenario.BEN.upn and p.supersedes == first.packet_id]
    assert amended.changes == [
        "Withdrawn: the entry of 24 March 2026 recorded by URN 131002 (history version 13) "
        "was withdrawn by that setting: Recorded in error. It is no longer part of this "
        "pupil's record; please remove it from yours (history version 15)"]
    assert scenario.BEN_CONCERN_IN_ERROR not in amended.model_dump_json()
    assert records.verify_pupil(scenario.BEN.upn)[1] is None
