"""`sendhub`: run the services, publish school events, and read what the hub holds.

Entry point, kept thin: it builds the settings once per call (SENDHUB_* variables) and
assembles the commands from `sendhub.commands`, grouped by who uses them. Every read of
a pupil's history or packet needs an actor and a reason, and is recorded in the access
log. Commands are registered here, in the order `sendhub --help` lists them.
"""

from __future__ import annotations

import sys

import typer

from sendhub.commands import (
    auditing,
    data_protection,
    operations,
    oversight,
    principals,
    receiving,
    school_calendar,
    subject_access,
    webhooks,
)
from sendhub.commands.common import errors
from services.shared.settings import OWNER_ROLE, READER_ROLE, HubSettings

# Commands that only read what the hub holds: they connect as the read-only database
# role (when SENDHUB_DATABASE_URL names no user); the others as the owner, and `serve` as
# its service's own role. A group's reading subcommand (`calendar list`) picks the
# reader itself, since the group's name is all this callback sees.
READING_COMMANDS = frozenset({"history", "packet", "inbox", "transfers", "report", "verify",
                              "access-log", "oversight", "subject-access"})

app = typer.Typer(help="SEN transfer hub: the services and the tools around them.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def hub(ctx: typer.Context) -> None:
    """Settings are read from the environment once per call and handed to the command in
    `ctx.obj`, so no command reads the environment itself."""
    reading = ctx.invoked_subcommand in READING_COMMANDS
    ctx.obj = HubSettings().as_database_role(READER_ROLE if reading else OWNER_ROLE)


app.command()(operations.serve)
app.command()(operations.publish)
app.command()(auditing.history)
app.command()(receiving.packet)
app.command()(receiving.inbox)
app.command()(operations.transfers)
app.command()(receiving.receipt)
app.command()(auditing.verify)
app.command("access-log")(auditing.access_log_command)
app.command("subject-access")(subject_access.subject_access)
app.command()(auditing.report)
app.command()(oversight.oversight)
app.command()(operations.rejected)
app.command()(operations.demo)
app.command()(data_protection.erase)
app.add_typer(data_protection.retention_app, name="retention")
app.add_typer(operations.settings_app, name="settings")
app.add_typer(school_calendar.calendar_app, name="calendar")
app.add_typer(operations.db_app, name="db")
app.add_typer(principals.principals_app, name="principals")
app.add_typer(webhooks.webhooks_app, name="webhooks")


def main() -> None:
    """The `sendhub` command: infrastructure that cannot be reached is a clear message
    (exit 3), not a traceback.

    The callback's settings end with the command's context, before these handlers run;
    they read the same environment again only to name the address that failed."""
    import psycopg
    from eventsourcing.persistence import OperationalError as StoreUnreachable
    from kafka.errors import KafkaError
    from psycopg_pool import PoolTimeout

    from services.shared.binding import WrongCluster
    from services.shared.pupil_keys import MasterKeyError, PupilErased

    try:
        app(standalone_mode=True)
    except PupilErased as exc:
        errors.print(f"[red]Nothing can be read: this {exc}. `sendhub verify` still checks "
                     "its hash chain.[/red]")
        sys.exit(1)
    except MasterKeyError as exc:
        errors.print(f"[red]{exc}[/red]")
        sys.exit(3)
    except WrongCluster as exc:
        errors.print(f"[red]Refusing to start: {exc}[/red]")
        sys.exit(3)
    except (psycopg.OperationalError, StoreUnreachable, PoolTimeout) as exc:
        settings = HubSettings()
        errors.print(f"[red]PostgreSQL cannot be reached at {settings.database_url.hosts()[0]['host']}"
                     f":{settings.database_url.hosts()[0]['port']} ({str(exc).splitlines()[0]}). "
                     "Start it with deploy/local/up, or set SENDHUB_DATABASE_URL.[/red]")
        sys.exit(3)
    except KafkaError as exc:
        errors.print(f"[red]Kafka cannot be reached at {HubSettings().kafka_bootstrap} ({exc}). "
                     "Start it with deploy/local/up, or set SENDHUB_KAFKA_BOOTSTRAP.[/red]")
        sys.exit(3)


if __name__ == "__main__":
    main()
