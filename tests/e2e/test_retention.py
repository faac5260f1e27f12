"""`sendhub retention run` on the real database and broker: exactly the pupils past
retention are erased (the boundary days), the dry run changes nothing, and the topics
get the schedule's retention.ms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from sendhub.retention import kept_until, run_retention
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.handlers import to_school_event_record
from services.shared.kafka import DAY_MS, client_options
from services.shared.settings import HubSettings
from tests.conftest import CLI
from tests.factories import random_upn, school_event

pytestmark = pytest.mark.e2e


def born_kept_until(day: date) -> date:
    """The date of birth whose record is kept until `day` (31 years)."""
    born = day.replace(year=day.year - 31)
    assert kept_until(born, 31) == day
    return born


def record(app: RecordsApplication, upn: str, born: date) -> None:
    who = {"upn": upn, "given_name": "Ada", "family_name": "Test",
           "date_of_birth": born.isoformat()}
    accepted = AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=0),
        event=SCHOOL_EVENT.validate_python(school_event(pupil=who)))
    app.record_school_events([(to_school_event_record(accepted),
                               ConsumedPosition(f"retention-{upn}", 0, 0))])


def retention_of(settings: HubSettings, topic: str) -> str | None:
    admin = KafkaAdminClient(**client_options(settings), client_id="sendhub-tests")
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    value = described["topic"].get(topic, {}).get("retention.ms", {}).get("value")
    return str(value) if value is not None else None


def made_without_retention(settings: HubSettings, topics: list[str]) -> None:
    """Topics as a hub made them before the schedule existed (no retention.ms)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**client_options(settings), client_id="sendhub-tests")
    try:
        missing = [NewTopic(t, 1, 1) for t in topics if t not in set(admin.list_topics())]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def test_retention_erases_exactly_the_pupils_past_it(settings: HubSettings, cli: CLI) -> None:
    t = settings.topics
    made_without_retention(settings, [t.accepted, t.rejected, t.audit_anchors])
    today = date(2027, 3, 10)  # a fixed day: the other tests' pupils are far from 31
    records = RecordsApplication(env=settings.eventsourcing_env())
    yesterday, on_the_day, tomorrow = random_upn(), random_upn(), random_upn()
    record(records, yesterday, born_kept_until(today - timedelta(days=1)))
    record(records, on_the_day, born_kept_until(today))
    record(records, tomorrow, born_kept_until(today + timedelta(days=1)))
    ours = {yesterday, on_the_day, tomorrow}

    preview = run_retention(settings, records, today, dry_run=True)
    assert [d.upn for d in preview.due if d.upn in ours] == [yesterday]
    assert preview.erased == []
    assert records.erasure_of(yesterday) is None  # the dry run changed nothing

    shown = cli("retention", "run", "--dry-run", "--on", today.isoformat())
    assert yesterday in shown.stdout and on_the_day not in shown.stdout
    assert "would be erased" in shown.stdout and "date of birth + 31 years" in shown.stdout

    done = run_retention(settings, records, today, dry_run=False)
    assert [d.upn for d in done.due if d.upn in ours] == [yesterday]
    assert len(done.erased) == len(done.due)
    erasure = records.erasure_of(yesterday)
    assert erasure is not None and "the retention schedule" in erasure
    assert records.erasure_of(on_the_day) is None and records.erasure_of(tomorrow) is None
    assert len(records.history_events(on_the_day)) == 1
    assert records.verify_pupil(yesterday) == (1, None)

    # Topics made before the schedule get its retention.ms.
    assert retention_of(settings, settings.topics.accepted) == str(30 * DAY_MS)
    assert retention_of(settings, settings.topics.rejected) == str(30 * DAY_MS)
    assert retention_of(settings, settings.topics.audit_anchors) == "-1"
    again = run_retention(settings, records, today + timedelta(days=1), dry_run=True)
    assert [d.upn for d in again.due if d.upn in ours] == [on_the_day]
    assert again.topics == []  # nothing left to set
