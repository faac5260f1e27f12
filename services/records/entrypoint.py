"""Records' faststream app and outbox relay: the only Kafka code of the service.

Consumes `sen.accepted.v1` in batches; each partition's share of a batch is stored in
one transaction together with its Kafka position, so a redelivered message changes
nothing. Offsets are committed after the transaction; on an error the batch is retried
from its first message. The relay publishes the notification log, in order, to
`sen.pupil-history.v1` and records how far it got only after the broker acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid5

import psycopg
from eventsourcing.persistence import Notification
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from psycopg.sql import SQL, Identifier

from contracts.accepted import ACCEPTED_EVENT, AcceptedSchoolEventV1
from contracts.anchors import AuditAnchorV1, ChainHead
from contracts.history import PupilHistoryEventV1
from services.records.application import (
    AnchorHeads,
    ConsumedPosition,
    PupilHistoryErased,
    RecordsApplication,
)
from services.records.domain import EventIdConflict, RecordsError
from services.records.gauges import RecordsGauges
from services.records.handlers import to_history_contract, to_school_event_record
from services.records.persistence import PostgresRecordsRecorder
from services.shared import locks
from services.shared.binding import bind
from services.shared.consuming import ConsumerPolicy, Record
from services.shared.database import require_current
from services.shared.kafka import (
    batch_consumer_options,
    ensure_topics,
    make_broker,
    records_of,
    rejected_topic_config,
)
from services.shared.lease import OutboxLease
from services.shared.metrics import LAST_ANCHOR
from services.shared.observing import StoreGauges, run_beside
from services.shared.settings import HubSettings
from services.shared.tasks import PeriodicTask

SERVICE = "records"
RELAY_BATCH = 500
ANCHOR_BATCH = 20_000  # notifications per anchor
ANCHOR_PART = 2_000  # chain heads per anchor message
_ANCHOR_NAMESPACE = UUID("3c1d0a52-7e55-4f4e-9d7b-1a2b3c4d5e6f")
log = logging.getLogger("sendhub.records")


def build_application(settings: HubSettings) -> RecordsApplication:
    return RecordsApplication(env=settings.eventsourcing_env())


def _accepted(value: bytes) -> AcceptedSchoolEventV1:
    # Validated once at the edge by ingest: here tolerant, and the clock check skipped.
    return ACCEPTED_EVENT.validate_json(value, extra="ignore", context={"trusted": True})


def build_broker(settings: HubSettings, app: RecordsApplication) -> KafkaBroker:
    topics = settings.topics
    broker = make_broker(settings, SERVICE)
    # A school event the history refuses (RecordsError) is the message's fault.
    policy = ConsumerPolicy(SERVICE, broker.publisher(topics.rejected), log,
                            refusals={EventIdConflict: "event_id_conflict",
                                      PupilHistoryErased: "pupil_erased",
                                      RecordsError: "history_rejected"})

    async def record_events(items: list[tuple[AcceptedSchoolEventV1, Record]]) -> None:
        batch = [(to_school_event_record(accepted), ConsumedPosition(
            r.topic, r.partition, r.offset)) for accepted, r in items]
        stored = await asyncio.to_thread(app.record_school_events, batch)
        log.info("history.recorded", extra={
            "partition": items[0][1].partition, "consumed": len(batch), "stored": len(stored),
            "last_offset": batch[-1][1].offset})

    @broker.subscriber(topics.accepted, **batch_consumer_options(settings, SERVICE))
    async def on_accepted_events(message: KafkaMessage) -> None:
        async def record() -> None:
            parsed = await policy.parse_by_partition(records_of(message),
                                                     lambda r: _accepted(r.value or b""))
            for items in parsed.values():
                await policy.store(items, record_events)

        await policy.guard(record)

    return broker


class StoredEventsListener(PeriodicTask):
    """Wakes the relay as soon as any records process stores history events, instead of
    leaving them until its next look: eventsourcing NOTIFYs the events table's channel
    in every insert transaction, delivered to listeners when it commits. A lost
    connection is retried like any task; meanwhile the relay still looks every
    `SENDHUB_RELAY_INTERVAL_SECONDS`."""

    def __init__(self, conninfo: str, channel: str, relay: PeriodicTask) -> None:
        super().__init__(1.0, log, "history.listen")
        self.conninfo, self.channel, self.relay = conninfo, channel, relay

    async def once(self) -> bool:
        async with await psycopg.AsyncConnection.connect(self.conninfo,
                                                         autocommit=True) as conn:
            await conn.execute(SQL("LISTEN {}").format(Identifier(self.channel)))
            self.relay.wake()  # whatever was stored while nobody listened
            async for _ in conn.notifies():
                self.relay.wake()
        return False


class HistoryRelay(PeriodicTask):
    """Publishes the notification log to `sen.pupil-history.v1`: in order, none lost.

    At-least-once: a crash between publishing and marking re-publishes a few events,
    which readers recognise by (pupil, version). The lease is asked again after the
    reads, just before publishing: a database restart ends the lease's session (another
    instance may take it) while the reads are retried on new connections and succeed,
    and without this second look both instances relayed the same events. It narrows the
    window to the moments between that look and the broker's acknowledgements, where a
    restart is a crash like any other (at-least-once).
    """

    def __init__(self, settings: HubSettings, app: RecordsApplication, broker: KafkaBroker,
                 lease: OutboxLease):
        super().__init__(settings.relay_interval_seconds, log, "history.relay")
        self.topic = settings.topics.pupil_history
        self.app = app
        self.broker = broker
        self.lease = lease

    async def once(self) -> bool:
        if not await asyncio.to_thread(self.lease.held):
            return False  # another instance relays
        return await self.relay_once() == RELAY_BATCH

    async def relay_once(self) -> int:
        after = await asyncio.to_thread(self.app.relayed_up_to)
        notifications = await asyncio.to_thread(self.app.notifications, after, RELAY_BATCH)
        if not notifications:
            return 0
        # Every read (decrypting needs the pupils' keys) before the first send: a database
        # error part way would otherwise leave some sent and all sent again on the retry.
        messages = await asyncio.to_thread(self.history_messages, notifications)
        if not await asyncio.to_thread(self.lease.held):
            return 0  # lost while reading: the new holder relays these
        sends = [
            await self.broker.publish(message.model_dump_json().encode(), topic=self.topic,
                                      key=message.upn.encode(), no_confirm=True)
            for message in messages
        ]
        await asyncio.gather(*sends)
        await asyncio.to_thread(self.app.mark_relayed, notifications[-1].id)
        log.info("history.relayed", extra={"count": len(notifications),
                                           "up_to": notifications[-1].id})
        return len(notifications)

    def history_messages(self, notifications: Sequence[Notification]
                         ) -> list[PupilHistoryEventV1]:
        """The notifications as history messages; a pupil erased before the relay reached
        their events has nothing to send."""
        return [to_history_contract(event, n.id) for n in notifications
                if (event := self.app.to_history_event(n)) is not None]


def anchor_messages(heads: AnchorHeads, anchored_at: datetime,
                    all_heads: list[tuple[UUID, int, str]]) -> list[AuditAnchorV1]:
    """One anchor, split into parts; its id is fixed by the range it covers, so a re-sent
    anchor (after a crash) is recognisably the same one."""
    anchor_id = uuid5(_ANCHOR_NAMESPACE, f"{heads.after}-{heads.up_to}")
    items = sorted((p, v, h) for p, (v, h) in heads.heads.items())
    chunks = [items[i:i + ANCHOR_PART] for i in range(0, len(items), ANCHOR_PART)]
    return [
        AuditAnchorV1(
            anchor_id=anchor_id, anchored_at=anchored_at,
            after_notification_id=heads.after, up_to_notification_id=heads.up_to,
            part=n, parts=len(chunks),
            heads=[ChainHead(pupil_id=p, version=v, head=h) for p, v, h in chunk],
            digest=AnchorHeads.digest(chunk),
            all_heads_digest=AnchorHeads.digest(all_heads), pupils=len(all_heads),
        )
        for n, chunk in enumerate(chunks, start=1)
    ]


class AuditAnchoring(PeriodicTask):
    """Publishes the heads of grown hash chains to `sen.audit-anchors.v1`, periodically.

    At-least-once, like the relay: the anchored position is stored after the broker
    acknowledged every part.
    """

    def __init__(self, settings: HubSettings, app: RecordsApplication, broker: KafkaBroker,
                 lease: OutboxLease):
        super().__init__(settings.anchor_interval_seconds, log, "audit.anchor")
        self.topic = settings.topics.audit_anchors
        self.app = app
        self.broker = broker
        self.lease = lease

    async def once(self) -> bool:
        if await asyncio.to_thread(self.lease.held):  # else another instance anchors
            await self.anchor_once()
        return False

    async def anchor_once(self) -> int:
        after = await asyncio.to_thread(self.app.anchored_up_to)
        heads = await asyncio.to_thread(self.app.heads_between, after, ANCHOR_BATCH)
        if heads is None:
            return 0
        all_heads = await asyncio.to_thread(self.app.all_heads, heads.up_to)
        if not await asyncio.to_thread(self.lease.held):
            return 0  # lost while reading, as in the relay
        messages = anchor_messages(heads, datetime.now(UTC), all_heads)
        sends = [
            await self.broker.publish(m.model_dump_json().encode(), topic=self.topic,
                                      key=str(m.anchor_id).encode(), no_confirm=True)
            for m in messages
        ]
        await asyncio.gather(*sends)
        await asyncio.to_thread(self.app.mark_anchored, heads.up_to)
        LAST_ANCHOR.set_to_current_time()
        log.info("audit.anchored", extra={"pupils": len(heads.heads), "up_to": heads.up_to,
                                          "parts": len(messages)})
        return len(heads.heads)


def build_app(settings: HubSettings) -> FastStream:
    topics = settings.topics
    require_current(settings)  # refuse a database whose schema is not at the hub's head
    bind(settings, SERVICE)  # refuse a database that belongs to another cluster or namespace
    ensure_topics(
        settings, [topics.accepted, topics.rejected, topics.pupil_history, topics.audit_anchors],
        {**rejected_topic_config(settings), topics.audit_anchors: {"retention.ms": "-1"}},
        service=SERVICE,
    )
    app = build_application(settings)
    broker = build_broker(settings, app)
    # One lease per task: the relay and the anchoring may run in different instances.
    relay = HistoryRelay(settings, app, broker, OutboxLease(
        settings.database_conninfo, locks.RECORDS_OUTBOX, "pupil-history", log))
    anchoring = AuditAnchoring(settings, app, broker, OutboxLease(
        settings.database_conninfo, locks.RECORDS_ANCHORS, "audit-anchors", log))
    stream = FastStream(broker, logger=log)
    run_beside(stream, StoreGauges(RecordsGauges(app, settings.anchor_interval_seconds),
                                   settings.metrics_interval_seconds))
    stream.after_startup(relay.start)
    recorder = app.process_recorder
    if isinstance(recorder, PostgresRecordsRecorder):  # always, outside unit tests
        listener = StoredEventsListener(settings.database_conninfo, recorder.channel_name,
                                        relay)
        stream.after_startup(listener.start)
        stream.on_shutdown(listener.stop)
    stream.after_startup(anchoring.start)
    stream.on_shutdown(relay.stop)
    stream.on_shutdown(anchoring.stop)
    return stream
