"""JSON Schemas generated from the contract models; `python -m contracts.schemas` rewrites them.

The checked-in files under contracts/schemas/ are what outside systems code against;
a test fails when they no longer match the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.accepted import AcceptedSchoolEventV1
from contracts.anchors import AuditAnchorV1
from contracts.dead_letter import DeadLetterV1
from contracts.history import PupilHistoryEventV1
from contracts.inbound import InboundEventV1
from contracts.packet import TransferPacketV1
from contracts.receipts import PacketReceiptV1

SCHEMA_DIR = Path(__file__).parent / "schemas"

MODELS: dict[str, Any] = {
    "school-event.v1.json": InboundEventV1,
    "accepted-school-event.v1.json": AcceptedSchoolEventV1,
    "dead-letter.v1.json": DeadLetterV1,
    "pupil-history-event.v1.json": PupilHistoryEventV1,
    "transfer-packet.v1.json": TransferPacketV1,
    "packet-receipt.v1.json": PacketReceiptV1,
    "audit-anchor.v1.json": AuditAnchorV1,
}


def render(filename: str) -> str:
    schema = TypeAdapter(MODELS[filename]).json_schema(mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$id": f"sendhub/{filename}", **schema}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for filename in MODELS:
        (SCHEMA_DIR / filename).write_text(render(filename))
        print(f"wrote {SCHEMA_DIR / filename}")  # noqa: T201


if __name__ == "__main__":
    main()
