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


retention_app = typer.Typer(help="The retention schedule: what the hub keeps, and for how "
                            "long (README, Retention).", no_args_is_help=True)


@retention_app.command("run")
def retention_run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="list what is past retention, change nothing")] = False,
    on: Annotated[str | None, typer.Option(
        "--on", help="with --dry-run: as if run on this day (YYYY-MM-DD), to preview")] = None,
) -> None:
    """List, then erase, the pupils past retention; set the topics' retention.ms."""
    from datetime import date

    from rich.table import Table

    from sendhub.commands.common import records_app
    from sendhub.retention import SEN_RECORD_SOURCE, run_retention

    settings = hub_settings(ctx)
    if on is not None and not dry_run:
        raise fail("--on previews a later day, so it needs --dry-run.")
    try:
        today = date.fromisoformat(on) if on else date.today()
    except ValueError:
        raise fail(f"--on {on}: not a date (YYYY-MM-DD).") from None
    with console.status("retention") as status:
        run = run_retention(settings, records_app(settings), today, dry_run=dry_run,
                            on_step=lambda s: status.update(s))
    verb = "would be erased" if dry_run else "erased"
    console.print(f"SEN records are kept until the pupil's date of birth + "
                  f"{settings.retention_sen_record_years} years ({SEN_RECORD_SOURCE}).")
    if run.due:
        table = Table(title=f"{len(run.due)} pupil(s) past retention on {today}: {verb}")
        for column in ("UPN", "born", "kept until"):
            table.add_column(column)
        for d in run.due:
            table.add_row(d.upn, d.born.isoformat(), d.kept_until.isoformat())
        console.print(table)
    else:
        console.print(f"No pupil is past retention on {today}.")
    for t in run.topics:
        console.print(f"{t.topic}: {t.config} {t.now or 'unset'} -> {t.wanted}"
                      + (" (would be set)" if dry_run else " (set)"))
    if not dry_run and run.erased:
        receivers = sorted({r.receiver for e in run.erased for r in e.receivers})
        console.print(f"Erased {len(run.erased)} pupil(s); receivers holding their own copies: "
                      f"{', '.join(receivers) or 'none'}.")
