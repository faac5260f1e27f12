"""Pure mapping between transfers' contracts and its domain: history and receipts in,
refusals out as dead-letter reasons."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.dead_letter import Problem
from contracts.history import PupilHistoryEventV1
from contracts.receipts import PacketReceiptV1
from contracts.topics import GATEWAY_SENDER, PRINCIPAL_HEADER, Topics
from services.shared.access import Principal, PrincipalError, receiver_of
from services.shared.errors import MessageRefused
from services.transfers.domain import Receipt, TransfersError


def history_message(value: bytes) -> PupilHistoryEventV1:
    """A history-topic message, read tolerantly (our own records service wrote it)."""
    return PupilHistoryEventV1.model_validate_json(value, extra="ignore",
                                                   context={"trusted": True})


def receipt(value: bytes, topic: str, headers: Sequence[tuple[str, bytes]], topics: Topics
            ) -> Receipt:
    """A receiving setting's receipt, read strictly (it comes from outside the hub), with
    the inbox of whoever wrote it, as its topic (or the gateway's header) says."""
    message = PacketReceiptV1.model_validate_json(value)
    return Receipt(packet_id=message.packet_id, receiver=message.receiver,
                   status=message.status, at=message.at, reason=message.reason,
                   from_inbox=writer_inbox(topic, headers, topics))


def writer_inbox(topic: str, headers: Sequence[tuple[str, bytes]], topics: Topics
                 ) -> str | None:
    """None for the operator's bare topic; else the writer's inbox, or a name no packet
    goes to when the writer has none (a receipt from it is then refused)."""
    sender = topics.sender_of(topic, topics.packet_receipts)
    if sender is None:
        return None
    if sender != GATEWAY_SENDER:
        return sender if sender.startswith(("urn-", "ukprn-")) else f"(sender {sender})"
    named = dict(headers).get(PRINCIPAL_HEADER, b"").decode("utf-8", "replace")
    try:
        return receiver_of(Principal.parse(named)) or f"(principal {named})"
    except PrincipalError:
        return f"(gateway caller {named or 'not named'})"


def refusal(error: TransfersError) -> MessageRefused:
    return MessageRefused(error.reason, [Problem(path="", message=str(error))])
