"""Hostile messages, each with its canary behind it on the same key (so on the same
partition): the issue's cases, mutated valid events, random bytes and hostile receipts.

Property-based cases (hypothesis) come from `faults.generated`. Everything here is
seeded: the same seed builds the same bytes, except receipts' packet ids, which are
derived from the steady stream's (equally seeded) moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from contracts.inbound import INBOUND_EVENT
from faults.model import Canary, Group, Hostile, Message, Role, ValidEvent
from faults.workload import Seeded, canary_events, encode, event_for, move_payload

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
BIG_CONCERNS, BIG_CONCERN_CHARS = 30, 10_000
BIG_CHAR = "\U0001d538"  # 4 bytes in UTF-8, 12 in escaped JSON: 10,000 of them make 120 KB


def contract_accepts(raw: bytes) -> bool:
    """Today's inbound contract as an oracle: would ingest accept these bytes?"""
    try:
        text = raw.decode("utf-8")
        json.loads(text)
        INBOUND_EVENT.validate_json(text)
    except Exception:
        return False
    return True


def with_canary(ids: Seeded, messages: list[Message], hostile: list[Hostile],
                valid: list[ValidEvent] | None = None, prefix: list[Message] | None = None) -> Group:
    """One group: valid messages it needs (`prefix`), the hostile ones, then the canary,
    a fresh pupil's concern and move, on the last hostile message's key."""
    key = (messages or prefix or [])[-1].key
    canary_messages, canary_valid, upn, move_id = canary_events(ids, key)
    name = hostile[0].name if hostile else "canary"
    roles: list[tuple[Message, Role]] = [(m, "valid") for m in prefix or []]
    roles += [(m, "hostile") for m in messages]
    roles += [(m, "canary") for m in canary_messages]
    return Group(at=0.0, messages=roles,
                 valid=[*(valid or []), *canary_valid], hostile=hostile,
                 canary=Canary(name, upn, move_event_id=move_id))


def single(ids: Seeded, name: str, family: str, value: bytes | None,
           headers: tuple[tuple[str, bytes], ...] = (), marker: bytes | None = None,
           key: bytes | None = None) -> Group:
    message = Message("events", key or ids.upn().encode(), value, headers)
    return with_canary(ids, [message], [Hostile(name, family, message, marker)])


def hostile_event(ids: Seeded, name: str, event: dict[str, Any], raw: bytes | None = None,
                  key: str | None = None) -> Group:
    """A JSON event that may pass ingest today; its event_id marks later stages' dead letters."""
    value = raw if raw is not None else encode(event)
    return single(ids, name, "issue", value, marker=event["event_id"].encode(),
                  key=(key or event["pupil"]["upn"]).encode())


def decoding_poisons(ids: Seeded) -> list[Group]:
    """Finding 1: bytes that fail before any handler code runs."""
    upn = ids.upn()
    event = encode(event_for(ids, "concern_raised", upn, day=0))
    zeros = event.replace(b'"schema_version": 1', b'"schema_version": 1' + b"0" * 5000, 1)
    return [
        single(ids, "brackets [*100000 ]*100000", "issue", b"[" * 100_000 + b"]" * 100_000),
        single(ids, "schema_version 1 and 5000 zeros", "issue", zeros, key=upn.encode()),
        single(ids, "<CTF/> with a JSON content type", "issue", b"<CTF/>",
               headers=(("content-type", b"application/json"),)),
    ]


def identifier_cases(ids: Seeded) -> list[Group]:
    """Findings 2 and 3: content today's contract lets through."""
    def concern(**changes: Any) -> dict[str, Any]:
        return event_for(ids, "concern_raised", ids.upn(), day=0, **changes)

    def move(urn: str) -> dict[str, Any]:
        return event_for(ids, "pupil_moved", ids.upn(), day=7, payload=move_payload(urn, 9))

    nul = concern()
    nul["payload"]["summary"] = "Speech \u0000 delay"
    surrogate = concern()
    surrogate["payload"]["summary"] = "placeholder"
    surrogate_raw = encode(surrogate).replace(b"placeholder", b"\\ud800 alone")
    ascii_upn = ids.upn()  # its last character must stay ASCII ([0-9A-Z]) to pass today
    arabic_upn = ascii_upn[0] + ascii_upn[1:12].translate(ARABIC_INDIC) + ascii_upn[12]
    arabic = event_for(ids, "concern_raised", arabic_upn, day=0)
    return [
        hostile_event(ids, "NUL in a concern's summary", nul),
        hostile_event(ids, "lone surrogate in a summary", surrogate, raw=surrogate_raw),
        hostile_event(ids, "move to an Arabic-Indic URN", move("100002".translate(ARABIC_INDIC))),
        hostile_event(ids, "move to a full-width URN", move("100003".translate(FULL_WIDTH))),
        hostile_event(ids, "move to a URN with a trailing newline", move("100002\n")),
        hostile_event(ids, "full-width source URN",
                      concern(source={"urn": "100001".translate(FULL_WIDTH), "system": "SIMS"})),
        hostile_event(ids, "source URN with a trailing newline",
                      concern(source={"urn": "100001\n", "system": "SIMS"})),
        hostile_event(ids, "UPN in Arabic-Indic digits", arabic, key=arabic_upn),
    ]


def oversize_packet(ids: Seeded) -> Group:
    """Finding 4: 30 valid concerns of 120 KB each, then a move: a packet over 1 MB."""
    upn = ids.upn()
    events = [event_for(ids, "concern_raised", upn, day=n) for n in range(BIG_CONCERNS)]
    for event in events:
        event["payload"]["summary"] = BIG_CHAR * BIG_CONCERN_CHARS
    move = event_for(ids, "pupil_moved", upn, day=40, payload=move_payload("100004", 42))
    prefix = [Message("events", upn.encode(), encode(e)) for e in events]
    moved = Message("events", upn.encode(), encode(move))
    valid = [ValidEvent(upn, e["event_id"]) for e in events]
    valid.append(ValidEvent(upn, move["event_id"], "urn-100004"))
    hostile = Hostile("packet over 1 MB (30 x 120 KB concerns)", "issue", moved,
                      marker=move["event_id"].encode(), expect="packet",
                      move_event_id=move["event_id"])
    return with_canary(ids, [], [hostile], valid, prefix=[*prefix, moved])


def event_id_conflict(ids: Seeded) -> Group:
    """Finding 7: the same event_id again with different content (a correction)."""
    upn = ids.upn()
    first = event_for(ids, "concern_raised", upn, day=0)
    second = json.loads(json.dumps(first))
    marker = f"correction {ids.uuid()}"
    second["payload"]["summary"] = marker
    original = Message("events", upn.encode(), encode(first))
    again = Message("events", upn.encode(), encode(second))
    hostile = Hostile("event_id re-used with other content", "issue", again,
                      marker=marker.encode())
    return with_canary(ids, [again], [hostile], [ValidEvent(upn, first["event_id"])],
                       prefix=[original])


def screening_cases(ids: Seeded) -> list[Group]:
    """What ingest's byte-level screening must refuse, and two more parser traps."""
    event = event_for(ids, "concern_raised", ids.upn(), day=0)
    event["payload"]["summary"] = "x" * 600_000
    nan = encode(event_for(ids, "concern_raised", ids.upn(), day=0)).replace(
        b'"schema_version": 1', b'"schema_version": NaN', 1)
    return [
        single(ids, "empty value", "screening", b""),
        single(ids, "no value (tombstone)", "screening", None),
        single(ids, "not UTF-8", "screening", b'{"event_id": "\xff\xfe\xfd"}'),
        single(ids, "over the size limit (600 KB)", "screening", encode(event)),
        single(ids, "JSON array, not an object", "screening", b"[]"),
        single(ids, "objects nested 50000 deep", "screening",
               b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        single(ids, "NaN as schema_version", "screening", nan),
    ]


def issue_cases(ids: Seeded) -> list[Group]:
    return [*decoding_poisons(ids), *identifier_cases(ids), oversize_packet(ids),
            event_id_conflict(ids), *screening_cases(ids)]


def flipped(ids: Seeded, event: bytes) -> bytes:
    """1 to 3 bytes XORed with random values, until today's contract refuses it."""
    rng = ids.rng
    for _ in range(50):
        data = bytearray(event)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
        if not contract_accepts(bytes(data)):
            return bytes(data)
    return event[: len(event) // 2]


def mutated_cases(ids: Seeded, flips: int, truncations: int, randoms: int) -> list[Group]:
    """Valid events with bytes flipped or cut short, and random bytes."""
    kinds = ("concern_raised", "assessment_completed", "plan_reviewed", "pupil_moved")
    groups = []
    for n in range(flips + truncations):
        kind = ids.rng.choice(kinds)
        upn = ids.upn()
        extra = {"payload": move_payload("100005", 9)} if kind == "pupil_moved" else {}
        raw = encode(event_for(ids, kind, upn, day=0, **extra))
        if n < flips:
            groups.append(single(ids, f"{kind} with bytes flipped #{n + 1}", "mutated",
                                 flipped(ids, raw), key=upn.encode()))
        else:
            cut = raw[: ids.rng.randrange(1, len(raw) - 1)]
            groups.append(single(ids, f"{kind} cut at byte {len(cut)}", "mutated", cut,
                                 key=upn.encode()))
    for n in range(randoms):
        size = ids.rng.choice((1, 16, 200, 2_000, 20_000))
        groups.append(single(ids, f"random bytes #{n + 1} ({size} B)", "random",
                             ids.rng.randbytes(size)))
    return groups


def receipt(packet_id: str, receiver: str, second: int, **changes: Any) -> dict[str, Any]:
    return {"packet_id": packet_id, "receiver": receiver, "status": "received",
            "at": f"2025-12-01T10:00:{second:02d}+00:00", **changes}


Receipt = bytes | Callable[[str, str], bytes]  # bytes, or made from (packet_id, receiver)


def receipt_group(ids: Seeded, name: str, family: str, receipt_value: Receipt,
                  packet: tuple[str, str], headers: tuple[tuple[str, bytes], ...] = ()) -> Group:
    """A hostile receipt, then a valid receipt for a packet that exists, on the same key."""
    packet_id, receiver = packet
    value = receipt_value if isinstance(receipt_value, bytes) else receipt_value(*packet)
    key = ids.uuid().encode()
    hostile = Message("receipts", key, value, headers)
    good = Message("receipts", key, json.dumps(receipt(packet_id, receiver, 1)).encode())
    return Group(at=0.0, messages=[(hostile, "hostile"), (good, "canary")],
                 hostile=[Hostile(name, family, hostile)],
                 canary=Canary(name, upn="", packet_id=packet_id), needs_packet=packet_id)


def receipt_cases(ids: Seeded, packets: list[tuple[str, str]],
                  generated: list[bytes]) -> list[Group]:
    """Finding 1 on the receipts topic, refusals the hub must keep, and generated ones;
    `packets` are (packet_id, receiver) of the steady stream's early moves."""
    big = json.dumps(receipt(ids.uuid(), "urn-100002", 0)).encode()
    big = big[:-1] + b', "n": 1' + b"0" * 5000 + b"}"
    def wrong(packet_id: str, receiver: str) -> bytes:
        return json.dumps(receipt(packet_id, "urn-999999", 2)).encode()

    unknown = json.dumps(receipt(ids.uuid(), "urn-100002", 3)).encode()
    json_type = (("content-type", b"application/json"),)
    values: list[tuple[str, Receipt, tuple[tuple[str, bytes], ...]]] = [
        ("receipt: brackets [*100000 ]*100000", b"[" * 100_000 + b"]" * 100_000, ()),
        ("receipt: a number of 5001 digits", big, ()),
        ("receipt: <CTF/> with a JSON content type", b"<CTF/>", json_type),
        ("receipt for an unknown packet", unknown, ()),
        ("receipt from the wrong receiver", wrong, ()),
        *((f"generated receipt #{n + 1}", raw, ()) for n, raw in enumerate(generated))]
    return [receipt_group(ids, name, "receipts", value, packets[n % len(packets)], headers)
            for n, (name, value, headers) in enumerate(values)]
