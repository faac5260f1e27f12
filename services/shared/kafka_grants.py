"""What each principal may do on Kafka, as ACL grants: pure, applied by
`sendhub principals sync` (sendhub/principals_admin.py).

Least privilege: a service gets exactly the topics and consumer groups its work needs
(and CREATE on the topics it creates at start); a school or post-16 provider writes only
its own inbound topics and reads only its own inbox; an LA reads only its own two inboxes
(its lost pupils, `sen.inbox.lost-pupils.la-<code>`, and the EHC plans moving into or out
of its care, `sen.inbox.la-<code>`) and writes only its own EHC events
(`sen.school-events.v1.la-<code>`) and receipts (`sen.packet-receipts.v1.la-<code>`).
Trusts and auditors get nothing on Kafka: they read through the gateway or the CLI,
where every read of a pupil is logged with its reason. The operator
is the broker's super user and needs no grants. Prefixed grants cover a family of
topics (every inbox, every inbound topic) with one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts.topics import Topics
from services.shared.access import Kind, Principal, receivers_of, sender_of

Operation = Literal["READ", "WRITE", "DESCRIBE", "CREATE"]
PRODUCE: tuple[Operation, ...] = ("WRITE", "DESCRIBE", "CREATE")
CONSUME: tuple[Operation, ...] = ("READ", "DESCRIBE")


@dataclass(frozen=True, order=True)
class Grant:
    resource: Literal["topic", "group"]
    name: str
    prefixed: bool
    operation: Operation


def _topic(name: str, operations: tuple[Operation, ...], *, prefixed: bool = False
           ) -> list[Grant]:
    return [Grant("topic", name, prefixed, op) for op in operations]


def _group(name: str) -> list[Grant]:
    """Consumer groups whose names start with `name` (a service's, or the principal's)."""
    return [Grant("group", name, True, "READ")]


def _service_grants(name: str, t: Topics) -> list[Grant]:
    if name == "ingest":
        return (_topic(t.school_events, (*CONSUME, "CREATE"), prefixed=True)
                + _topic(t.accepted, PRODUCE) + _topic(t.rejected, PRODUCE)
                + _group(t.group("ingest")))
    if name == "records":
        return (_topic(t.accepted, (*CONSUME, "CREATE")) + _topic(t.rejected, PRODUCE)
                + _topic(t.pupil_history, PRODUCE) + _topic(t.audit_anchors, PRODUCE)
                + _group(t.group("records")))
    if name == "transfers":
        return (_topic(t.pupil_history, (*CONSUME, "CREATE"))
                + _topic(t.packet_receipts, (*CONSUME, "CREATE"), prefixed=True)
                + _topic(t.rejected, PRODUCE) + _topic(t.inbox(""), PRODUCE, prefixed=True)
                + _group(t.group("transfers")))
    # the gateway: its own inbound topics; it reads only the anchors (no group: it
    # reads the topic whole, to check a pupil's chain for the auditor's web page)
    return (_topic(t.school_events_from("gateway"), ("WRITE", "DESCRIBE"))
            + _topic(t.packet_receipts_from("gateway"), ("WRITE", "DESCRIBE"))
            + _topic(t.audit_anchors, CONSUME))


def grants(principal: Principal, topics: Topics, kafka_user: str) -> list[Grant]:
    """Every ACL `kafka_user` (the principal's Kafka user) should hold, and no other."""
    if principal.kind is Kind.service:
        return sorted(set(_service_grants(principal.identifier, topics)))
    found: list[Grant] = []
    sender = sender_of(principal)
    if principal.kind in _SENDS_EVENTS and sender:
        found += _topic(topics.school_events_from(sender), ("WRITE", "DESCRIBE"))
    if principal.kind in _SENDS_RECEIPTS and sender:
        found += _topic(topics.packet_receipts_from(sender), ("WRITE", "DESCRIBE"))
    inboxes = receivers_of(principal)
    for inbox in inboxes:
        found += _topic(topics.inbox(inbox), CONSUME)
    if inboxes:
        found += _group(kafka_user)
    return sorted(set(found))


_SENDS_EVENTS = (Kind.school, Kind.connector, Kind.la)
"""Who writes events to its own inbound topic (an LA: its EHC events)."""
_SENDS_RECEIPTS = (Kind.school, Kind.post16, Kind.la)
"""Who receives packets and answers them with receipts on its own topic."""


def topics_to_create(principal: Principal, topics: Topics) -> list[str]:
    """The principal's own topics, created by the sync so that it can use them at once."""
    sender = sender_of(principal)
    names = []
    if principal.kind in _SENDS_EVENTS and sender:
        names.append(topics.school_events_from(sender))
    if principal.kind in _SENDS_RECEIPTS and sender:
        names.append(topics.packet_receipts_from(sender))
    if principal == Principal(Kind.service, "gateway"):
        names += [topics.school_events_from("gateway"), topics.packet_receipts_from("gateway")]
    names += [topics.inbox(inbox) for inbox in receivers_of(principal)]
    return names
