"""Every Kafka topic name the hub uses, in one place.

Names follow `sen.<stream>.v<major>`. A deployment may set a namespace (for example
per trust, or per test run) that is put in front of every name; the default is none.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHOOL_EVENTS_V1 = "sen.school-events.v1"
ACCEPTED_V1 = "sen.accepted.v1"
REJECTED_V1 = "sen.rejected.v1"
PUPIL_HISTORY_V1 = "sen.pupil-history.v1"
INBOX_PREFIX = "sen.inbox."
PACKET_RECEIPTS_V1 = "sen.packet-receipts.v1"
AUDIT_ANCHORS_V1 = "sen.audit-anchors.v1"


# Who may write a message is the topic it is on, which the broker's ACLs protect: each
# principal that writes to Kafka has its own inbound topic, `<stream>.<sender>`, where the
# sender is `urn-<URN>` (a school), `ukprn-<UKPRN>` (a post-16 provider, receipts only),
# a connector's name, or `gateway` (the HTTPS gateway, which names who called it in the
# `sendhub-principal` header). The bare stream topic is the operator's (bulk loads).
GATEWAY_SENDER = "gateway"
PRINCIPAL_HEADER = "sendhub-principal"


def receiver_inbox(receiver: str) -> str:
    """The inbox topic for a receiver such as `urn-100001`, `ukprn-10012345` or
    `lost-pupils.la-801` (an LA's inbox for pupils with no known destination)."""
    return f"{INBOX_PREFIX}{receiver}"


@dataclass(frozen=True)
class Topics:
    """Topic names as one deployment spells them (with its namespace, if any)."""

    namespace: str = ""

    def _n(self, name: str) -> str:
        return f"{self.namespace}{name}"

    @property
    def school_events(self) -> str:
        return self._n(SCHOOL_EVENTS_V1)

    @property
    def accepted(self) -> str:
        return self._n(ACCEPTED_V1)

    @property
    def rejected(self) -> str:
        return self._n(REJECTED_V1)

    @property
    def pupil_history(self) -> str:
        return self._n(PUPIL_HISTORY_V1)

    @property
    def packet_receipts(self) -> str:
        return self._n(PACKET_RECEIPTS_V1)

    @property
    def audit_anchors(self) -> str:
        return self._n(AUDIT_ANCHORS_V1)

    def school_events_from(self, sender: str) -> str:
        return f"{self.school_events}.{sender}"

    def packet_receipts_from(self, sender: str) -> str:
        return f"{self.packet_receipts}.{sender}"

    def sender_of(self, topic: str, stream: str) -> str | None:
        """`urn-100001` for `<ns>sen.school-events.v1.urn-100001`; None for the bare
        (operator's) topic."""
        return topic[len(stream) + 1:] if topic.startswith(stream + ".") else None

    def inbox(self, receiver: str) -> str:
        return self._n(receiver_inbox(receiver))

    def group(self, service: str) -> str:
        """Consumer group id of a service, namespaced like the topics."""
        return f"{self.namespace}sendhub-{service}"
