"""Every Prometheus metric the hub's services export, in one registry, each with its help.

Names start with `sendhub_`. Labels carry topic and group names without the deployment's
namespace (so rules and dashboards read the same everywhere), and every receiver's inbox
is one `sen.inbox.*` label, so a thousand schools do not make a thousand series. Gauges
read from the database (`sendhub_outbox_backlog`, `sendhub_packets`) count the whole
hub, not one process: every instance of a service reports the same value, so aggregate
them with `max`, never `sum`. Served at `/metrics` (`services.shared.health`).

No I/O here: the values are set by `services.shared.observing` (the broker middleware,
consumer lag, the stores' gauges), `services.shared.consuming` (dead letters) and records'
anchoring.
"""

from __future__ import annotations

from typing import get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from contracts.dead_letter import ReasonCode
from contracts.topics import INBOX_PREFIX

# No `_created` series beside every counter: nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

EVENTS_CONSUMED = Counter(
    "sendhub_events_consumed_total",
    "Messages handed to a consumer, by service and topic (a batch read again after an "
    "infrastructure error counts again)",
    ["service", "topic"], registry=REGISTRY)
EVENTS_PUBLISHED = Counter(
    "sendhub_events_published_total",
    "Messages handed to the Kafka producer without error, by service and topic (dead "
    "letters included; a re-send counts again)",
    ["service", "topic"], registry=REGISTRY)
DEAD_LETTERS = Counter(
    "sendhub_dead_letters_total",
    "Messages dead-lettered, by service and reason", ["service", "reason"], registry=REGISTRY)
BATCH_SECONDS = Histogram(
    "sendhub_batch_duration_seconds",
    "Time a consumer took to handle one batch (or one message), by service and topic",
    ["service", "topic"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
CONSUMER_LAG = Gauge(
    "sendhub_consumer_lag",
    "Messages on a partition this consumer has not committed yet: end offset minus "
    "committed offset, for the partitions assigned to this process",
    ["service", "group", "topic", "partition"], registry=REGISTRY)
CONSUMER_PARTITIONS = Gauge(
    "sendhub_consumer_partitions",
    "Partitions assigned to this process, by service and consumer group (0 for an idle "
    "member of a group with more members than partitions)",
    ["service", "group"], registry=REGISTRY)
OUTBOX_BACKLOG = Gauge(
    "sendhub_outbox_backlog",
    "What waits to be published, hub-wide: records' notifications not yet relayed "
    "(pupil_history) or anchored (audit_anchors), transfers' packets (packets)",
    ["service", "outbox"], registry=REGISTRY)
PACKETS = Gauge(
    "sendhub_packets",
    "Transfer packets by delivery state, hub-wide (the state `sendhub transfers` shows)",
    ["state"], registry=REGISTRY)
LAST_ANCHOR = Gauge(
    "sendhub_last_anchor_timestamp_seconds",
    "When this records process last published an audit anchor (unix seconds; 0: not yet)",
    registry=REGISTRY)
ANCHOR_INTERVAL = Gauge(
    "sendhub_anchor_interval_seconds",
    "How often records publishes audit anchors (SENDHUB_ANCHOR_INTERVAL_SECONDS)",
    registry=REGISTRY)

DEAD_LETTER_REASONS: tuple[str, ...] = get_args(ReasonCode)


def unprefixed(name: str, namespace: str) -> str:
    """A topic or group name as labels carry it: without the deployment's namespace."""
    return name[len(namespace):] if namespace and name.startswith(namespace) else name


def topic_label(topic: str, namespace: str = "") -> str:
    """The `topic` label: the topic without the namespace; all inboxes as one."""
    name = unprefixed(topic, namespace)
    return f"{INBOX_PREFIX}*" if name.startswith(INBOX_PREFIX) else name


def start_counting(service: str) -> None:
    """Create a service's dead-letter series at zero, so that the first dead letter of a
    reason is an increase Prometheus sees (a series that starts at 1 shows none)."""
    for reason in DEAD_LETTER_REASONS:
        DEAD_LETTERS.labels(service, reason)
