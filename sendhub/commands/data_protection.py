"""Data protection commands for the operator: `sendhub erase`, `sendhub retention run`."""

from __future__ import annotations

from typing import Annotated

import typer

from sendhub.commands.common import console, fail, hub_settings


def erase(
    ctx: typer.Context,
    upn: Annotated[str, typer.Argument(help="the pupil whose data the hub must erase")],
    reason: Annotated[str, typer.Option(
        "--reason", help="why (recorded with the erasure), e.g. 'ICO decision 2026-123'")],
    authorised_by: Annotated[str, typer.Option(
        "--authorised-by", help="who authorised it (recorded), e.g. 'J. Patel, DPO'")],
) -> None:
    """Erase a pupil: destroy their data key, so their history and the hub's copies of
    their packets can never be read again; the hash chain still verifies."""
    from rich.table import Table

    from sendhub.erasure import NothingToErase, erase_pupils

    settings = hub_settings(ctx)
    if not reason.strip() or not authorised_by.strip():
        raise fail("An erasure needs --reason and --authorised-by, both recorded with it.")
    try:
        with console.status("erasing") as status:
            (report,) = erase_pupils(settings, [upn], reason=reason, authorised_by=authorised_by,
                                     on_step=lambda s: status.update(s))
    except NothingToErase as exc:
        raise fail(f"{exc}.", 1) from None
    when = report.erasure.describe()
    console.print(f"UPN {upn}: {when}" + ("" if report.first_time
                                           else " (already; the rest was done again)"))
    console.print(f"Its data key is destroyed: the history and the hub's copies of its packets "
                  f"can no longer be read. In the hub's tables it is now {report.pseudonym} "
                  f"({report.rows_pseudonymised} row(s) changed).")
    topics = report.topics
    console.print(f"Kafka: {topics.total_removed} message(s) about the pupil removed from "
                  f"{len(topics.removed)} topic(s), {sum(topics.copied.values())} other "
                  f"message(s) copied forward, {topics.scanned} scanned.")
    if report.receivers:
        table = Table(title="Receivers who hold their own copy (tell them of the erasure)")
        for column in ("receiver", "packet", "built", "state"):
            table.add_column(column)
        for r in report.receivers:
            table.add_row(r.receiver, r.kind, r.built_at.strftime("%Y-%m-%d"), r.state)
        console.print(table)
    else:
        console.print("No packet about the pupil was built: no receiver holds a copy.")
