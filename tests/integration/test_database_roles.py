"""Least privilege on PostgreSQL: each service's role holds exactly what its work needs.

On a database of this module's own, upgraded after the roles exist (deploy/local/up
creates them; on a server where this user may create roles, as the containers'
superuser may, the test creates any that are missing). Each role is used as the
services use it: settings whose URL names no user, so the role is picked by what runs.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from sendhub.access_log import AccessLog, Reader
from sendhub.oversight_store import OversightStore
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.handlers import to_school_event_record
from services.shared import locks
from services.shared.access import Kind, Principal
from services.shared.binding import check_binding
from services.shared.database import require_current
from services.shared.lease import OutboxLease
from services.shared.principals import PrincipalStore
from services.shared.pupil_keys import pupil_keys_for
from services.shared.school_days import TermPeriod
from services.shared.school_terms_store import import_terms, load_calendar
from services.shared.settings import READER_ROLE, HubSettings, service_role
from services.transfers.application import TransfersApplication
from services.transfers.postgres import PostgresTransfers
from services.transfers.registry import RegisteredSetting
from services.transfers.repository import Transfers
from tests.conftest import unavailable
from tests.factories import random_upn, school_event
from tests.transfers_cases import TO_SCHOOL, TransfersCases, at, history_messages, moved

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "records", "transfers", "gateway")
ROLES = (*(service_role(s) for s in SERVICES), READER_ROLE)

# What each role may do, table by table (sequences: USAGE; the lock procedure: EXECUTE);
# anything else it can do is a failure. Column privileges are written PRIV(column).
# Functions count only when they run as their owner (SECURITY DEFINER): the others, which
# PUBLIC may execute, act with the caller's own privileges.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "sendhub_ingest": {"principals": {"SELECT"}},
    "sendhub_records": {
        "records_events": {"SELECT", "INSERT"},
        "records_events_notification_id_seq": {"USAGE"},
        "records_tracking": {"SELECT", "INSERT", "UPDATE"},
        "records_lock_events()": {"EXECUTE"},
        "hub_binding": {"SELECT", "INSERT"},
        "pupil_keys": {"SELECT", "INSERT"},
        "alembic_version": {"SELECT"},
    },
    "sendhub_transfers": {
        "transfers_history": {"SELECT", "INSERT"},
        "transfers_positions": {"SELECT", "INSERT", "UPDATE"},
        "transfers_packets": {"SELECT", "INSERT", "UPDATE(published_at)"},
        "transfers_delivery": {"SELECT", "INSERT"},
        "transfers_delivery_id_seq": {"USAGE"},
        "settings_registry": {"SELECT"},
        "school_terms": {"SELECT"},
        "hub_binding": {"SELECT", "INSERT"},
        "pupil_keys": {"SELECT", "INSERT"},
        "alembic_version": {"SELECT"},
    },
    "sendhub_gateway": {
        "transfers_packets": {"SELECT"},
        "transfers_delivery": {"SELECT"},
        "settings_registry": {"SELECT"},
        "school_terms": {"SELECT"},
        "records_events": {"SELECT"},
        "principals": {"SELECT"},
        "credentials": {"SELECT", "UPDATE(last_used_at)"},
        "webhooks": {"SELECT", "INSERT", "UPDATE(revoked_at)"},
        "webhook_deliveries": {"SELECT", "INSERT", "UPDATE"},
        "webhook_deliveries_id_seq": {"USAGE"},
        "access_log": {"SELECT", "INSERT"},
        "access_log_id_seq": {"USAGE"},
        "hub_binding": {"SELECT"},
        "alembic_version": {"SELECT"},
        "transfers_history": {"SELECT"},
        "web_sessions": {"SELECT", "INSERT", "UPDATE(last_seen_at)", "UPDATE(ended_at)"},
        "pupil_keys": {"SELECT"},
    },
    "sendhub_reader": {
        "records_events": {"SELECT"},
        "transfers_history": {"SELECT"},
        "transfers_packets": {"SELECT"},
        "transfers_delivery": {"SELECT"},
        "settings_registry": {"SELECT"},
        "school_terms": {"SELECT"},
        "principals": {"SELECT"},
        "credentials": {"SELECT", "UPDATE(last_used_at)"},
        "access_log": {"SELECT", "INSERT"},
        "access_log_id_seq": {"USAGE"},
        "alembic_version": {"SELECT"},
        "pupil_keys": {"SELECT"},
    },
}

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES",
                    "TRIGGER")
PRIVILEGES_OF = """
SELECT c.relname, p.privilege FROM pg_class c
  CROSS JOIN unnest(%(privileges)s::text[]) AS p(privilege)
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
    AND has_table_privilege(%(role)s, c.oid, p.privilege)
UNION ALL
SELECT c.relname, p.privilege || '(' || a.attname || ')' FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) AS p(privilege)
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
    AND NOT has_table_privilege(%(role)s, c.oid, p.privilege)
    AND has_column_privilege(%(role)s, c.oid, a.attnum, p.privilege)
UNION ALL
SELECT c.relname, p.privilege FROM pg_class c
  CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS p(privilege)
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
    AND has_sequence_privilege(%(role)s, c.oid, p.privilege)
UNION ALL
SELECT f.oid::regprocedure::text, 'EXECUTE' FROM pg_proc f
  WHERE f.pronamespace = 'public'::regnamespace AND f.prosecdef
    AND has_function_privilege(%(role)s, f.oid, 'EXECUTE')
"""


def may_create_roles(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles "
                       "WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


@pytest.fixture(scope="module")
def role_passwords(base_settings: HubSettings, database_url: str) -> dict[str, str | None]:
    """Each role's password: None where deploy/local/up's file holds it; a missing role
    is created here only where this user may (the containers), else the test fails
    under CI (skips locally) saying to run deploy/local/up."""
    passwords: dict[str, str | None] = {}
    with psycopg.connect(base_settings.database_conninfo, autocommit=True) as conn:
        for role in ROLES:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                passwords[role] = None
            elif may_create_roles(conn):
                passwords[role] = secrets.token_urlsafe(18)
                conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN NOINHERIT PASSWORD {}").format(
                    psycopg.sql.Identifier(role), psycopg.sql.Literal(passwords[role])))
            else:
                unavailable(f"the database role {role} does not exist: run deploy/local/up")
    return passwords


@pytest.fixture(scope="module")
def owner(role_passwords: dict[str, str | None], scratch_db: HubSettings) -> HubSettings:
    """The module's database, upgraded (so granted to) after every role exists: the
    fixtures resolve in this order."""
    return scratch_db


@pytest.fixture(scope="module")
def roles(owner: HubSettings, role_passwords: dict[str, str | None]) -> dict[str, HubSettings]:
    """Settings for each role as the hub picks it: a URL naming no user, the role chosen
    for what runs, its password from deploy/local/up's file (or the test's)."""
    host = owner.database_url.hosts()[0]
    url = f"postgresql://{host['host']}:{host['port']}{owner.database_url.path}"
    chosen = {service_role(s): HubSettings(database_url=url, database_password=role_passwords[
        service_role(s)]).for_service(s) for s in SERVICES}
    chosen[READER_ROLE] = HubSettings(database_url=url, database_password=role_passwords[
        READER_ROLE]).as_database_role(READER_ROLE)
    for role, settings in chosen.items():
        assert settings.database_user == role
    return chosen


def privileges(owner: HubSettings, role: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with psycopg.connect(owner.database_conninfo) as conn:
        for target, privilege in conn.execute(PRIVILEGES_OF, {"role": role,
                                                             "privileges": list(TABLE_PRIVILEGES)}):
            found.setdefault(str(target), set()).add(str(privilege))
    return found


def refused(settings: HubSettings, statement: str) -> None:
    """The statement fails for lack of privilege (not a trigger, not a constraint)."""
    with psycopg.connect(settings.database_conninfo) as conn, \
            pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        conn.execute(statement)


def record_of(upn: str, event_type: str = "concern_raised") -> object:
    pupil = {"upn": upn, "given_name": "Ben", "family_name": "Okafor",
             "date_of_birth": "2014-02-03"}
    return to_school_event_record(AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=0),
        event=SCHOOL_EVENT.validate_python(school_event(event_type, pupil=pupil))))


@pytest.mark.parametrize("role", ROLES)
def test_each_role_holds_exactly_its_grants(owner: HubSettings,
                                            roles: dict[str, HubSettings], role: str) -> None:
    assert privileges(owner, role) == EXPECTED[role]


def test_records_cannot_update_or_delete_its_history(roles: dict[str, HubSettings]) -> None:
    records = roles["sendhub_records"]
    pupil = uuid.uuid4()
    with psycopg.connect(records.database_conninfo) as conn:
        conn.execute("INSERT INTO records_events (originator_id, originator_version, topic, "
                     "state) VALUES (%s, 1, 't', 'x')", (pupil,))
        assert conn.execute("SELECT count(*) FROM records_events WHERE originator_id = %s",
                            (pupil,)).fetchone() == (1,)
    for statement in (f"UPDATE records_events SET state = 'y' WHERE originator_id = '{pupil}'",
                      f"DELETE FROM records_events WHERE originator_id = '{pupil}'",
                      "TRUNCATE records_events",
                      "LOCK TABLE records_events IN EXCLUSIVE MODE"):
        refused(records, statement)


def test_records_does_its_work_as_its_role(roles: dict[str, HubSettings]) -> None:
    records = roles["sendhub_records"]
    require_current(records)
    check_binding(records, "cluster-of-the-roles-test")
    lease = OutboxLease(records.database_conninfo, locks.RECORDS_OUTBOX, "pupil-history",
                        logging.getLogger("test"))
    assert lease.held()
    lease.release()
    app = RecordsApplication(env=records.eventsourcing_env())
    upn = random_upn()
    topic = f"roles-{upn}"
    batch = [(record_of(upn), ConsumedPosition(topic, 0, 0)),
             (record_of(upn, "pupil_moved"), ConsumedPosition(topic, 0, 1))]
    assert len(app.record_school_events(batch)) == 2  # type: ignore[arg-type]
    assert app.record_school_events(batch) == []  # type: ignore[arg-type]
    assert [e.originator_version for e in app.history_events(upn)] == [1, 2]
    assert app.verify_pupil(upn) == (2, None)
    newest = app.recorder.max_notification_id() or 0
    app.mark_relayed(newest)
    app.mark_anchored(newest)
    assert (app.relayed_up_to(), app.anchored_up_to()) == (newest, newest)
    assert app.pupil_count() >= 1 and len(app.all_heads(newest)) >= 1


class TestTransfersAsItsRole(TransfersCases):
    """Every transfers use case, with the store connected as transfers' role; the owner
    empties the tables between tests (truncation is not transfers' to do)."""

    @pytest.fixture(autouse=True)
    def _database(self, owner: HubSettings, roles: dict[str, HubSettings]) -> None:
        self.owner, self.role = owner, roles["sendhub_transfers"]
        self.conninfo = self.role.database_conninfo

    def transfers(self) -> Iterator[Transfers]:
        with psycopg.connect(self.owner.database_conninfo) as conn:
            conn.execute("ALTER TABLE transfers_delivery DISABLE TRIGGER USER")
            conn.execute("TRUNCATE transfers_history, transfers_positions, settings_registry, "
                         "transfers_delivery, transfers_packets")
            conn.execute("ALTER TABLE transfers_delivery ENABLE TRIGGER USER")
        yield PostgresTransfers(self.conninfo, pupil_keys_for(self.role))

    def import_registry(self, app: TransfersApplication,
                        settings: list[RegisteredSetting]) -> None:
        operator = TransfersApplication.for_settings(self.owner)
        try:
            operator.import_settings(settings)
        finally:
            operator.close()

    def test_packets_carry_the_registry_names_and_unknown_receivers_are_noted(
            self, app: TransfersApplication) -> None:
        """The registry is imported by the operator (`sendhub settings import`, as the
        owner); transfers only reads it, to name the settings in its packets."""
        oak = RegisteredSetting(urn="100001", name="Oak Primary", phase="Primary",
                                la_code="801", establishment_number="2001")
        with pytest.raises(errors.InsufficientPrivilege):
            app.import_settings([oak])
        operator = TransfersApplication.for_settings(self.owner)
        try:
            assert operator.import_settings([oak]) == 1
        finally:
            operator.close()
        upn = random_upn()
        [packet_id] = app.record_history(at(f"history-{upn}", history_messages(
            upn, moved(TO_SCHOOL))))
        packet = app.packet(packet_id)
        assert packet is not None
        assert (packet.from_setting.name, packet.from_setting.in_registry) == ("Oak Primary", True)
        assert packet.to_setting.in_registry is False


def test_transfers_cannot_touch_histories_registry_or_packet_bodies(
        roles: dict[str, HubSettings]) -> None:
    transfers = roles["sendhub_transfers"]
    for statement in ("SELECT count(*) FROM records_events",
                      "INSERT INTO settings_registry (urn, name, phase, imported_at) "
                      "VALUES ('1', 'x', 'primary', now())",
                      "UPDATE transfers_packets SET body = '{}'",
                      "UPDATE transfers_packets SET sealed = NULL",  # a seal is written once
                      "UPDATE transfers_history SET sealed = NULL",
                      "DELETE FROM transfers_packets",
                      "DELETE FROM transfers_delivery",
                      "SELECT count(*) FROM credentials"):
        refused(transfers, statement)


def test_ingest_reads_principals_and_nothing_else(owner: HubSettings,
                                                  roles: dict[str, HubSettings]) -> None:
    ingest = roles["sendhub_ingest"]
    school = Principal(Kind.school, "100001")
    PrincipalStore(owner.database_conninfo).add(school)
    assert PrincipalStore(ingest.database_conninfo).active(school.name) == school
    for statement in ("INSERT INTO principals (name, kind, identifier) "
                      "VALUES ('x', 'school', '1')",
                      "SELECT count(*) FROM credentials",
                      "SELECT count(*) FROM records_events",
                      "SELECT count(*) FROM transfers_packets",
                      "SELECT count(*) FROM settings_registry"):
        refused(ingest, statement)


def test_the_gateway_authenticates_reads_and_cannot_write_packets(
        owner: HubSettings, roles: dict[str, HubSettings]) -> None:
    gateway = roles["sendhub_gateway"]
    operator = PrincipalStore(owner.database_conninfo)
    school = Principal(Kind.school, "100003")
    operator.add(school)
    issued = operator.issue_token(school.name)
    assert PrincipalStore(gateway.database_conninfo).authenticate(issued.token) == school
    with psycopg.connect(owner.database_conninfo) as conn:
        assert conn.execute("SELECT last_used_at IS NOT NULL FROM credentials WHERE id = %s",
                            (issued.credential_id,)).fetchone() == (True,)
    AccessLog(gateway.database_conninfo).record(Reader("school-100003", "inbox"), "inbox")
    for statement in ("INSERT INTO transfers_packets (packet_id, upn, receiver, move_version, "
                      "body, built_at) VALUES (gen_random_uuid(), 'u', 'r', 1, '{}', now())",
                      "UPDATE transfers_packets SET published_at = now()",
                      "UPDATE transfers_packets SET sealed = NULL",
                      "DELETE FROM transfers_packets",
                      "INSERT INTO transfers_delivery (packet_id, state, at) "
                      "VALUES (gen_random_uuid(), 'sent', now())",
                      "UPDATE credentials SET expires_at = now() + interval '10 years'",
                      "INSERT INTO principals (name, kind, identifier) VALUES ('x', 'school', '1')",
                      "UPDATE access_log SET reason = 'x'", "DELETE FROM access_log"):
        refused(gateway, statement)


def test_the_reader_only_reads_and_adds_to_the_access_log(
        roles: dict[str, HubSettings]) -> None:
    reader, records = roles[READER_ROLE], roles["sendhub_records"]
    upn = random_upn()
    RecordsApplication(env=records.eventsourcing_env()).record_school_events(
        [(record_of(upn), ConsumedPosition(f"reader-{upn}", 0, 0))])  # type: ignore[list-item]
    assert len(RecordsApplication(env=reader.eventsourcing_env()).history_events(upn)) == 1
    log = AccessLog(reader.database_conninfo)
    log.record(Reader("auditor", "roles test"), "history", upn=upn)
    assert [e.actor for e in log.entries(upn)] == ["auditor"]
    store = TransfersApplication.for_settings(reader)
    try:
        store.deliveries()
    finally:
        store.close()
    oversight = OversightStore(reader.database_conninfo, pupil_keys_for(reader))  # its reads
    assert isinstance(oversight.histories(["100001"], "801"), dict)
    oversight.packets_from(["100001"])
    oversight.registry()
    AccessLog(reader.database_conninfo).record_pupils(
        Reader("auditor", "roles test"), "oversight", [upn], detail="la-801")
    for statement in ("INSERT INTO records_events (originator_id, originator_version) "
                      "VALUES (gen_random_uuid(), 1)",
                      "UPDATE transfers_packets SET published_at = now()",
                      "DELETE FROM transfers_delivery",
                      "INSERT INTO records_tracking VALUES ('x', 1)",
                      "UPDATE credentials SET revoked_at = NULL",  # only last_used_at
                      "DELETE FROM transfers_history",
                      "SELECT count(*) FROM webhooks"):
        refused(reader, statement)


def test_transfers_the_gateway_and_the_reader_read_term_dates_and_only_the_owner_writes_them(
        owner: HubSettings, roles: dict[str, HubSettings]) -> None:
    bristol = [TermPeriod("801", "Autumn 1", date(2025, 9, 3), date(2025, 10, 24))]
    import_terms(owner.database_conninfo, bristol, datetime.now(UTC))
    for role in ("sendhub_transfers", READER_ROLE, "sendhub_gateway"):
        assert load_calendar(roles[role].database_conninfo).terms == tuple(bristol)
        with pytest.raises(errors.InsufficientPrivilege):
            import_terms(roles[role].database_conninfo, bristol, datetime.now(UTC))
        for statement in ("UPDATE school_terms SET name = 'x'", "TRUNCATE school_terms"):
            refused(roles[role], statement)
    for role in ("sendhub_ingest", "sendhub_records"):
        refused(roles[role], "SELECT count(*) FROM school_terms")


@pytest.mark.parametrize(("command", "user"), [
    (["access-log", "9999999999999", "--reason", "b"], "sendhub_reader"),
    (["oversight", "--la", "801"], "sendhub_reader"),
    (["subject-access", "9999999999999", "-o", "."], "sendhub_reader"),
    (["calendar", "list"], "sendhub_reader"),
    (["calendar", "import", "data/term-dates-sample.csv"], "sendhub"),
    (["db", "upgrade"], "sendhub"),
    (["serve", "records"], "sendhub_records"),
    (["serve", "transfers"], "sendhub_transfers"),
], ids=["reading-command", "oversight", "subject-access", "calendar-list", "calendar-import", "db-upgrade",
        "serve-records", "serve-transfers"])
def test_the_cli_connects_as_the_role_of_what_runs(
        owner: HubSettings, tmp_path: Path, command: list[str], user: str) -> None:
    """With a URL that names no user and a wrong password, the refusal names the user
    each command connected as."""
    host = owner.database_url.hosts()[0]
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    env = {**os.environ, "SENDHUB_DATABASE_URL":
           f"postgresql://{host['host']}:{host['port']}{owner.database_url.path}",
           "SENDHUB_DATABASE_PASSWORD_FILE": str(wrong), "SENDHUB_HTTP_PORT": "0",
           # a token of the right shape: checking it is what connects a reading command
           "SENDHUB_TOKEN": f"shb_{uuid.uuid4().hex}_secret"}
    env.pop("SENDHUB_DATABASE_PASSWORD", None)
    result = subprocess.run([sys.executable, "-m", "sendhub.cli", *command], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    said = " ".join(result.stderr.split())  # the console wraps long lines
    assert result.returncode != 0, result.stdout
    assert f'authentication failed for user "{user}"' in said, said
