"""The retention schedule, and `sendhub retention run`, which applies it.

What the hub keeps, and for how long (UK GDPR Article 5(1)(e), storage limitation):

- a pupil's SEN history and the hub's copies of their packets: until the date of birth
  + 31 years (IRMS Information Management Toolkit for Schools, 2019, "SEN files, reviews
  and EHC plans": an EHC plan can last to age 25, plus 6 years under the Limitation Act
  1980; `SENDHUB_RETENTION_SEN_RECORD_YEARS`);
- transit topics (school events, accepted, pupil history, receipts): 30 days; dead
  letters: 30 days; receivers' inbox topics: 90 days (local policy, the
  `SENDHUB_RETENTION_*_DAYS` settings);
- the audit anchors (stream ids and hashes, no content) and the access log (erased
  pupils' entries under their pseudonym): for ever, for the audit.

A pupil is due on the first day after the kept period ends: born 3 February 2014, kept
until 3 February 2045, erased by the first run on or after 4 February 2045. Kafka applies
the topics' `retention.ms` itself; a run sets it on topics made before it existed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from sendhub.erasure import ErasureReport, erase_pupils
from sendhub.topic_purge import hub_topics
from services.records.application import RecordsApplication
from services.records.domain import SENHistoryEvent
from services.shared.kafka import client_options, retention_configs
from services.shared.settings import HubSettings

SEN_RECORD_SOURCE = ("IRMS Information Management Toolkit for Schools (2019): SEN files, "
                     "reviews and EHC plans, date of birth + 31 years")
AUTHORISED_BY = "the retention schedule (sendhub retention run)"


def kept_until(born: date, years: int) -> date:
    """The last day a record is kept: the birthday `years` on (29 February: 28th)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return born.replace(year=born.year + years, day=28)


def is_due(born: date, today: date, years: int) -> bool:
    """Past retention: the last kept day is over."""
    return today > kept_until(born, years)


@dataclass(frozen=True)
class DuePupil:
    upn: str
    born: date
    kept_until: date


def due_pupils(histories: Iterable[list[SENHistoryEvent]], today: date, years: int
               ) -> list[DuePupil]:
    """Pupils past retention on `today`, by the date of birth their newest event gives."""
    due = []
    for events in histories:
        if not events:
            continue
        newest = events[-1].school_event["pupil"]
        born = date.fromisoformat(str(newest["date_of_birth"]))
        if is_due(born, today, years):
            due.append(DuePupil(str(newest["upn"]), born, kept_until(born, years)))
    return sorted(due, key=lambda d: (d.kept_until, d.upn))


def readable_histories(records: RecordsApplication) -> Iterable[list[SENHistoryEvent]]:
    """Every pupil's history that can still be read (erased pupils have none)."""
    for _, items in records.stored_streams():
        yield [e for _, e in items if isinstance(e, SENHistoryEvent)]


@dataclass(frozen=True)
class TopicRetention:
    topic: str
    config: str
    now: str | None
    wanted: str


def topic_retention(settings: HubSettings, *, apply: bool) -> list[TopicRetention]:
    """The hub's topics whose `retention.ms` or `segment.ms` is not what the schedule
    says (set if `apply`)."""
    admin = KafkaAdminClient(**client_options(settings), client_id="sendhub-retention")
    try:
        topics = [*hub_topics(settings, admin), settings.topics.audit_anchors]
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])["topic"]
        changes = []
        for topic in topics:
            if topic not in described:
                continue
            for config, wanted in retention_configs(settings, topic).items():
                current = described[topic].get(config, {}).get("value")
                if current != wanted:
                    changes.append(TopicRetention(topic, config, current, wanted))
        if apply and changes:
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={
                c.config: c.wanted for c in changes if c.topic == topic})
                for topic in sorted({c.topic for c in changes})],
                incremental=True, raise_on_unknown=False)
        return changes
    finally:
        admin.close()


@dataclass
class RetentionRun:
    due: list[DuePupil]
    topics: list[TopicRetention]
    erased: list[ErasureReport]


def run_retention(settings: HubSettings, records: RecordsApplication, today: date, *,
                  dry_run: bool, on_step: Callable[[str], None] | None = None) -> RetentionRun:
    """List what is past retention on `today`; unless `dry_run`, erase it and set the
    topics' retention."""
    step = on_step or (lambda _: None)
    step("reading every pupil's date of birth")
    due = due_pupils(readable_histories(records), today, settings.retention_sen_record_years)
    step("comparing the topics' retention with the schedule")
    topics = topic_retention(settings, apply=not dry_run)
    erased: list[ErasureReport] = []
    if due and not dry_run:
        erased = erase_pupils(
            settings, [d.upn for d in due], authorised_by=AUTHORISED_BY,
            reason=f"past retention on {today.isoformat()} ({SEN_RECORD_SOURCE})", on_step=step,
            keys=records.keys)
    return RetentionRun(due, topics, erased)
