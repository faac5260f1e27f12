"""The outbox publishers read everything, then ask their lease again, then publish.

A database restart ends the lease's session, so another instance may take the lease,
while the holder's reads are retried on new connections and succeed. Without the second
look both instances published the same rows (the fault suite's two-instance phase saw
duplicate history publishes after a PostgreSQL restart). And a read that fails part way
(a pupil's key fetched on a connection the restart broke) must come before any send, or
the retry sends again what was already sent.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from services.records import entrypoint as records_entrypoint
from services.records.entrypoint import AuditAnchoring, HistoryRelay
from services.shared.settings import HubSettings
from services.transfers.entrypoint import PENDING_BATCH, PacketPublisher
from services.transfers.repository import PendingPacket

PUPIL = UUID(int=7)


class ScriptedLease:
    """Answers `held()` from a script: the lease is lost between two questions."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.asked = 0

    def held(self) -> bool:
        self.asked += 1
        return self.answers.pop(0) if self.answers else False


class RecordingBroker:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, body: bytes, *, topic: str, **_: Any) -> asyncio.Future[None]:
        self.published.append(topic)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class NotificationLog:
    """Records' application as the relay sees it: one notification, its pupil erased
    (so the relay has nothing to send but still marks it relayed)."""

    def __init__(self) -> None:
        self.marked: list[int] = []

    def relayed_up_to(self) -> int:
        return 0

    def notifications(self, after: int, limit: int) -> list[Any]:
        return [type("Notification", (), {"id": 7})()]

    def to_history_event(self, notification: Any) -> None:
        return None

    def mark_relayed(self, notification_id: int) -> None:
        self.marked.append(notification_id)


class Outbox:
    """Transfers' application as the publisher sees it: `count` pending packets."""

    def __init__(self, inbox: str, count: int = 1) -> None:
        self.pending = [PendingPacket(uuid4(), inbox, "{}", 1, inbox) for _ in range(count)]
        self.published: list[PendingPacket] = []
        self.reads = 0

    def pending_packets(self, limit: int = 100) -> list[PendingPacket]:
        self.reads += 1
        return [p for p in self.pending if p not in self.published][:limit]

    def mark_published(self, sent: list[PendingPacket]) -> None:
        self.published += sent


def settings() -> HubSettings:
    return HubSettings(topic_namespace="unit-fence.", kafka_security_protocol="PLAINTEXT")


def relay(lease: ScriptedLease, app: NotificationLog, broker: RecordingBroker) -> HistoryRelay:
    return HistoryRelay(settings(), app, broker, lease)  # type: ignore[arg-type]


def test_the_relay_marks_nothing_when_its_lease_went_while_it_read() -> None:
    app, broker = NotificationLog(), RecordingBroker()
    lease = ScriptedLease(True, False)
    assert asyncio.run(relay(lease, app, broker).once()) is False
    assert app.marked == [] and broker.published == []
    assert lease.asked == 2


def test_the_relay_marks_what_it_read_while_its_lease_holds() -> None:
    app, broker = NotificationLog(), RecordingBroker()
    asyncio.run(relay(ScriptedLease(True, True), app, broker).once())
    assert app.marked == [7]


class FlakyKeys(NotificationLog):
    """Two notifications; reading the second fails once, as a broken connection does."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def notifications(self, after: int, limit: int) -> list[Any]:
        return [type("Notification", (), {"id": n})() for n in (7, 8)]

    def to_history_event(self, notification: Any) -> Any:
        if notification.id == 8 and not self.failed:
            self.failed = True
            raise psycopg.OperationalError("consuming input failed")
        return notification.id


class Message:
    def __init__(self, event: int) -> None:
        self.upn = f"pupil-{event}"

    def model_dump_json(self) -> str:
        return self.upn


def test_a_read_failing_part_way_sends_nothing_so_the_retry_sends_each_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records_entrypoint, "to_history_contract",
                        lambda event, notification_id: Message(event))
    app, broker = FlakyKeys(), RecordingBroker()
    task = relay(ScriptedLease(True, True, True, True), app, broker)
    with pytest.raises(psycopg.OperationalError):
        asyncio.run(task.once())
    assert broker.published == [] and app.marked == []
    asyncio.run(task.once())
    assert len(broker.published) == 2 and app.marked == [8]


class Chains:
    """Records' application as the anchoring sees it: one pupil's chain grew."""

    def __init__(self) -> None:
        self.marked: list[int] = []

    def anchored_up_to(self) -> int:
        return 0

    def heads_between(self, after: int, limit: int) -> Any:
        return type("Heads", (), {"up_to": 3, "after": 0, "heads": {PUPIL: (3, "ab")}})()

    def all_heads(self, up_to: int) -> list[Any]:
        return [(PUPIL, 3, "ab")]

    def mark_anchored(self, up_to: int) -> None:
        self.marked.append(up_to)


def anchoring(lease: ScriptedLease, chains: Chains, broker: RecordingBroker) -> AuditAnchoring:
    return AuditAnchoring(settings(), chains, broker, lease)  # type: ignore[arg-type]


def test_anchoring_publishes_nothing_when_its_lease_went_while_it_read() -> None:
    chains, broker = Chains(), RecordingBroker()
    asyncio.run(anchoring(ScriptedLease(True, False), chains, broker).once())
    assert broker.published == [] and chains.marked == []


def test_anchoring_publishes_and_marks_while_its_lease_holds() -> None:
    chains, broker = Chains(), RecordingBroker()
    asyncio.run(anchoring(ScriptedLease(True, True), chains, broker).once())
    assert broker.published == [settings().topics.audit_anchors] and chains.marked == [3]


def publisher(lease: ScriptedLease, outbox: Outbox, broker: RecordingBroker) -> PacketPublisher:
    hub = settings()
    sender = PacketPublisher(hub, outbox, broker, lease)  # type: ignore[arg-type]
    sender.known_topics = {hub.topics.inbox(p.inbox) for p in outbox.pending}  # no admin call
    return sender


def test_the_packet_publisher_sends_nothing_when_its_lease_went_while_it_read() -> None:
    outbox, broker = Outbox("urn-100001"), RecordingBroker()
    assert asyncio.run(publisher(ScriptedLease(True, False), outbox, broker).deliver_pending()) == 0
    assert broker.published == [] and outbox.published == []


def test_the_packet_publisher_sends_while_its_lease_holds() -> None:
    outbox, broker = Outbox("urn-100001"), RecordingBroker()
    sender = publisher(ScriptedLease(True, True, True), outbox, broker)
    assert asyncio.run(sender.deliver_pending()) == 1
    assert broker.published == [settings().topics.inbox("urn-100001")]
    assert outbox.published == outbox.pending


def test_the_packet_publisher_reads_page_after_page_until_one_comes_back_short() -> None:
    outbox, broker = Outbox("urn-100001", count=PENDING_BATCH + 20), RecordingBroker()
    sender = publisher(ScriptedLease(*[True] * 5), outbox, broker)
    assert asyncio.run(sender.deliver_pending()) == PENDING_BATCH + 20
    assert outbox.reads == 2 and len(broker.published) == PENDING_BATCH + 20
