"""What `sendhub oversight` reads from the hub's database, and the figures put together
from it: the settings registry, transfers' projection of the pupils' histories
(`transfers_history`), the packets with their delivery events, and the school calendar.
Read-only (the CLI's `sendhub_reader` role) but for the access log, where every pupil
shown behind a figure is recorded.

Adapter: all of oversight's SQL is here, rows are read by column name, and what comes
out is the shared read model (`HistoryEntry`, as `services.transfers.postgres` makes it)
and `sendhub.oversight.MovedPacket`; `gather_oversight` hands them to the pure
`sendhub.oversight`. Histories and packets are sealed with their pupils' data keys
(`services.transfers.sealed_rows`): SQL selects by their plain columns and they are
opened here. An erased pupil's history is left out of the figures (nothing of it can be
read); their packets still count, named by the erasure instead of the pupil.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

import psycopg
from psycopg.rows import DictRow, dict_row

from sendhub.access_log import AccessLog, Reader
from sendhub.oversight import (
    MovedPacket,
    Oversight,
    Scope,
    Window,
    oversee,
    pupil_names,
    pupils_of_scope,
    scope_clocks,
    withhold_pupils,
)
from services.shared.access import Principal, may_see_pupils, slug
from services.shared.clocks import LocalPolicy
from services.shared.pupil_keys import PupilErased, PupilKeys
from services.shared.school_terms_store import load_calendar
from services.shared.sen_record import HistoryEntry, as_corrected
from services.transfers.domain import DeliveryEvent, PacketRecord
from services.transfers.registry import RegisteredSetting
from services.transfers.sealed_rows import open_history, prepare, pupil_named

_REGISTRY = ("SELECT urn, name, phase, la_code, la_name, establishment_number, ukprn, trust "
             "FROM settings_registry ORDER BY la_code, urn")
_PUPILS = (
    "SELECT upn, version, event, sealed FROM transfers_history WHERE upn IN ("
    " SELECT DISTINCT upn FROM transfers_history"
    " WHERE event->'event'->'source'->>'urn' = ANY(%(urns)s)"
    " OR event->'event'->'source'->>'la' = %(la)s)"
    " ORDER BY upn, version")
_PACKETS = (
    "SELECT p.packet_id, p.upn, p.receiver, p.kind, p.built_at, p.supersedes, p.move_version, "
    "p.body, p.sealed, "
    "p.body->'to_setting'->>'name' AS receiver_name, "
    "p.body->'to_setting'->>'la_code' AS receiver_la_code, "
    "p.body->'from_setting'->>'urn' AS from_urn, "
    "p.body->'move'->>'effective_date' AS effective_date, "
    "coalesce((SELECT json_agg(json_build_array(d.state, d.at, d.detail) ORDER BY d.id) "
    "FROM transfers_delivery d WHERE d.packet_id = p.packet_id), '[]') AS events "
    "FROM transfers_packets p WHERE p.body->'from_setting'->>'urn' = ANY(%(urns)s) "
    "ORDER BY p.built_at, p.packet_id")


class OversightStore:
    """`keys` open the pupils' histories and packets; the registry needs none."""

    def __init__(self, conninfo: str, keys: PupilKeys | None = None) -> None:
        self.conninfo = conninfo
        self._keys = keys

    @property
    def keys(self) -> PupilKeys:
        if self._keys is None:
            raise RuntimeError("this OversightStore was built without the pupils' data keys, "
                               "so it reads no history or packet")
        return self._keys

    def _connect(self) -> psycopg.Connection[DictRow]:
        return psycopg.connect(self.conninfo, row_factory=dict_row)

    def registry(self) -> list[RegisteredSetting]:
        with self._connect() as conn:
            return [RegisteredSetting(**r) for r in conn.execute(_REGISTRY).fetchall()]

    def histories(self, urns: Collection[str], la_code: str | None = None
                  ) -> dict[str, list[HistoryEntry]]:
        """The whole history of every pupil with an event recorded at one of `urns` (or by
        the LA `la_code`), by UPN, each in version order, as corrected (`as_corrected`)."""
        found: dict[str, list[HistoryEntry]] = {}
        erased: set[str] = set()
        with self._connect() as conn:
            rows = conn.execute(_PUPILS, {"urns": list(urns), "la": la_code}).fetchall()
        prepare(self.keys, {str(r["upn"]) for r in rows})
        for r in rows:
            upn = str(r["upn"])
            if upn in erased:
                continue
            try:
                message = open_history(self.keys, upn, int(r["version"]), r["event"], r["sealed"])
            except PupilErased:
                erased.add(upn)
                found.pop(upn, None)
                continue
            found.setdefault(upn, []).append(HistoryEntry.from_contract(message))
        # The figures count what settings stand by: withdrawn entries are left out.
        return {upn: shown for upn, history in found.items() if (shown := as_corrected(history))}

    def packets_from(self, urns: Collection[str]) -> list[MovedPacket]:
        """Every packet built for a move out of one of `urns`, with its delivery events."""
        with self._connect() as conn:
            rows = conn.execute(_PACKETS, {"urns": list(urns)}).fetchall()
        prepare(self.keys, {str(r["upn"]) for r in rows})
        return [MovedPacket(
            record=PacketRecord(
                packet_id=r["packet_id"], upn=str(r["upn"]),
                pupil=pupil_named(self.keys, str(r["upn"]), r["packet_id"], r["body"], r["sealed"]),
                receiver=str(r["receiver"]), receiver_name=r["receiver_name"],
                receiver_la_code=r["receiver_la_code"],
                kind=str(r["kind"]), built_at=r["built_at"], supersedes=r["supersedes"],
                events=tuple(DeliveryEvent(state, datetime.fromisoformat(at), detail)
                             for state, at, detail in r["events"])),
            from_urn=str(r["from_urn"]) if r["from_urn"] else None,
            move_version=int(r["move_version"]),
            effective_date=date.fromisoformat(str(r["effective_date"])),
        ) for r in rows]


class NoSchoolsInScope(LookupError):
    """Raised when the settings registry has no school in the LA or trust asked for."""


def scope_of(registry: list[RegisteredSetting], *, la: str | None = None,
             trust: str | None = None) -> tuple[Scope, list[RegisteredSetting]]:
    """The scope and its settings: an LA's by its code, a trust's by its registry name
    (spelt as the registry has it, or slugged alike)."""
    if la is not None:
        chosen = [s for s in registry if s.la_code == la]
        name = next((s.la_name for s in chosen if s.la_name), None) or la
        return Scope("la", la, name), chosen
    if trust is None:
        raise ValueError("a scope is an LA (la=) or a trust (trust=)")
    chosen = [s for s in registry if s.trust and slug(s.trust) == slug(trust)]
    name = chosen[0].trust if chosen and chosen[0].trust else trust
    return Scope("trust", name, name), chosen


def schools_in_scope(conninfo: str, *, la: str | None = None, trust: str | None = None
                     ) -> tuple[Scope, list[RegisteredSetting]]:
    """The scope and its schools as the settings registry has them now (the web's school
    filter offers these)."""
    return scope_of(OversightStore(conninfo).registry(), la=la, trust=trust)


def gather_oversight(conninfo: str, principal: Principal, *, keys: PupilKeys,
                     la: str | None = None,
                     trust: str | None = None, window: Window, today: date,
                     policy: LocalPolicy, reader: Reader | None,
                     schools: Collection[str] | None = None) -> Oversight:
    """The scope's figures as `principal` may see them (the caller has checked that it
    may oversee the scope): with a `reader` (a reason given), the pupils behind each
    figure where `may_see_pupils` holds, each recorded in the access log; without, the
    figures alone. `schools` (URNs) narrows the scope to those of its schools."""
    result = figures_with_pupils(conninfo, principal, keys=keys, la=la, trust=trust,
                                 window=window, today=today, policy=policy, schools=schools)
    if reader is None:
        return withhold_pupils(result)
    shown = sorted({p.upn for p in result.pupils_shown()})
    if shown:
        AccessLog(conninfo).record_pupils(
            reader, "oversight", shown,
            detail=f"{result.scope.slug} {window.start.isoformat()}..{window.end.isoformat()}")
    return result


def figures_with_pupils(conninfo: str, principal: Principal, *, keys: PupilKeys,
                        la: str | None = None,
                        trust: str | None = None, window: Window, today: date,
                        policy: LocalPolicy, schools: Collection[str] | None = None
                        ) -> Oversight:
    """The figures with the pupils behind them where `may_see_pupils` holds, recorded
    nowhere: the caller records in the access log every pupil it shows (the web's list
    behind one figure of one school shows, and records, only those)."""
    store = OversightStore(conninfo, keys)
    registry = store.registry()
    scope, chosen = scope_of(registry, la=la, trust=trust)
    if schools is not None:
        chosen = [s for s in chosen if s.urn in schools]
    if not chosen:
        raise NoSchoolsInScope(
            f"The settings registry has no school in {scope.label}: import the registry "
            "with `sendhub settings import FILE` (`sendhub settings list` shows it).")
    urns = frozenset(s.urn for s in chosen)
    calendar = load_calendar(conninfo)
    histories = pupils_of_scope(store.histories(urns, la), scope, urns)
    packets = store.packets_from(urns)
    clocks = scope_clocks(histories, packets, chosen, registry={s.urn: s for s in registry},
                          today=today, calendar=calendar, policy=policy)
    basis = {code: calendar.basis(code) for code in sorted({s.la_code for s in chosen
                                                            if s.la_code})}
    return oversee(scope, chosen, clocks, packets, names=pupil_names(histories),
                   window=window, today=today, policy=policy, calendar_basis=basis,
                   shows_pupils=lambda urn: may_see_pupils(principal, urn))
