"""`sen.packet-receipts.v1`: a receiving setting says it has a transfer packet.

Contract layer. Receivers publish one receipt per step, keyed by `packet_id`:
`received` (it arrived), then `accepted` or `rejected` (with a reason: wrong pupil,
unreadable, not ours...). The hub keeps each packet's delivery state from these and
re-sends a packet that nobody acknowledged. Strict, like every inbound contract.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, model_validator

from contracts.storable import refuse_unstorable

ReceiptStatus = Literal["received", "accepted", "rejected"]


class PacketReceiptV1(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    _storable = model_validator(mode="before")(refuse_unstorable)

    packet_id: UUID
    receiver: Annotated[str, StringConstraints(
        pattern=r"^(urn-[0-9]{6}|ukprn-1[0-9]{7}|lost-pupils|la-[0-9]{3})$")]
    """The packet's receiver: a school, a post-16 provider, `lost-pupils` (an LA for a
    pupil with no known destination) or `la-<code>` (an LA for an EHC plan notice)."""
    status: ReceiptStatus
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=2_000)] | None = None
    at: AwareDatetime

    @model_validator(mode="after")
    def _reason_with_rejection(self) -> PacketReceiptV1:
        if self.status == "rejected" and self.reason is None:
            raise ValueError("a rejected receipt must say why (reason)")
        if self.status != "rejected" and self.reason is not None:
            raise ValueError("only a rejected receipt carries a reason")
        return self
