"""Pure mapping between transfers' contracts and its domain: history and receipts in,
refusals out as dead-letter reasons."""

from __future__ import annotations

from contracts.dead_letter import Problem
from contracts.history import PupilHistoryEventV1
from contracts.receipts import PacketReceiptV1
from services.shared.errors import MessageRefused
from services.transfers.domain import Receipt, TransfersError


def history_message(value: bytes) -> PupilHistoryEventV1:
    """A history-topic message, read tolerantly (our own records service wrote it)."""
    return PupilHistoryEventV1.model_validate_json(value, extra="ignore",
                                                   context={"trusted": True})


def receipt(value: bytes) -> Receipt:
    """A receiving setting's receipt, read strictly (it comes from outside the hub)."""
    message = PacketReceiptV1.model_validate_json(value)
    return Receipt(packet_id=message.packet_id, receiver=message.receiver,
                   status=message.status, at=message.at, reason=message.reason)


def refusal(error: TransfersError) -> MessageRefused:
    return MessageRefused(error.reason, [Problem(path="", message=str(error))])
