"""Oversight pages: a trust's SEND lead or an LA's EHC team sees `sendhub oversight`'s
figures per school and in total, with its charts, filtered by dates and school, as a
page or as CSV; and, with a reason, the pupils behind one figure of one school.

Edge adapter over `sendhub.oversight_store` (the CLI's own reads and figures) and the
shared rules: a trust sees its own trust, an LA its own area, anyone else a 403 page
(`scope_of_principal`); the pupils only where `access.may_see_pupils` holds, only after
a reason, and each pupil shown is first written to the access log with that reason
(route `web`). Figures name no pupil and need no reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from sendhub.access_log import AccessRefused, Reader
from sendhub.gateway.context import Gateway, gateway
from sendhub.gateway.problems import Problem, forbidden, not_found
from sendhub.oversight import MEASURES, Figure, Measure, Oversight, SchoolFigures, academic_year, document
from sendhub.oversight_store import NoSchoolsInScope, figures_with_pupils, gather_oversight
from sendhub.oversight_store import schools_in_scope as registry_schools
from sendhub.web.charts import PYPLOT
from sendhub.web.oversight_view import (
    FIGURE_KEYS,
    FilterError,
    Filters,
    OverseenScope,
    cell_text,
    csv_filename,
    csv_text,
    day,
    has_list,
    months_table,
    needs_attention,
    parse_filters,
    scope_of_principal,
    with_own_ids,
)
from sendhub.web.pages import page
from sendhub.web.security import SignedIn, Viewer, checked_form
from services.shared.access import Principal, may_see_pupils
from services.shared.clocks import LocalPolicy
from services.transfers.registry import RegisteredSetting

router = APIRouter(include_in_schema=False)
NOT_YOURS = ("the oversight pages show a trust its own schools and a local authority the "
             "settings in its area; this school is not one of yours")
MAX_REASON = 500
"""As the pupil page's reason: the access log keeps a reason, not a document."""
NOT_A_SCOPE = ("the oversight pages are for a trust's SEND lead and a local authority's "
               "EHC team; your principal oversees no trust or local authority")

Hub = Annotated[Gateway, Depends(gateway)]
From = Annotated[str | None, Query(alias="from")]
To = Annotated[str | None, Query(alias="to")]
School = Annotated[str | None, Query()]


@dataclass(frozen=True)
class Asked:
    """What a page was asked for: the principal's scope, its schools, the filters."""

    scope: OverseenScope
    schools: list[RegisteredSetting]
    label: str
    filters: Filters

    def school(self, urn: str) -> RegisteredSetting | None:
        return next((s for s in self.schools if s.urn == urn), None)


def _today() -> date:
    return datetime.now(UTC).date()


def _asked(hub: Gateway, principal: Principal, start: str | None, end: str | None,
           school: str | None) -> Asked:
    scope = scope_of_principal(principal)
    if scope is None:
        raise forbidden(NOT_A_SCOPE)
    try:
        filters = parse_filters(start, end, school, today=_today())
    except FilterError as refused:
        raise Problem(400, str(refused)) from None
    found, schools = registry_schools(hub.settings.database_conninfo, la=scope.la,
                                      trust=scope.trust)
    asked = Asked(scope, sorted(schools, key=lambda s: (s.name, s.urn)), found.label, filters)
    if filters.school is not None and asked.school(filters.school) is None:
        raise forbidden(NOT_YOURS)
    return asked


async def asked(hub: Gateway, principal: Principal, start: str | None, end: str | None,
                school: str | None) -> Asked:
    return await anyio.to_thread.run_sync(_asked, hub, principal, start, end, school)


def _policy(hub: Gateway) -> LocalPolicy:
    """Local policy as the CLI takes it: the hub's settings (SENDHUB_POLICY_*)."""
    return LocalPolicy(concern_open_weeks=hub.settings.policy_concern_open_weeks)


def _figures(hub: Gateway, principal: Principal, asked: Asked) -> Oversight:
    """The figures alone (no pupil), of the scope or of the one school filtered."""
    try:
        return gather_oversight(
            hub.settings.database_conninfo, principal, keys=hub.store.keys, la=asked.scope.la,
            trust=asked.scope.trust, window=asked.filters.window,
            today=_today(), policy=_policy(hub), reader=None,
            schools=[asked.filters.school] if asked.filters.school else None)
    except NoSchoolsInScope as missing:
        raise not_found(str(missing)) from None


def _charts_of(result: Oversight) -> tuple[Markup, Markup]:
    from sendhub.oversight_page import compliance_by_month_svg, per_school_svg

    doc = document(result)
    with PYPLOT:
        months = compliance_by_month_svg(doc["months"])
        schools = per_school_svg(doc["schools"])
    keep = ("chart-months-title", "chart-months-desc", "chart-schools-title",
            "chart-schools-desc")
    return with_own_ids(months, "months", keep), with_own_ids(schools, "schools", keep)


@router.get("/oversight", response_class=HTMLResponse)
async def oversight_page(request: Request, seen_by: SignedIn, hub: Hub, start: From = None,
                         end: To = None, school: School = None) -> Response:
    principal = seen_by.principal
    chosen = await asked(hub, principal, start, end, school)
    result = await anyio.to_thread.run_sync(_figures, hub, principal, chosen)
    months_svg, schools_svg = await anyio.to_thread.run_sync(_charts_of, result)

    def opens(row: SchoolFigures, figure: Figure) -> bool:
        """A school's figure links to its pupils where the principal may see them."""
        return bool(row.urn) and has_list(figure) and may_see_pupils(principal, str(row.urn))

    return page(request, "oversight.html.j2", seen_by, title=f"Oversight: {chosen.label}",
                asked=chosen, result=result, measures=MEASURES, day=day, cell=cell_text,
                attention=needs_attention, opens=opens, chart_months=months_svg,
                chart_schools=schools_svg, months=months_table(document(result)["months"]),
                default_window=academic_year(_today()),
                sees_pupils=any(may_see_pupils(principal, s.urn) for s in chosen.schools))


@router.get("/oversight.csv")
async def oversight_csv(seen_by: SignedIn, hub: Hub, start: From = None, end: To = None,
                        school: School = None) -> Response:
    chosen = await asked(hub, seen_by.principal, start, end, school)
    result = await anyio.to_thread.run_sync(_figures, hub, seen_by.principal, chosen)
    name = csv_filename(result, chosen.filters.school)
    return Response(csv_text(result), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _behind(seen_by: Viewer, chosen: Asked, urn: str, figure: str | None
            ) -> tuple[RegisteredSetting, Measure]:
    """The school and figure whose pupils are asked for, once the principal may see them."""
    setting = chosen.school(urn)
    if setting is None or not may_see_pupils(seen_by.principal, urn):
        raise forbidden(NOT_YOURS)
    if figure not in FIGURE_KEYS:
        raise not_found("no such figure: open a figure from the oversight page")
    return setting, next(m for m in MEASURES if m.key == figure)


@router.get("/oversight/schools/{urn}", response_class=HTMLResponse)
async def reason_form(request: Request, urn: str, seen_by: SignedIn, hub: Hub,
                      figure: Annotated[str | None, Query()] = None, start: From = None,
                      end: To = None, school: School = None) -> Response:
    chosen = await asked(hub, seen_by.principal, start, end, school)
    setting, measure = _behind(seen_by, chosen, urn, figure)
    return _reason_page(request, seen_by, chosen, setting, measure)


def _reason_page(request: Request, seen_by: Viewer, chosen: Asked, setting: RegisteredSetting,
                 measure: Measure, error: str | None = None, reason: str = "") -> Response:
    return page(request, "oversight_reason.html.j2", seen_by,
                title=f"Why you need the pupils behind a figure: {setting.name}",
                status=400 if error else 200, asked=chosen, setting=setting, measure=measure,
                error=error, reason=reason, day=day,
                action=f"/oversight/schools/{setting.urn}?"
                + chosen.filters.query(figure=measure.key))


def _pupils_behind(hub: Gateway, principal: Principal, chosen: Asked, setting: RegisteredSetting,
                   measure: Measure, reader: Reader) -> tuple[Oversight, SchoolFigures]:
    """The school's figures with its pupils; those of the one figure asked for are
    written to the access log before the page shows them."""
    try:
        result = figures_with_pupils(
            hub.settings.database_conninfo, principal, keys=hub.store.keys, la=chosen.scope.la,
            trust=chosen.scope.trust, window=chosen.filters.window,
            today=_today(), policy=_policy(hub), schools=[setting.urn])
    except NoSchoolsInScope as missing:
        raise not_found(str(missing)) from None
    [row] = result.schools
    shown = sorted({p.upn for p in row.figure(measure.key).pupils or ()})
    w = chosen.filters.window
    if shown:
        hub.access_log.record_pupils(
            reader, "oversight", shown, detail=f"{result.scope.slug} {setting.urn} "
            f"{measure.key} {w.start.isoformat()}..{w.end.isoformat()}")
    return result, row


@router.post("/oversight/schools/{urn}", response_class=HTMLResponse)
async def pupils_page(request: Request, urn: str, seen_by: SignedIn, hub: Hub,
                      figure: Annotated[str | None, Query()] = None, start: From = None,
                      end: To = None, school: School = None) -> Response:
    form = await checked_form(request, seen_by)
    chosen = await asked(hub, seen_by.principal, start, end, school)
    setting, measure = _behind(seen_by, chosen, urn, figure)
    given = form.get("reason")
    reason = given.strip() if isinstance(given, str) else ""
    if len(reason) > MAX_REASON:
        return _reason_page(request, seen_by, chosen, setting, measure, reason=reason[:MAX_REASON],
                            error=f"Give the reason in at most {MAX_REASON} characters.")
    try:
        reader = Reader.of(seen_by.principal.name, reason, route="web")
    except AccessRefused:
        return _reason_page(request, seen_by, chosen, setting, measure, error=(
            "Give the reason you need to see these pupils: it is recorded in the access log "
            "with each pupil shown."))
    result, row = await anyio.to_thread.run_sync(
        _pupils_behind, hub, seen_by.principal, chosen, setting, measure, reader)
    shown = row.figure(measure.key)
    return page(request, "oversight_pupils.html.j2", seen_by,
                title=f"{measure.title}: {setting.name}", asked=chosen, setting=setting,
                measure=measure, figure=shown, cell=cell_text, reason=reader.reason,
                result=result, day=day, pupils=shown.pupils or (),
                back="/oversight?" + chosen.filters.query())
