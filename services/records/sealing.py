"""Stored history events sealed with the pupil's data key, their hashes left outside.

A stored row's state is `SHE1\\n` + a JSON header (the event's own hash, the hash it
links to and the school's event id) + `\\n` + the event's state sealed with the pupil's key
(`services/shared/pupil_keys.py`), bound to the row's version and topic. While the key
exists the row opens and its header must agree with what it seals; once the key is
destroyed (erasure) the content is gone but the header still lets the chain's links and
the anchors be checked. Rows stored before sealing existed are plain JSON and still read,
until `RecordsApplication.seal_stored_events` seals them (`sealed`) or, for an erased
pupil, shreds them (`shredded`: the header kept, the content random bytes).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from json.encoder import encode_basestring_ascii
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder

from services.shared.pupil_keys import SEALED_PREFIX, PupilErased, PupilKeys, pupil_ref

ENVELOPE = b"SHE1\n"


@dataclass(frozen=True)
class SealedHeader:
    event_hash: str
    previous_hash: str
    event_id: str = ""
    """The school's event id (a random UUID, nothing about the pupil): after an erasure
    it still tells a redelivered event from a new one."""


class HeaderMismatch(ValueError):
    """The hashes outside the seal are not those of the event inside it: altered."""


def _context(stored: StoredEvent) -> str:
    return f"records_events|{stored.originator_version}|{stored.topic}"


def header_of(stored: StoredEvent) -> SealedHeader | None:
    """The hashes outside a sealed row (None for a plain row, or one whose header is
    unreadable: the event itself then tells what is wrong)."""
    if not stored.state.startswith(ENVELOPE):
        return None
    try:
        header = json.loads(stored.state[len(ENVELOPE):].split(b"\n", 1)[0])
        return SealedHeader(str(header["event_hash"]), str(header["previous_hash"]),
                            str(header.get("event_id", "")))
    except (ValueError, KeyError, TypeError):
        return None


def _header_bytes(header: SealedHeader) -> bytes:
    return ENVELOPE + json.dumps(asdict(header), separators=(",", ":")).encode() + b"\n"


def _with_state(stored: StoredEvent, state: bytes) -> StoredEvent:
    return StoredEvent(originator_id=stored.originator_id,
                       originator_version=stored.originator_version,
                       topic=stored.topic, state=state)


def is_sealed_row(state: bytes) -> bool:
    """A row stored since sealing existed (revision 0007); older rows are plain JSON."""
    return state.startswith(ENVELOPE)


class SealingMapper(Mapper[UUID]):
    """eventsourcing's mapper, sealing each event's state with its pupil's key."""

    def __init__(self, transcoder: Transcoder, keys: PupilKeys) -> None:
        super().__init__(transcoder=transcoder)
        self.keys = keys

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        plain = super().to_stored_event(domain_event)
        return self.sealed(plain, SealedHeader(getattr(domain_event, "event_hash", ""),
                                               getattr(domain_event, "previous_hash", ""),
                                               getattr(domain_event, "event_id", "")))

    def sealed(self, plain: StoredEvent, header: SealedHeader) -> StoredEvent:
        """The plain row sealed as it stands, in its own place (raises `PupilErased`)."""
        sealed = self.keys.seal(pupil_ref(plain.originator_id), plain.state, _context(plain))
        return _with_state(plain, _header_bytes(header) + sealed)

    @staticmethod
    def shredded(plain: StoredEvent, header: SealedHeader) -> StoredEvent:
        """An erased pupil's plain row as the erasure leaves every sealed one: its hashes
        kept, its content random bytes, as it is to anyone once the key is destroyed
        (it reads as an `ErasedEntry`)."""
        return _with_state(plain, _header_bytes(header) + SEALED_PREFIX + os.urandom(12 + 16))

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        """Raises `PupilErased` for an erased pupil's row."""
        if not stored_event.state.startswith(ENVELOPE):
            return super().to_domain_event(stored_event)  # stored before sealing existed
        header_bytes, _, sealed = stored_event.state[len(ENVELOPE):].partition(b"\n")
        plain = self.keys.open(pupil_ref(stored_event.originator_id), sealed,
                               _context(stored_event))
        event = super().to_domain_event(StoredEvent(
            originator_id=stored_event.originator_id,
            originator_version=stored_event.originator_version,
            topic=stored_event.topic, state=plain))
        if not _header_agrees(header_bytes, event):
            raise HeaderMismatch("the hashes stored beside the sealed event are not the "
                                 "event's own: the row's header was altered")
        return event


def _header_json(event_hash: str, previous_hash: str, event_id: str) -> bytes:
    """`_header_bytes`'s JSON, written out: `json.dumps` of three strings is their
    `encode_basestring_ascii`, so both give the same bytes."""
    return (f'{{"event_hash":{encode_basestring_ascii(event_hash)},"previous_hash":'
            f'{encode_basestring_ascii(previous_hash)},"event_id":'
            f'{encode_basestring_ascii(event_id)}}}').encode()


def _header_agrees(header_bytes: bytes, event: object) -> bool:
    """The hashes in the header are the event's own. Most rows' header is byte for byte
    the one this mapper writes for the event, which can only read back as the event's
    hashes: compared as bytes, decoding the JSON only for any other header (verify opens
    every row of the store)."""
    event_hash, previous_hash = getattr(event, "event_hash", ""), getattr(event, "previous_hash", "")
    event_id = getattr(event, "event_id", "")
    if type(event_hash) is str and type(previous_hash) is str and type(event_id) is str \
            and header_bytes == _header_json(event_hash, previous_hash, event_id):
        return True
    header: dict[str, Any] = json.loads(header_bytes)
    return (header.get("event_hash"), header.get("previous_hash")) == (event_hash, previous_hash)


__all__ = ["ENVELOPE", "HeaderMismatch", "PupilErased", "SealedHeader", "SealingMapper",
           "header_of", "is_sealed_row"]
