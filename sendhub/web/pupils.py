"""The auditor's pupil pages: a pupil's SEN history at a chosen point in time, with the
timeline, the statutory clocks, the hash-chain check and who has read the record.

Auditors only (`may_read_history`, the rule the API and the CLI use); anyone else gets
a 403 page that names no pupil. Nothing about a pupil is read until the form, with its
reason, is valid; then the read is in the access log (route `web`) before the page is
made, as the API's `GET /v1/pupils/{upn}/history` does, and each re-submit for another
point is a read of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from sendhub.access_log import Reader
from sendhub.gateway.problems import forbidden
from sendhub.gateway.reading import Hub, history_reason
from sendhub.report import CLOCK_STATUS_WORDS
from sendhub.web.pages import page
from sendhub.web.pupil_audit import read_pupil
from sendhub.web.pupil_forms import FIELDS, FormProblems, HistoryAsk, form_values, read_ask
from sendhub.web.security import SignedIn, Viewer, checked_form
from services.shared.access import may_read_history

router = APIRouter(include_in_schema=False)
ONLY_AUDITORS = "only auditors read a pupil's whole history"
ERROR_TARGETS = {"upn": "upn", "reason": "reason", "point": "point-now",
                 "known_date": "known_date", "known_time": "known_time", "as_of": "as_of"}
"""The input each problem in the error summary takes the reader to."""


def auditor_only(seen_by: Viewer) -> None:
    if not may_read_history(seen_by.principal):
        raise forbidden(ONLY_AUDITORS)


def utc(moment: datetime) -> str:
    """An instant as the page writes it: in UTC, to the second."""
    return f"{moment.astimezone(UTC):%-d %b %Y %H:%M:%S}"


def as_said(moment: datetime) -> str:
    """When something happened, in the offset the setting gave."""
    offset, z = moment.utcoffset() or timedelta(0), f"{moment:%z}"
    zone = f"UTC{z[:3]}:{z[3:5]}" if offset else "UTC"
    return f"{moment:%-d %b %Y %H:%M} {zone}"


def form_page(request: Request, seen_by: Viewer, values: dict[str, str],
              problems: dict[str, str] | None = None) -> HTMLResponse:
    return page(request, "pupils.html.j2", seen_by,
                title=("Error: " if problems else "") + "Pupil history", status=400
                if problems else 200, values=values, problems=problems or {},
                targets=ERROR_TARGETS)


@router.get("/pupils")
async def pupils_form(request: Request, seen_by: SignedIn) -> HTMLResponse:
    """The form: whose history, why, and at which point. Shows no pupil."""
    auditor_only(seen_by)
    return form_page(request, seen_by, dict.fromkeys(FIELDS, "") | {"point": "now"})


@router.post("/pupils/view")
async def pupil_view(request: Request, seen_by: SignedIn, hub: Hub) -> HTMLResponse:
    form = await checked_form(request, seen_by)
    auditor_only(seen_by)
    values = form_values(form)
    now = datetime.now(UTC)
    try:
        ask = read_ask(values, now)
    except FormProblems as wrong:
        return form_page(request, seen_by, values, wrong.problems)
    reader = Reader(seen_by.principal.name, history_reason(seen_by.principal, ask.reason),
                    route="web")
    audit = await anyio.to_thread.run_sync(read_pupil, hub, reader, ask, now)
    shown: dict[str, Any] = {"audit": audit, "ask": ask, "values": ask.values(), "problems": {},
                             "targets": ERROR_TARGETS, "utc": utc, "as_said": as_said,
                             "read_at": now, "anchor_seconds": hub.settings.anchor_interval_seconds}
    if not audit.rows:
        return page(request, "pupil_none.html.j2", seen_by, title="No SEN history for this UPN",
                    status=404, **shown)
    return page(request, "pupil_history.html.j2", seen_by, title=_title(ask, audit.rows[-1]
                .entry.event.pupil), clock_status=CLOCK_STATUS_WORDS, **shown)


def _title(ask: HistoryAsk, pupil: Any) -> str:
    return f"SEN history of {pupil.given_name} {pupil.family_name} ({ask.upn})"
