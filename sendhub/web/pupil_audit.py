"""What the auditor's pupil page shows, gathered in one read: the history at the chosen
point, the timeline and statutory clocks as the report draws them, the hash-chain check
against the anchors in Kafka, and the pupil's access log.

The read is in the access log before anything is gathered for the page, and the access
log shown is read after it, so it lists this read too. The chain is checked as `sendhub
verify UPN --against-anchors` does, for this pupil only: the stored rows recomputed, then
compared with every chain head the anchors hold for them (read as the gateway's own
Kafka principal, which may read the anchors topic and nothing else).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from kafka.errors import KafkaError

from contracts.inbound import where_recorded
from sendhub.access_log import Access, Reader
from sendhub.gateway.context import Gateway
from sendhub.report import AuditFigures, audit_figures, in_order_happened, timeline_svg
from sendhub.web.charts import PYPLOT
from sendhub.web.pupil_forms import HistoryAsk
from services.records.domain import GENESIS_HASH
from services.shared.clocks import LocalPolicy, SchoolDays
from services.shared.sen_record import HistoryEntry, SENRecord, as_corrected, corrections_of, record_at
from services.shared.sen_wording import STATUS_WORDS, describe_event, mark_words

log = logging.getLogger("sendhub.web.pupils")


@dataclass(frozen=True)
class ChainStatus:
    """The pupil's hash chain as stored, and against the anchors."""

    events: int
    head: str
    broken: str | None = None
    """The first break in the stored chain itself."""
    anchor_messages: int = 0
    anchored: dict[int, tuple[str, str]] | None = None
    """{version: (head, when anchored)} for this pupil."""
    mismatch: str | None = None
    """Where the store differs from what the anchors hold."""
    anchors_unread: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None and self.mismatch is None

    @property
    def anchored_to(self) -> tuple[int, str] | None:
        """(version, when) of the newest head the anchors hold for this pupil."""
        if not self.anchored:
            return None
        version = max(self.anchored)
        return version, self.anchored[version][1]


@dataclass(frozen=True)
class Row:
    """One entry of the history as the page lists it."""

    entry: HistoryEntry
    what: str
    setting: str
    late: bool
    """Recorded after an entry about something that happened later."""


@dataclass(frozen=True)
class PupilAudit:
    ask: HistoryAsk
    point: str
    """The access log's words for the point (`now`, `as known at ...`, `as of ...`)."""
    rows: list[Row]
    chain: ChainStatus
    accesses: list[Access]
    record: SENRecord | None = None
    status: str = ""
    figures: AuditFigures | None = None
    chart: str = ""
    measured_to: date | None = None

    @property
    def entries(self) -> list[HistoryEntry]:
        return [r.entry for r in self.rows]


def rows_of(entries: list[HistoryEntry]) -> list[Row]:
    """In recording order; each marked when it came in after a later event."""
    rows, latest = [], None
    marks = corrections_of(entries)
    for h in sorted(entries, key=lambda e: e.version):
        late = latest is not None and h.event.occurred_at < latest
        latest = max(latest or h.event.occurred_at, h.event.occurred_at)
        mark = marks.get(h.event.event_id)
        what = describe_event(h) + (f" [{mark_words(mark)}]" if mark else "")
        rows.append(Row(h, what, where_recorded(h.event), late))
    return rows


def chain_status(hub: Gateway, upn: str) -> ChainStatus:
    """`sendhub verify UPN --against-anchors`, for the page."""
    from sendhub.verifying import anchored_heads
    from services.records.domain import pupil_id_for

    records = hub.records()
    events, broken = records.verify_pupil(upn)
    problem = broken.problem if broken else None
    stored = records.history_events(upn) if events and broken is None else []
    head = stored[-1].event_hash if stored else GENESIS_HASH
    try:
        messages, heads, _ = anchored_heads(hub.settings, service="gateway")
    except (KafkaError, OSError, ValueError) as exc:
        log.warning("web.pupils.anchors_unread", extra={"error": str(exc)})
        return ChainStatus(events, head, problem, anchors_unread=str(exc) or type(exc).__name__)
    mine = heads.get(pupil_id_for(upn), {})
    _, mismatch = records.verify_pupil_against_anchors(upn, mine) if mine else (0, None)
    return ChainStatus(events, head, problem, messages, mine,
                       mismatch.problem if mismatch else None)


def policy_of(hub: Gateway) -> LocalPolicy:
    return LocalPolicy(concern_open_weeks=hub.settings.policy_concern_open_weeks,
                       plan_gap_weeks=hub.settings.policy_plan_gap_weeks)


def read_pupil(hub: Gateway, reader: Reader, ask: HistoryAsk, now: datetime) -> PupilAudit:
    """Everything the page shows, once the read is in the access log (blocking)."""
    from sendhub.replay import history_at

    entries, point = history_at(hub.records(), ask.upn, ask.point.known_at, ask.point.as_of)
    hub.access_log.record(reader, "history", upn=ask.upn, detail=point, route="web")
    chain = chain_status(hub, ask.upn)
    accesses = list(reversed(hub.access_log.entries(ask.upn)))
    return audit_of(ask, point, entries, chain, accesses, now=now,
                    calendar=hub.transfers.calendar, policy=policy_of(hub))


def audit_of(ask: HistoryAsk, point: str, entries: list[HistoryEntry], chain: ChainStatus,
             accesses: list[Access], *, now: datetime, calendar: SchoolDays,
             policy: LocalPolicy) -> PupilAudit:
    """The page's figures from what was read: the clocks and the chart are measured to
    the point's own day."""
    if not entries:
        return PupilAudit(ask, point, [], chain, accesses)
    today = ask.point.measured_to(now)
    happened = in_order_happened(as_corrected(entries))  # the figures: withdrawn left out
    record = record_at(happened)
    figures = audit_figures(happened, today=today, calendar=calendar, policy=policy)
    chart = ""
    if happened:  # nothing to draw when every entry was withdrawn
        with PYPLOT:
            chart = timeline_svg(happened, today)
    return PupilAudit(ask, point, rows_of(entries), chain, accesses, record,
                      STATUS_WORDS[record.status], figures, chart, today)
