"""The console's settings registry import: a CSV uploaded (a multipart form) is read and
imported as `sendhub settings import FILE` does it, and the page reports it as that
command does, line by line: the lines imported, and each line refused with why."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from sendhub.web.admin import Hub, Operator, recorded, shown_lines
from sendhub.web.pages import page
from sendhub.web.security import checked_form
from services.shared.pupil_keys import pupil_keys_for
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from services.transfers.registry import (
    RegistryFileError,
    RegistryLine,
    RowProblem,
    imported_message,
    read_registry_csv,
    skipped_message,
)

router = APIRouter(include_in_schema=False)


def upload_page(request: Request, seen_by: Operator, error: str | None = None) -> Response:
    return page(request, "admin/registry.html.j2", seen_by, title="Import the settings registry",
                error=error, status=422 if error else 200)


def import_lines(settings: HubSettings, lines: list[RegistryLine]) -> int:
    """The good lines into the registry (new settings added, known ones updated)."""
    store = TransfersApplication.on_postgres(settings.database_conninfo,
                                             keys=pupil_keys_for(settings))
    try:
        return store.import_settings([line.setting for line in lines if line.setting])
    finally:
        store.close()


@router.get("/admin/registry")
async def registry(request: Request, seen_by: Operator) -> Response:
    return upload_page(request, seen_by)


@router.post("/admin/registry")
async def import_registry(request: Request, seen_by: Operator, hub: Hub) -> Response:
    form = await checked_form(request, seen_by)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return upload_page(request, seen_by, "choose the registry's CSV file to import")
    source = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]  # a name, not a path
    try:
        lines = read_registry_csv((await upload.read()).decode("utf-8-sig"))
    except UnicodeDecodeError:
        return upload_page(request, seen_by, f"{source} is not UTF-8 text: save the CSV as "
                           "UTF-8 and upload it again")
    except RegistryFileError as exc:
        return upload_page(request, seen_by, f"{source}: {exc}")
    count = await anyio.to_thread.run_sync(import_lines, hub.settings, lines)
    refused = [RowProblem(line.line, line.problem) for line in lines if line.problem]
    recorded("registry_imported", seen_by, "-", imported=count, skipped=len(refused))
    shown, left_out = shown_lines(lines)
    return page(request, "admin/registry_report.html.j2", seen_by,
                title="Settings registry imported",
                summary=imported_message(source, count, len(refused)),
                skipped=[skipped_message(source, problem) for problem in refused],
                lines=shown, left_out=left_out, source=source)
