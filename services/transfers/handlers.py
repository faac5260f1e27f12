"""Pure mapping between transfers' contracts and its domain: history and receipts in,
refusals out as dead-letter reasons."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.dead_letter import Problem
from contracts.history import PupilHistoryEventV1
from contracts.receipts import PacketReceiptV1
from contracts.topics import GATEWAY_SENDER, PRINCIPAL_HEADER, Topics
from services.shared.access import Principal, PrincipalError, principal_named_by_sender, receivers_of
from services.shared.errors import MessageRefused
from services.transfers.domain import Receipt, TransfersError


def history_message(value: bytes) -> PupilHistoryEventV1:
    """A history-topic message, read tolerantly (our own records service wrote it)."""
    return PupilHistoryEventV1.model_validate_json(value, extra="ignore",
                                                   context={"trusted": True})


def receipt(value: bytes, topic: str, headers: Sequence[tuple[str, bytes]], topics: Topics
            ) -> Receipt:
    """A receiving setting's receipt, read strictly (it comes from outside the hub), with
    the inboxes of whoever wrote it, as its topic (or the gateway's header) says."""
    message = PacketReceiptV1.model_validate_json(value)
    return Receipt(packet_id=message.packet_id, receiver=message.receiver,
                   status=message.status, at=message.at, reason=message.reason,
                   from_inboxes=writer_inboxes(topic, headers, topics))


def writer_inboxes(topic: str, headers: Sequence[tuple[str, bytes]], topics: Topics
                   ) -> tuple[str, ...] | None:
    """None for the operator's bare topic; else every inbox the writer reads (an LA reads
    two: its lost pupils and its EHC plan notices), or a name no packet goes to when the
    writer reads none (a receipt from it is then refused)."""
    sender = topics.sender_of(topic, topics.packet_receipts)
    if sender is None:
        return None
    if sender == GATEWAY_SENDER:
        named = dict(headers).get(PRINCIPAL_HEADER, b"").decode("utf-8", "replace")
        what = f"gateway caller {named or 'not named'}"
    else:
        named, what = principal_named_by_sender(sender), f"sender {sender}"
    try:
        return receivers_of(Principal.parse(named)) or (f"({what})",)
    except PrincipalError:
        return (f"({what})",)


def refusal(error: TransfersError) -> MessageRefused:
    return MessageRefused(error.reason, [Problem(path="", message=str(error))])
