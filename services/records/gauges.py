"""Records' gauges: what its two outboxes still have to publish, and the anchor interval.

Both outboxes read the notification log: the relay to `sen.pupil-history.v1` and the
audit anchors. Each backlog is the newest notification id minus the last one done; the
ids can have gaps (a rolled-back insert), so this is an upper bound, exact in practice.
Hub-wide: every records instance reports the same numbers. The time of the last anchor
is set by the anchoring itself (`entrypoint.AuditAnchoring`).
"""

from __future__ import annotations

from services.records.application import RecordsApplication
from services.shared.metrics import ANCHOR_INTERVAL, OUTBOX_BACKLOG

SERVICE = "records"


class RecordsGauges:
    """Sets `sendhub_outbox_backlog{outbox="pupil_history"|"audit_anchors"}`."""

    def __init__(self, app: RecordsApplication, anchor_interval_seconds: float) -> None:
        self.app = app
        ANCHOR_INTERVAL.set(anchor_interval_seconds)

    def __call__(self) -> None:
        newest = self.app.recorder.max_notification_id() or 0
        OUTBOX_BACKLOG.labels(SERVICE, "pupil_history").set(
            max(0, newest - self.app.relayed_up_to()))
        OUTBOX_BACKLOG.labels(SERVICE, "audit_anchors").set(
            max(0, newest - self.app.anchored_up_to()))
