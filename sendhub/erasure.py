"""Erasing a pupil: destroy their data key, and every plain trace of them the hub keeps.

The erasure a court, the ICO or the retention schedule requires (UK GDPR Article 17;
Article 5(1)(e) for retention), done without breaking the audit chain:
1. the receivers of the pupil's packets are listed first (their copies are theirs: the
   operator tells them), while the packet rows still name the pupil;
2. the pupil's data key is destroyed (`pupil_keys`): the history in `records_events` and
   transfers' sealed copies can no longer be opened, wherever they are (transfers' rows
   from before sealing existed, revision 0008, are shredded: `seal_stored_rows`);
3. the plain UPN kept to find the pupil's rows (transfers' tables, the access log) is
   replaced by the pseudonym `erased:<stream id>`;
4. the erasure is added to the access log (under the pseudonym);
5. the pupil's messages are removed from the hub's Kafka topics (`topic_purge`);
6. the tables that changed are vacuumed, so the replaced row versions leave the tables.
Every step can be run again: an erasure that stopped half-way is finished by repeating it.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from sendhub.access_log import AccessLog, Reader
from sendhub.topic_purge import PurgeReport, purge
from services.records.application import seal_stored_history
from services.shared.pupil_keys import (
    Erasure,
    PostgresPupilKeys,
    PupilKeys,
    pupil_keys_for,
    pupil_ref_for_upn,
)
from services.shared.settings import HubSettings
from services.transfers.postgres import seal_stored_rows

VACUUMED = ("pupil_keys", "records_events", "transfers_packets", "transfers_history",
            "access_log")


class NothingToErase(LookupError):
    """The hub holds nothing about this UPN: no key, no history, no packet."""


@dataclass(frozen=True)
class ReceivedCopy:
    """A packet the hub delivered (or tried to): whose copy the operator must ask about."""

    receiver: str
    kind: str
    built_at: datetime
    state: str


@dataclass
class ErasureReport:
    pseudonym: str
    erasure: Erasure
    first_time: bool
    receivers: list[ReceivedCopy] = field(default_factory=list)
    rows_pseudonymised: int = 0
    topics: PurgeReport = field(default_factory=PurgeReport)
    chain: str = ""
    """The pupil's hash chain as checked just before the key was destroyed."""


def pseudonym_of(upn: str) -> str:
    """What replaces the UPN in the hub's tables: the pupil's stream id, which the
    anchors and the erasure record name too. It is a pseudonym, not anonymous: whoever
    holds a candidate UPN can compute it (uuid5), so it confirms a guess but yields no
    content (docs/dpia.md, residual risk 2)."""
    return f"erased:{pupil_ref_for_upn(upn)}"


def received_copies(conninfo: str, upn: str) -> list[ReceivedCopy]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT p.receiver, p.kind, p.built_at, coalesce((SELECT d.state FROM "
            "transfers_delivery d WHERE d.packet_id = p.packet_id ORDER BY d.id DESC LIMIT 1), "
            "CASE WHEN p.published_at IS NULL THEN 'not sent' ELSE 'published' END) "
            "FROM transfers_packets p WHERE p.upn = ANY(%s) ORDER BY p.built_at",
            ([upn, pseudonym_of(upn)],)).fetchall()
    return [ReceivedCopy(str(r[0]), str(r[1]), r[2], str(r[3])) for r in rows]


def _erasure_logged(conninfo: str, pseudonym: str) -> bool:
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT 1 FROM access_log WHERE upn = %s AND action = 'erase'",
                            (pseudonym,)).fetchone() is not None


def _chain_before_erasure(settings: HubSettings, keys: PupilKeys, upn: str) -> str:
    """The chain as checked while its content can still be read, kept with the erasure:
    afterwards only the links between the kept hashes can be checked, so a forgery
    made before the erasure would otherwise hide behind it."""
    from services.records.application import RecordsApplication

    records = RecordsApplication(env=settings.eventsourcing_env(), keys=keys)
    try:
        checked, broken = records.verify_pupil(upn)
        head = records.stored_head(upn)
    finally:
        records.close()
    if broken is not None:
        return (f"its hash chain was already broken at erasure (version {broken.version}: "
                f"{broken.problem})")
    return (f"its hash chain was intact at erasure ({checked} events, head {head[:16]})"
            if head and checked else "no history was stored")


def _holds_anything(conninfo: str, upn: str) -> bool:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pupil_keys WHERE pupil_ref = %(ref)s) "
            "OR EXISTS (SELECT 1 FROM transfers_packets WHERE upn = %(upn)s) "
            "OR EXISTS (SELECT 1 FROM transfers_history WHERE upn = %(upn)s)",
            {"ref": pupil_ref_for_upn(upn), "upn": upn}).fetchone()
    return bool(row and row[0])


def erase_pupils(settings: HubSettings, upns: Sequence[str], *, reason: str,
                 authorised_by: str, on_step: Callable[[str], None] | None = None,
                 keys: PupilKeys | None = None) -> list[ErasureReport]:
    """Erase each pupil (steps 1 to 4 each), then purge the topics and vacuum once.
    `keys`: the caller's own, so that it stops reading with them at once."""
    reason, authorised_by = reason.strip(), authorised_by.strip()
    if not reason or not authorised_by:
        raise ValueError("an erasure needs a reason and who authorised it")
    step = on_step or (lambda _: None)
    conninfo = settings.database_conninfo
    for upn in upns:
        if not _holds_anything(conninfo, upn):
            raise NothingToErase(f"the hub holds nothing about UPN {upn}: no history, no "
                                 "packet, no key")
    own_keys = keys is None
    keys = keys or pupil_keys_for(settings)
    log = AccessLog(conninfo)
    operator = Reader(f"operator ({getpass.getuser()})", reason)
    reports = []
    try:
        for upn in upns:
            ref = pupil_ref_for_upn(upn)
            step(f"listing who received {upn}'s packets")
            receivers = received_copies(conninfo, upn)
            step("checking the pupil's hash chain before its content goes")
            chain = _chain_before_erasure(settings, keys, upn)
            step("destroying the pupil's data key")
            already = keys.erasure_of(ref)
            erasure = keys.erase(ref, authorised_by, reason)
            if erasure is None:  # no key yet (nothing was sealed): record the erasure anyway
                keys.prepare_for_writing([ref])
                erasure = keys.erase(ref, authorised_by, reason)
            assert erasure is not None
            step("shredding the pupil's rows stored before sealing existed")
            seal_stored_history(settings, keys, pupil_id=ref)  # none once `db seal-existing` ran
            seal_stored_rows(conninfo, keys)
            step("replacing the UPN in the hub's tables by the pseudonym")
            with psycopg.connect(conninfo) as conn:
                row = conn.execute("SELECT sendhub_pseudonymise_pupil(%s, %s)",
                                   (upn, pseudonym_of(upn))).fetchone()
            if not _erasure_logged(conninfo, pseudonym_of(upn)):  # also after a crash here
                held = ", ".join(f"{r.receiver} ({r.kind}, {r.state})" for r in receivers)
                log.record(operator, "erase", upn=pseudonym_of(upn), detail=(
                    f"{erasure.describe()}; {chain}; packets held by: {held or 'nobody'}"))
            reports.append(ErasureReport(pseudonym_of(upn), erasure, already is None,
                                         receivers, int(row[0]) if row else 0, chain=chain))
        step("removing the pupils' messages from the hub's Kafka topics")
        topics = purge(settings, list(upns), on_topic=lambda t: step(f"scanning {t}"))
        # A running service may still read with the key for SENDHUB_KEY_CACHE_SECONDS and
        # publish what it had in hand (a packet, a relayed event): a second pass after that.
        step(f"waiting {settings.key_cache_seconds:g} s for every process to drop the key")
        time.sleep(settings.key_cache_seconds + 1)
        topics.add(purge(settings, list(upns), on_topic=lambda t: step(f"scanning {t} again")))
        for report in reports:
            report.topics = topics
        step("vacuuming the tables that changed")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for table in VACUUMED:
                conn.execute(f"VACUUM {table}")  # noqa: S608 - fixed names
    finally:
        if own_keys and isinstance(keys, PostgresPupilKeys):
            keys.close()
    return reports
