"""`sendhub subject-access`: answer a pupil's or parent's request to see what the hub
holds (UK GDPR Article 15) in one step, as JSON and as one readable page.

It reads special category data like any other reading command: an authenticated
principal allowed to read whole histories (an auditor, such as the trust's DPO), and a
reason, recorded in the access log before anything about the pupil is read.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from sendhub.commands.common import access_log, console, errors, fail, hub_settings, reader_for
from services.shared.access import may_read_history

JSON_NAME = "subject-access.json"
HTML_NAME = "subject-access.html"


def _writable_folder(folder: Path) -> Path:
    """The output folder, made if missing, or a clear refusal (exit 2) before the read."""
    if folder.exists() and not folder.is_dir():
        raise fail(f"{folder} is not a folder. Give -o a folder you can write to.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"Cannot create the folder {folder}: {exc.strerror}. Give -o a folder "
                   "you can write to.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise fail(f"Cannot write to the folder {folder} (permission denied). Give -o a "
                   "folder you can write to.")
    return folder


def _write_private(path: Path, text: str) -> None:
    """Special category data: readable by the owner only (mode 0600) from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    path.chmod(0o600)


def subject_access(
    ctx: typer.Context,
    upn: str,
    output: Annotated[Path, typer.Option(
        "-o", "--output", help=f"folder to write {JSON_NAME} and {HTML_NAME} into")],
    reason: Annotated[str, typer.Option(
        "--reason", help="why the record is being read; recorded in the access log")] = (
        "subject access request (UK GDPR Article 15)"),
) -> None:
    """Everything the hub holds about a pupil (UK GDPR Article 15), as JSON and HTML."""
    from sendhub.erasure import pseudonym_of
    from sendhub.subject_access import ACTION, HubHoldings, document, gather, render_page

    settings = hub_settings(ctx)
    who = reader_for(settings, reason, may_read_history, "pupils' whole SEN records (auditors only)")
    folder = _writable_folder(output)
    holdings = HubHoldings(settings)
    # Written before anything about the pupil is read, so the answer lists this read too;
    # under the pseudonym once the pupil is erased, so no plain UPN comes back to the
    # hub's tables (whether a key was destroyed is not the pupil's record).
    logged_as = pseudonym_of(upn) if holdings.erasure(upn) else upn
    access_log(settings).record(who, ACTION, upn=logged_as,
                                detail=f"written to {folder.resolve()}")
    answer = gather(holdings, upn, who, datetime.now(UTC))
    if not answer.holds_anything:
        errors.print(f"[red]The hub holds no SEN history and no packets for UPN {upn}: "
                     "nothing to write. (This look-up is recorded in the access log.)[/red]")
        raise typer.Exit(1)
    _write_private(folder / JSON_NAME, json.dumps(document(answer), indent=2) + "\n")
    _write_private(folder / HTML_NAME, render_page(answer))
    console.print(f"Wrote what the hub holds about {upn} to {folder / JSON_NAME} and "
                  f"{folder / HTML_NAME}: {len(answer.history)} history entries, "
                  f"{len(answer.packets)} packet(s), {len(answer.access)} access-log entries"
                  + (", and the erasure" if answer.erasure else "") + ".")
    if answer.dead_letters_unread:
        errors.print(f"[yellow]The refused messages (sen.rejected.v1) could not be read: "
                     f"{answer.dead_letters_unread}. The answer says so.[/yellow]")
