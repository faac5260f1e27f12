"""Transfers' copies of histories and packets on the real PostgreSQL: sealed with the
pupil's data key, nothing about the pupil left plain, read back whole; rows stored
before sealing existed still read, and `sendhub db seal-existing` seals them."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from services.shared.pupil_keys import PupilErased, pupil_keys_for, pupil_ref_for_upn
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from tests.conftest import CLI
from tests.gateway_support import issue_packet

pytestmark = pytest.mark.integration
SENDER, TO = "100070", {"kind": "school", "urn": "100071"}
PUPIL_NAMES = ("Ada", "Test", "2015-04-01")  # as tests.gateway_support records the pupil
SEN_TEXTS = ("Reading well below peers.",)  # the concern issue_packet records


def stored(settings: HubSettings, upn: str) -> list[tuple[str, bytes | None]]:
    """Each of the pupil's rows in both tables: its plain column as text, its seal."""
    with psycopg.connect(settings.database_conninfo) as conn:
        rows = conn.execute(
            "SELECT event::text, sealed FROM transfers_history WHERE upn = %s UNION ALL "
            "SELECT body::text, sealed FROM transfers_packets WHERE upn = %s",
            (upn, upn)).fetchall()
    return [(str(plain), None if seal is None else bytes(seal)) for plain, seal in rows]


def test_stored_rows_hold_nothing_of_the_pupil_and_read_back_whole(
        scratch_db: HubSettings) -> None:
    packet = issue_packet(scratch_db, SENDER, TO)
    upn = packet.pupil.upn
    rows = stored(scratch_db, upn)
    assert len(rows) == 3  # the concern and the move, and the packet
    for plain, seal in rows:
        assert seal is not None
        for secret in (upn, *PUPIL_NAMES, *SEN_TEXTS):
            assert secret not in plain and secret.encode() not in seal
    # what SQL routes and lists by stays plain
    body = json.loads(rows[-1][0])
    assert body["to_setting"]["urn"] == "100071" and body["from_setting"]["urn"] == SENDER
    assert set(body["move"]) == {"kind", "effective_date", "event_id"}
    assert json.loads(rows[0][0])["event"]["source"]["urn"] == SENDER
    app = TransfersApplication.for_settings(scratch_db)
    try:
        assert app.packet(packet.packet_id) == packet
        assert [h.version for h in app.history_of(upn)] == [1, 2]
        [listed] = app.deliveries(upn=upn)
        assert listed.pupil == "Ada Test"
    finally:
        app.close()


def test_an_erased_pupils_packet_reads_as_erased_and_is_never_published(
        scratch_db: HubSettings) -> None:
    keys = pupil_keys_for(scratch_db)
    app = TransfersApplication.on_postgres(scratch_db.database_conninfo, keys=keys)
    try:
        packet = issue_packet(scratch_db, SENDER, TO)
        keys.erase(pupil_ref_for_upn(packet.pupil.upn), "DPO of Oak Primary",
                                 "the parent's request under Article 17")
        with pytest.raises(PupilErased) as erased:
            app.packet(packet.packet_id)
        sentence = erased.value.erasure.describe()
        assert sentence.endswith("by DPO of Oak Primary because the parent's request under "
                                 "Article 17")
        [listed] = app.deliveries(upn=packet.pupil.upn)
        # Lists and receivers are told the date only; who authorised it and why stay
        # with the operator and the auditors.
        assert listed.pupil == erased.value.erasure.describe_for_receivers()
        assert "because" not in listed.pupil
        with psycopg.connect(scratch_db.database_conninfo) as conn:  # as a re-send would
            conn.execute("UPDATE transfers_packets SET published_at = NULL "
                         "WHERE packet_id = %s", (packet.packet_id,))
        assert all(p.packet_id != packet.packet_id for p in app.pending_packets(1000))
        states = [(e.state, e.detail) for e in app.delivery_events(packet.packet_id)]
        assert states[-1] == ("undeliverable", f"the pupil's data was {listed.pupil}")
    finally:
        app.close()


def test_rows_stored_before_sealing_still_read_and_seal_existing_seals_them(
        scratch_db: HubSettings, cli: CLI) -> None:
    kept = issue_packet(scratch_db, SENDER, TO)
    gone = issue_packet(scratch_db, SENDER, TO)
    for packet in (kept, gone):
        with psycopg.connect(scratch_db.database_conninfo) as conn:
            conn.execute("UPDATE transfers_packets SET body = %s, sealed = NULL "
                         "WHERE packet_id = %s", (Jsonb(packet.model_dump(mode="json")),
                                                  packet.packet_id))
    keys = pupil_keys_for(scratch_db)
    app = TransfersApplication.on_postgres(scratch_db.database_conninfo, keys=keys)
    try:
        assert app.packet(kept.packet_id) == kept  # an old plain row reads as before
        keys.erase(pupil_ref_for_upn(gone.pupil.upn), "DPO", "Article 17")
        here = {"SENDHUB_DATABASE_URL": str(scratch_db.database_url)}
        upgraded = cli("db", "upgrade", **here).stdout
        assert "still plain: seal them with `sendhub db seal-existing`" in upgraded
        done = cli("db", "seal-existing", **here).stdout
        assert "Sealed 1 transfers row(s)" in done and "1 of erased pupils shredded" in done
        assert "still plain" not in cli("db", "upgrade", **here).stdout
        for packet in (kept, gone):
            [(plain, seal)] = stored(scratch_db, packet.pupil.upn)[-1:]
            assert seal is not None and packet.pupil.upn not in plain and "Ada" not in plain
        assert app.packet(kept.packet_id) == kept
        with pytest.raises(PupilErased):
            app.packet(gone.packet_id)
    finally:
        app.close()


def test_a_seal_moved_to_another_row_does_not_open(scratch_db: HubSettings) -> None:
    one, other = issue_packet(scratch_db, SENDER, TO), issue_packet(scratch_db, SENDER, TO)
    with psycopg.connect(scratch_db.database_conninfo) as conn:
        conn.execute("UPDATE transfers_packets SET sealed = (SELECT sealed FROM "
                     "transfers_packets WHERE packet_id = %s) WHERE packet_id = %s",
                     (other.packet_id, one.packet_id))
    keys = pupil_keys_for(scratch_db)
    app = TransfersApplication.on_postgres(scratch_db.database_conninfo, keys=keys)
    try:
        with pytest.raises(ValueError, match="does not open"):
            app.packet(one.packet_id)
        assert app.packet(other.packet_id) == other
    finally:
        app.close()
