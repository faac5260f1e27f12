"""What changed between the packet a setting already had and the amendment that replaces
it: entries added, withdrawn (in the earlier packet, not in this one) or changed.

Pure: two packets in, a list of changes out, in the packet's own words (`wording`), so
the page's "What changed since the packet of <date>" says exactly what each packet says.
Compared: the SEN status, the ranked needs, what was still open at the move, the EHC
plan's details and the timeline (every history entry, by its history version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts.packet import TimelineEntry, TransferPacketV1
from services.shared.sen_wording import STATUS_WORDS
from services.transfers import wording
from services.transfers.forms import NEED_WORDS

How = Literal["added", "withdrawn", "changed"]
STATUS, NEEDS, OPEN, PLAN, TIMELINE = ("SEN status", "Current needs", "Still open at the move",
                                       "EHC plan", "Timeline")
PARTS = (STATUS, NEEDS, OPEN, PLAN, TIMELINE)


@dataclass(frozen=True)
class Change:
    how: How
    part: str
    entry: str
    """The entry as it is now (added, changed) or as it was (withdrawn)."""
    before: str | None = None
    """A changed entry as the earlier packet had it."""


Entries = dict[tuple[str, str], str]


def _timeline_line(packet: TransferPacketV1, t: TimelineEntry) -> str:
    line = (f"{wording.day(t.occurred_at.date())}, {wording.setting_name(packet, t.setting_urn)} "
            f"({t.recorded_by_role}): {wording.described(packet, t.description)}")
    return line + (" (recorded by that setting after the pupil had left)"
                   if t.recorded_after_leaving else "")


def _open_keys(packet: TransferPacketV1) -> list[str]:
    """Keys for `wording.open_items`, in its order: concerns, referrals, the EHC request,
    the overdue review."""
    keys = [f"concern {c.event_id}" for c in packet.concerns_open]
    keys += [f"referral {r.event_id}" for r in packet.referrals_pending]
    keys += ["ehc request"] if packet.ehc_request_open else []
    return keys + (["review overdue"] if packet.review_overdue_since else [])


def entries(packet: TransferPacketV1) -> Entries:
    """Each compared entry by (part, key), in the packet's order, as the page words it."""
    found: Entries = {(STATUS, "status"): STATUS_WORDS[packet.sen_status]}
    for need in sorted(packet.current_needs, key=lambda n: n.rank):
        code = need.code.value
        found[(NEEDS, code)] = f"{code}: {NEED_WORDS.get(code, code)}, ranked {need.rank}"
    items = wording.open_items(packet)
    keys = _open_keys(packet)
    if len(keys) != len(items):  # wording's open items and these keys must pair up
        raise ValueError("open items and their keys differ")
    for key, (heading, sentence) in zip(keys, items, strict=True):
        found[(OPEN, key)] = f"{heading}: {sentence}"
    for label, text in wording.plan_lines(packet):
        found[(PLAN, label)] = f"{label}: {text}"
    for t in packet.timeline:
        found[(TIMELINE, str(t.history_version))] = _timeline_line(packet, t)
    return found


def changes_since(earlier: TransferPacketV1, packet: TransferPacketV1) -> list[Change]:
    """The changes from `earlier` to `packet`, part by part: this packet's entries that
    are new or different, in its order, then those it no longer has."""
    before, now = entries(earlier), entries(packet)
    found = []
    for part in PARTS:
        for key, text in now.items():
            if key[0] != part:
                continue
            if key not in before:
                found.append(Change("added", part, text))
            elif before[key] != text:
                found.append(Change("changed", part, text, before[key]))
        found += [Change("withdrawn", part, text) for key, text in before.items()
                  if key[0] == part and key not in now]
    return found
