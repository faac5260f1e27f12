"""What happens during a phase: the publisher sends the plan's messages on time, the
injector applies its faults on time. Each runs in its own thread and records what it did."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from contracts.topics import Topics
from faults import infra
from faults.fleet import Fleet
from faults.model import Fault, Group, Message
from faults.plan import Plan, PlannedFault
from services.shared.kafka import client_options
from services.shared.settings import HubSettings

PACKET_WAIT_SECONDS = 30.0  # how long a receipt group waits for the packet it acknowledges
METADATA_WAIT_MS = 60_000  # how long a send may wait for its topic's metadata
PRODUCERS_REPLACED = 3  # new producers a phase may take when one cannot get metadata back


@dataclass
class Published:
    failed: set[Message] = field(default_factory=set)
    groups_sent: set[int] = field(default_factory=set)  # indices into the plan's groups
    started_at: float = 0.0
    finished_at: float = 0.0
    errors: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the publisher gave up before the end of the plan


class Publisher(threading.Thread):
    """Sends the steady stream at its rate and each group at its moment, keyed as planned."""

    def __init__(self, plan: Plan, settings: HubSettings, topics: Topics, start: float) -> None:
        super().__init__(name="publisher", daemon=True)
        self.plan, self.settings, self.topics = plan, settings, topics
        self.start_time = start
        self.result = Published()
        self.replaced = 0
        self.producer = self._producer()

    def _producer(self) -> KafkaProducer:
        return KafkaProducer(
            **client_options(self.settings), acks="all", enable_idempotence=True,
            linger_ms=5, max_request_size=8 * 1024 * 1024, delivery_timeout_ms=300_000,
            request_timeout_ms=15_000, max_block_ms=METADATA_WAIT_MS)

    def send(self, message: Message) -> None:
        topic = self.topics.school_events if message.stream == "events" else self.topics.packet_receipts
        while True:
            try:
                future = self.producer.send(topic, key=message.key, value=message.value,
                                            headers=list(message.headers))
                break
            except KafkaTimeoutError as error:
                # kafka-python's producer can stay without a topic's metadata after a
                # broker restart while it still delivers what it holds (CI: 120 s, the
                # broker long back, the hub's own clients working). The load is the
                # suite's, not the hub's, so a new producer asks afresh; what the old one
                # held and could not deliver fails, left out as never acknowledged.
                if self.replaced >= PRODUCERS_REPLACED:
                    raise
                self.replaced += 1
                self.result.errors.append(
                    f"publisher: {error} ({topic}); a new producer sends on")
                self.producer.close(timeout=10)
                self.producer = self._producer()
        future.add_errback(lambda error, m=message: self.result.failed.add(m))

    def packet_exists(self, packet_id: str) -> bool:
        try:
            with psycopg.connect(self.settings.database_conninfo, connect_timeout=3) as conn:
                return conn.execute("SELECT 1 FROM transfers_packets WHERE packet_id = %s",
                                    (packet_id,)).fetchone() is not None
        except psycopg.Error:
            return False

    def run(self) -> None:
        start = self.result.started_at = self.start_time
        rate = self.plan.profile.rate
        steady = len(self.plan.steady)
        queue: list[tuple[float, int, Message | Group]] = [
            (n / rate, n, m) for n, (m, _) in enumerate(self.plan.steady)]
        queue += [(g.at, steady + n, g) for n, g in enumerate(self.plan.groups)]
        heapq.heapify(queue)
        waited: dict[int, float] = {}
        item: Message | Group | None = None
        try:
            while queue:
                due, order, item = heapq.heappop(queue)
                delay = start + due - time.time()
                if delay > 0:
                    time.sleep(delay)
                if isinstance(item, Message):
                    self.send(item)
                    continue
                if item.needs_packet and not self.packet_exists(item.needs_packet):
                    waited.setdefault(order, due)
                    if due - waited[order] < PACKET_WAIT_SECONDS:
                        heapq.heappush(queue, (due + 2.0, order, item))
                        continue
                for message, _ in item.messages:
                    self.send(message)
                self.result.groups_sent.add(order - steady)
            item = None  # every item was sent: a flush that fails leaves only the unacknowledged
            self.producer.flush(timeout=300)
        except Exception as error:  # what was never sent is not expected, and the phase fails
            self.result.stopped = f"{type(error).__name__}: {error}"
            self.result.errors.append(f"publisher: {self.result.stopped}")
            unsent = [item, *(queued for _, _, queued in queue)]
            self.result.failed |= {m for m in unsent if isinstance(m, Message)}
            self.result.failed |= {m for g in unsent if isinstance(g, Group)
                                   for m, _ in g.messages}
        finally:
            self.result.finished_at = time.time()
            self.producer.close(timeout=30)


@dataclass
class Injected:
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Injector(threading.Thread):
    """Applies the planned faults at their moments, one after another."""

    def __init__(self, plan: Plan, fleet: Fleet, base: HubSettings, log_dir: Path,
                 start: float) -> None:
        super().__init__(name="injector", daemon=True)
        self.plan, self.fleet, self.base, self.log_dir = plan, fleet, base, log_dir
        self.start_time = start
        self.result = Injected()
        self.broker_seen: infra.Broker | None = None  # to bring it back if a restart failed

    def at(self, seconds: float) -> None:
        delay = self.start_time + seconds - time.time()
        if delay > 0:
            time.sleep(delay)

    def record(self, kind: str, service: str | None, target: str = "") -> None:
        self.result.faults.append(Fault(kind, service, time.time(), target))

    def run(self) -> None:
        actions: dict[str, Callable[[PlannedFault], None]] = {
            "kill": self.kill, "broker": self.broker, "postgres": self.postgres,
            "rebalance": self.rebalance}
        for planned in self.plan.faults:
            self.at(planned.at)
            try:
                actions[planned.kind](planned)
            except Exception as error:
                self.result.notes.append(f"{planned.kind} at {planned.at:.1f} s failed: "
                                         f"{type(error).__name__}: {error}")

    def kill(self, fault: PlannedFault) -> None:
        assert fault.service is not None
        name = f"{fault.service}-{min(fault.instance, self.plan.instances)}"
        self.fleet.kill(name)
        self.record("kill", fault.service, name)
        time.sleep(1.0)  # a supervisor's restart delay
        service, number = name.rsplit("-", 1)
        self.fleet.wait_started(self.fleet.start(service, int(number)))

    def broker(self, fault: PlannedFault) -> None:
        broker = infra.find_broker(self.base)
        if broker is None:
            self.result.notes.append("broker fault skipped: no local broker found on the port")
            return
        self.broker_seen = broker
        _, port = infra.kafka_port(self.base)
        infra.kill_broker(broker, port)
        self.record("broker", None, f"pid {broker.pid}")
        time.sleep(2.0)
        infra.start_broker(broker, self.log_dir / "broker-restart.log")
        if not infra.wait_for_broker(self.base, 180):
            self.result.notes.append("the broker did not answer within 180 s of its restart")

    def postgres(self, fault: PlannedFault) -> None:
        cluster = infra.find_postgres(self.base)
        if cluster is None:
            self.result.notes.append("postgres fault skipped: no local cluster (or not root)")
            return
        self.record("postgres", None, f"{cluster.version}/{cluster.name}")
        infra.restart_postgres(cluster)

    def rebalance(self, fault: PlannedFault) -> None:
        """An extra instance joins (a rebalance), then leaves gracefully (another)."""
        assert fault.service is not None
        extra = self.fleet.start(fault.service, self.plan.instances + 1)
        self.fleet.wait_started(extra)
        self.record("rebalance join", fault.service, extra.name)
        time.sleep(fault.hold)
        self.record("rebalance leave", fault.service, extra.name)
        self.fleet.terminate(extra.name)
