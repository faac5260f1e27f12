"""Subject access for both pupils of a misfiled entry, read from PostgreSQL through the
hub's own stores (`HubHoldings`: records' history as stored and sealed, the access log,
the pupils' keys): nothing of either pupil in the other's answer (UK GDPR Art. 15(4),
DPA 2018 Sch. 2 Pt. 3 para. 16). The dead-letter topic (Kafka) is not part of this."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from contracts.dead_letter import DeadLetterV1
from sendhub import subject_access as sar
from sendhub.access_log import Reader
from services.records.application import RecordsApplication
from services.shared.settings import HubSettings
from tests.factories import correction, pupil, random_upn, school_event
from tests.unit.test_corrections import recorded

OAKFIELD = {"urn": "131001", "system": "SIMS"}


class OnPostgres(sar.HubHoldings):
    """The hub's stores, without the dead-letter topic (Kafka)."""

    def dead_letters(self, upn: str, packet_ids: Sequence[UUID]) -> list[DeadLetterV1]:
        return []


def test_a_misfiled_entry_leaves_nothing_of_either_pupil_in_the_others_answer(
    db_settings: HubSettings,
) -> None:
    filed_upn, right_upn = random_upn(), random_upn()
    filed = pupil(filed_upn, "Yolanda", family_name="Ashcombe", date_of_birth="2014-04-04")
    right = pupil(right_upn, "Zebedee", family_name="Quorndon", date_of_birth="2015-08-19")
    about_him = "Zebedee covers his ears in assembly."
    misfiled = school_event(pupil=filed, source=OAKFIELD, occurred_at="2025-11-04T10:00:00+00:00",
                            payload={"raised_by": "teacher", "areas_of_need": ["SEMH"],
                                     "summary": about_him})
    app = RecordsApplication(env=db_settings.eventsourcing_env())
    recorded(school_event(pupil=right, source=OAKFIELD), misfiled,
             correction("entry_misfiled", misfiled, correct_pupil=right,
                        reason="This was Zebedee Quorndon's concern."), app=app)
    stored = json.dumps([e.school_event for e in app.history_events(filed_upn)])
    assert right_upn in stored and about_him in stored  # held under her, naming him

    holdings, now = OnPostgres(db_settings), datetime.now(UTC)
    answers = {}
    for upn in (filed_upn, right_upn):
        gathered = sar.gather(holdings, upn, Reader("auditor-dpo", sar.DEFAULT_REASON), now)
        answers[upn] = (sar.document(gathered), sar.render_page(gathered))
    for upn, others in ((filed_upn, [right_upn, "Zebedee", "Quorndon", "2015-08-19",
                                     about_him, "SEMH"]),
                        (right_upn, [filed_upn, "Yolanda", "Ashcombe", "2014-04-04"])):
        doc, page = answers[upn]
        text = json.dumps(doc, ensure_ascii=False)
        for word in others:
            assert word not in text and word not in page, f"{word!r} in {upn}'s answer"

    hers, his = answers[filed_upn][0], answers[right_upn][0]
    entry = next(h for h in hers["history"] if h["event_id"] == misfiled["event_id"])
    assert entry["event"] is None and entry["event_type"] == "concern_raised"
    assert entry["recorded_by"]["setting"] == "131001"
    assert entry["description"].startswith("Recorded under this pupil by mistake")
    moved = next(h for h in his["history"] if h["event_id"] == misfiled["event_id"])
    assert moved["event"]["payload"]["summary"] == about_him
    assert moved["moved_here"]["from"] == "another pupil's record"
