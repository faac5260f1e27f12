"""Transfers' copies sealed with the pupil's data key, in memory (the same rows as on
PostgreSQL, `services.transfers.sealed_rows`): nothing of the pupil plain, read back
whole, bound to their row, and an erased pupil's copies read as erased."""

from __future__ import annotations

from uuid import uuid4

import pytest

from sendhub.gateway.store import InboxPacket
from sendhub.web.inbox_view import PACKET, flagged_rows
from services.records.domain import pupil_id_for
from services.shared.pupil_keys import (
    ERASED_UPN_PREFIX,
    Erasure,
    InMemoryPupilKeys,
    PupilErased,
    SealedValueBroken,
    pupil_ref,
    pupil_ref_for_upn,
)
from services.transfers.application import TransfersApplication
from services.transfers.memory import InMemoryTransfers
from services.transfers.sealed_rows import (
    ErasedPacket,
    open_packet,
    read_packet,
    seal_packet,
)
from tests.factories import random_upn
from tests.transfers_cases import CONCERN, LATE, TO_SCHOOL, Clock, at, history_messages, moved

SECRETS = ("Amira", "Khan", "2016-05-14", "Reading well below peers.")
"""The pupil tests.transfers_cases records, and the concern's text."""


def test_the_key_of_a_upn_is_records_stream_id_of_the_pupil() -> None:
    for upn in (random_upn(), random_upn(), "T80120240001A"):
        assert pupil_ref_for_upn(upn) == pupil_ref(pupil_id_for(upn))
    stream = pupil_ref(pupil_id_for("A801202400011"))
    assert pupil_ref_for_upn(f"{ERASED_UPN_PREFIX}{stream}") == stream  # after erasure


@pytest.fixture
def keys() -> InMemoryPupilKeys:
    return InMemoryPupilKeys()


@pytest.fixture
def store(keys: InMemoryPupilKeys) -> InMemoryTransfers:
    return InMemoryTransfers(keys)


@pytest.fixture
def app(store: InMemoryTransfers) -> TransfersApplication:
    return TransfersApplication(store, clock=Clock())


def _moved(app: TransfersApplication, upn: str) -> list[object]:
    return list(app.record_history(at(f"h-{upn}", history_messages(upn, CONCERN,
                                                                   moved(TO_SCHOOL)))))


def test_rows_keep_only_routing_plain_and_read_back_whole(
        app: TransfersApplication, store: InMemoryTransfers) -> None:
    upn = random_upn()
    [packet_id] = _moved(app, upn)
    [row] = store.state.packets.values()
    history = list(store.state.history.values())
    for plain, sealed in [(row.body, row.sealed), *((h.event, h.sealed) for h in history)]:
        for secret in (upn, *SECRETS):
            assert secret not in str(plain) and secret.encode() not in sealed
    assert row.body["to_setting"]["urn"] == "100002" and "pupil" not in row.body
    assert {h.event["event"]["event_type"] for h in history} == {"concern_raised", "pupil_moved"}
    packet = app.packet(packet_id)
    assert packet is not None and packet.pupil.upn == upn and packet.pupil.given_name == "Amira"
    assert [c.summary for c in packet.concerns_open] == ["Reading well below peers."]
    [pending] = app.pending_packets()
    assert pending.body == packet.model_dump_json()  # published whole


def test_a_seal_opens_only_in_its_own_row(keys: InMemoryPupilKeys,
                                          app: TransfersApplication) -> None:
    upn = random_upn()
    [packet_id] = _moved(app, upn)
    packet = app.packet(packet_id)
    assert packet is not None
    body, sealed = seal_packet(keys, packet)
    assert open_packet(keys, upn, packet_id, body, sealed) == packet
    with pytest.raises(SealedValueBroken):
        open_packet(keys, upn, uuid4(), body, sealed)  # another packet's row
    with pytest.raises(SealedValueBroken):
        open_packet(keys, random_upn(), packet_id, body, sealed)  # another pupil's


def test_an_erased_pupils_copies_read_as_erased_and_build_nothing_more(
        app: TransfersApplication, keys: InMemoryPupilKeys) -> None:
    upn = random_upn()
    [packet_id] = _moved(app, upn)
    erasure = keys.erase(pupil_ref_for_upn(upn), "DPO of Oak Primary", "Article 17 request")
    assert erasure is not None
    with pytest.raises(PupilErased):
        app.packet(packet_id)
    with pytest.raises(PupilErased):
        app.history_of(upn)
    [listed] = app.deliveries(upn=upn)
    assert listed.pupil == erasure.describe_for_receivers()
    assert app.pending_packets() == []  # never published
    assert [(e.state, e.detail) for e in app.delivery_events(packet_id)][-1] == (
        "undeliverable", f"the pupil's data was {erasure.describe_for_receivers()}")
    # A late entry for the erased pupil (records refuses them; transfers guards too)
    late = history_messages(upn, CONCERN, moved(TO_SCHOOL), LATE)[2:]
    assert app.record_history(at(f"h-{upn}", late, 10)) == []
    assert [d.packet_id for d in app.deliveries(upn=upn)] == [packet_id]


def test_an_inbox_lists_an_erased_pupils_packet_as_erased(
        app: TransfersApplication, store: InMemoryTransfers, keys: InMemoryPupilKeys) -> None:
    upn = random_upn()
    [packet_id] = _moved(app, upn)
    [row] = store.state.packets.values()
    keys.erase(pupil_ref_for_upn(upn), "DPO", "Article 17 request")
    erased = read_packet(keys, row.upn, row.receiver, row.body, row.sealed)
    assert isinstance(erased, ErasedPacket) and erased.packet_id == packet_id
    assert erased.inbox == "urn-100002"
    [shown] = flagged_rows([InboxPacket(3, erased)], set(), {})
    assert shown.erased == erased.describe()
    assert shown.erased.startswith("erased on ") and "because" not in shown.erased
    assert (shown.kind, shown.unread, shown.open_items) == (PACKET, False, [])


class CountingKeys(InMemoryPupilKeys):
    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[list[str]] = []

    def _fetch(self, refs: list[str], *, create: bool) -> dict[str, bytes | Erasure]:
        self.fetches.append(refs)
        return super()._fetch(refs, create=create)


def test_a_list_of_many_pupils_packets_fetches_their_keys_at_once() -> None:
    keys = CountingKeys()
    app = TransfersApplication(InMemoryTransfers(keys), clock=Clock())
    upns = [random_upn() for _ in range(3)]
    for upn in upns:
        _moved(app, upn)
    keys._cache.clear()  # as in a process that has read none of them yet
    keys.fetches.clear()
    assert sorted(d.pupil for d in app.deliveries()) == ["Amira Khan"] * 3
    assert keys.fetches == [sorted(pupil_ref_for_upn(u) for u in upns)]
