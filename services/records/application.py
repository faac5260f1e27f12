"""Records use cases: record school events in pupils' histories; read a history back.

Application layer: eventsourcing on PostgreSQL (or in memory with no env, for unit
tests); the audit's reads of stored rows are typed methods of records' recorder
(`persistence.py`), on either store. Exactly-once effects: the Kafka position is stored
as an eventsourcing Tracking record in the same transaction as the new history events,
and positions already recorded are skipped; an `event_id` already in a pupil's history
adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    InfrastructureFactory,
    Mapper,
    Notification,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import Environment

from services.records.chain import ChainBreak, ErasedEntry, StoredItem, anchor_break, first_break, upn_in
from services.records.current_state import CurrentStates
from services.records.domain import (
    UPN,
    PupilHistory,
    PupilId,
    RecordsError,
    SchoolEventRecord,
    SENHistoryEvent,
    chain_hash,
    project_pupil_history,
    pupil_id_for,
    record_school_event,
)
from services.records.persistence import (
    PostgresRecordsRecorder,
    RecordsRecorder,
    StoredRow,
    records_factory,
)
from services.records.replay import Projector, RecordedHistory, as_known_at, as_of
from services.records.sealing import SealedHeader, SealingMapper, header_of
from services.records.verification import pupil_ranges, verify_in_processes
from services.shared.pupil_keys import (
    Erasure,
    InMemoryPupilKeys,
    PostgresPupilKeys,
    PupilErased,
    PupilKeys,
    file_key_provider,
    pupil_ref,
)
from services.shared.settings import LOCAL_DIR, HubSettings

PARALLEL_VERIFY_FROM = 20_000
"""Stored events from which `verify_all` shares the pupils among processes by default:
below it, starting them costs more than they save."""
MAX_VERIFY_WORKERS = 8
EVENTS_PER_RANGE = 2_000
"""About how many events each process checks per range: one query each, and the
progress reported as each range is done."""
MAX_VERIFY_RANGES = 4_096


class RecordsInvariantBroken(RuntimeError):
    """Our bug, not a sender's: the store or the projection broke its own rule."""


class PupilHistoryErased(RecordsError):
    """An event for a pupil whose history was erased: the hub keeps nothing new about
    them (a new key would start a history the erasure was meant to end)."""

    def __init__(self, erased: PupilErased) -> None:
        super().__init__(f"this pupil's SEN history was {erased.erasure.describe()}; the hub "
                         "records nothing more about them")


@dataclass(frozen=True)
class AnchorHeads:
    """The chain heads of pupils whose history grew between two notification ids."""

    after: int
    up_to: int
    heads: dict[UUID, tuple[int, str]]

    @staticmethod
    def digest(heads: Sequence[tuple[UUID, int, str]]) -> str:
        lines = [f"{pupil_id}:{version}:{head}" for pupil_id, version, head in sorted(heads)]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class ConsumedPosition:
    """A Kafka position: the tracking key is `topic#partition`, the id is offset + 1."""

    topic: str
    partition: int
    offset: int

    @property
    def tracking(self) -> Tracking:
        # Offsets start at 0; tracking ids are positive, so store the next offset.
        return Tracking(f"{self.topic}#{self.partition}", self.offset + 1)


@dataclass
class SealedEvents:
    """What `seal_stored_events` did to the rows stored before sealing existed: sealed
    with their pupil's key, or (erased pupils') shredded; `unreadable` counts those of
    either that did not read as events (altered while plain: verify still reports them)."""

    sealed: int = 0
    shredded: int = 0
    unreadable: int = 0


def _loose_header(state: bytes) -> SealedHeader:
    """The hashes a plain row that does not read as an event claims, as far as they can
    be read (none: verify then reports the row where the chain breaks)."""
    try:
        claimed = json.loads(state)
        return SealedHeader(str(claimed.get("event_hash", "")),
                            str(claimed.get("previous_hash", "")),
                            str(claimed.get("event_id", "")))
    except (ValueError, AttributeError):
        return SealedHeader("", "")


def _written_upns(event: SchoolEventRecord) -> list[UPN]:
    """Whose histories a school event writes to: its pupil's, and a misfiled entry's
    right pupil's."""
    if event.correction is not None and event.correction.kind == "entry_misfiled":
        return [event.upn, event.correction.correct_upn]
    return [event.upn]


def _pupil_keys(env: Environment) -> PupilKeys:
    """The data keys of the store records uses: PostgreSQL's table beside the events,
    or (the in-memory store of unit tests) a dict."""
    conninfo = env.get("SENDHUB_KEYS_CONNINFO")
    if env.get(InfrastructureFactory.PERSISTENCE_MODULE) != "eventsourcing.postgres" \
            or not conninfo:
        return InMemoryPupilKeys()
    provider = file_key_provider(Path(env.get("SENDHUB_MASTER_KEY_FILE")
                                      or LOCAL_DIR / "master.key"))
    return PostgresPupilKeys(conninfo, provider,
                             float(env.get("SENDHUB_KEY_CACHE_SECONDS") or 60))


class RecordsApplication(Application[UUID]):
    name = "records"

    def __init__(self, env: Mapping[str, str] | None = None, *,
                 keys: PupilKeys | None = None) -> None:
        self._keys = keys
        self._keys_from_settings = keys is None
        super().__init__(env=env)
        self.states = CurrentStates(int(self.env.get("SENDHUB_PUPIL_STATE_CACHE") or 5_000))

    def construct_mapper(self) -> Mapper[UUID]:
        if self._keys is None:
            self._keys = _pupil_keys(cast(Environment, self.env))
        return SealingMapper(self.construct_transcoder(), self._keys)

    def close(self) -> None:
        """Its connections, and its keys' when it opened them itself (keys it was given
        are the giver's to close)."""
        super().close()
        close_keys = getattr(self._keys, "close", None)
        if self._keys_from_settings and close_keys is not None:
            close_keys()

    @property
    def keys(self) -> PupilKeys:
        """The pupils' data keys this application seals their histories with."""
        assert self._keys is not None  # set by construct_mapper, called by __init__
        return self._keys

    @property
    def sealing_mapper(self) -> SealingMapper:
        return cast(SealingMapper, self.mapper)

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return records_factory(env)

    def construct_recorder(self) -> RecordsRecorder:
        recorder = self.factory.process_recorder()
        if not isinstance(recorder, RecordsRecorder):
            raise TypeError(f"records needs its own recorder, got {type(recorder).__name__}")
        return recorder

    @property
    def process_recorder(self) -> RecordsRecorder:
        return cast(RecordsRecorder, self.recorder)

    def history_of(self, pupil_id: PupilId) -> PupilHistory:
        try:
            state = self.repository.get(pupil_id, projector_func=project_pupil_history)
        except AggregateNotFoundError:
            return PupilHistory(id=pupil_id)
        except PupilErased as erased:
            raise PupilHistoryErased(erased) from None
        return state

    def record_school_events(
        self, batch: Sequence[tuple[SchoolEventRecord, ConsumedPosition]]
    ) -> list[SENHistoryEvent]:
        """Record one partition's consumed events in one transaction with their position.

        Events at positions already recorded are skipped (a redelivery after a crash).
        """
        if not batch:
            return []
        positions = {position.tracking.application_name for _, position in batch}
        if len(positions) != 1:
            raise ValueError("a batch holds one partition's events")
        (tracking_key,) = positions
        done = self.process_recorder.max_tracking_id(tracking_key) or 0
        fresh = [(e, p) for e, p in batch if p.tracking.notification_id > done]
        if not fresh:
            return []
        # Every key of the batch in one round trip. An erased pupil's redelivered event
        # adds nothing, as any redelivery; a new one is refused (records nothing more).
        last = max((p for _, p in fresh), key=lambda p: p.offset)
        # A misfiled entry's right pupil is written to as well: their key is asked too.
        erased = self.keys.prepare_for_writing(
            pupil_ref(pupil_id_for(upn)) for e, _ in fresh for upn in _written_upns(e))
        if erased:
            self.states.forget(PupilId(UUID(ref)) for ref in erased)  # nothing kept of them
            fresh = [(e, p) for e, p in fresh if not self._already_erased(e, erased)]
            for e, _ in fresh:
                for upn in _written_upns(e):
                    if (erasure := erased.get(pupil_ref(pupil_id_for(upn)))) is not None:
                        raise PupilHistoryErased(PupilErased(erasure))
        histories = self._current_histories(fresh)
        new_events: list[SENHistoryEvent] = []
        for school_event, _ in fresh:
            history = histories[pupil_id_for(school_event.upn)]
            right_pupil = None
            correction = school_event.correction
            if correction is not None and correction.kind == "entry_misfiled":
                # The entry moves to the right pupil's history in this same transaction.
                right_pupil = histories[pupil_id_for(correction.correct_upn)]
            decided = record_school_event(history, school_event, right_pupil)
            for state in (history, right_pupil):
                if state is None:
                    continue
                theirs = [e for e in decided if e.originator_id == state.id]
                if not theirs:
                    continue
                after = project_pupil_history(state, theirs)
                if after is None:
                    raise RecordsInvariantBroken(f"pupil {state.id}'s history vanished while "
                                                 "recording its new events")
                histories[state.id] = after
            new_events.extend(decided)
        self.events.put(new_events, tracking=last.tracking)
        self.states.keep(histories.values())  # committed: these are the current states
        return new_events

    def _current_histories(self, batch: Sequence[tuple[SchoolEventRecord, ConsumedPosition]]
                           ) -> dict[PupilId, PupilHistory]:
        """The current state of every pupil the batch writes to (a misfiled entry's right
        pupil too): kept in memory when still at the stored version (one query for the
        whole batch), else read from the pupil's stream."""
        ids = {pupil_id_for(e.upn) for e, _ in batch} | {
            pupil_id_for(e.correction.correct_upn) for e, _ in batch
            if e.correction is not None and e.correction.kind == "entry_misfiled"}
        stored = self.process_recorder.stored_versions(sorted(ids))
        histories: dict[PupilId, PupilHistory] = {}
        for pupil_id in ids:
            version = stored.get(pupil_id, 0)
            histories[pupil_id] = (self.states.current(pupil_id, version)
                                   or (PupilHistory(id=pupil_id) if version == 0
                                       else self.history_of(pupil_id)))
        return histories

    def seal_stored_events(self, *, pupil_id: UUID | str | None = None,
                           batch: int = 500) -> SealedEvents:
        """Seal the history rows stored before sealing existed (revision 0007 cannot: the
        keys are not in SQL), of every pupil or of one, as new rows are stored; an erased
        pupil's are shredded. Each row's own event with its recorded hashes, never
        recomputed: a row altered while plain stays detectably altered. In batches of one
        transaction each; safe to run again, and beside the running services. Needs
        UPDATE on records_events: the database owner's (`sendhub db seal-existing`, the
        erasure), never records' role."""
        done = SealedEvents()
        one = UUID(str(pupil_id)) if pupil_id is not None else None

        def rewrite(rows: Sequence[StoredRow]) -> list[bytes]:
            erased = self.keys.prepare_for_writing(pupil_ref(r.pupil_id) for r in rows)
            return [self._sealed_state(row, pupil_ref(row.pupil_id) in erased, done)
                    for row in rows]

        after = 0
        while (last := self.process_recorder.rewrite_plain_rows(
                rewrite, after=after, limit=batch, pupil_id=one)) is not None:
            after = last
        return done

    def _sealed_state(self, row: StoredRow, erased: bool, done: SealedEvents) -> bytes:
        plain, mapper = row.stored_event, self.sealing_mapper
        event: Any = None
        try:  # a plain row reads with eventsourcing's plain transcoding
            event = mapper.to_domain_event(plain)
            header = SealedHeader(getattr(event, "event_hash", ""),
                                  getattr(event, "previous_hash", ""),
                                  getattr(event, "event_id", ""))
        except Exception:  # altered so that it no longer reads: sealed as it stands
            header = _loose_header(plain.state)
            done.unreadable += 1
        if not erased:
            try:
                if event is not None:
                    again = mapper.to_stored_event(event)
                    if (again.originator_id, again.originator_version, again.topic) == (
                            plain.originator_id, plain.originator_version, plain.topic):
                        done.sealed += 1
                        return again.state
                sealed = mapper.sealed(plain, header).state  # its own bytes, its own place
                done.sealed += 1
                return sealed
            except PupilErased:  # erased while this ran
                pass
        done.shredded += 1
        return mapper.shredded(plain, header).state

    def _already_erased(self, event: SchoolEventRecord, erased: Mapping[str, Erasure]) -> bool:
        """True for a redelivery of an erased pupil's event; raises for a new one."""
        pupil_id = pupil_id_for(event.upn)
        erasure = erased.get(pupil_ref(pupil_id))
        if erasure is None:
            return False
        ids = {h.event_id for s in self.recorder.select_events(pupil_id)
               if (h := header_of(s)) is not None}
        if event.event_id in ids:
            return True
        raise PupilHistoryErased(PupilErased(erasure))

    def history_events(self, upn: str) -> list[SENHistoryEvent]:
        """The pupil's whole history, in the order it was recorded."""
        return cast(
            list[SENHistoryEvent], list(self.events.get(pupil_id_for(upn)))
        )

    def replay(self, upn: str, *, known_at: datetime | None = None,
               as_of_day: date | None = None) -> list[SENHistoryEvent]:
        """A pupil's history on one of the two time axes, read through the repository.

        `known_at`: as the hub held it at that instant (recording time). `as_of_day`:
        what had happened by that day (occurrence time), as known now.
        """
        if (known_at is None) == (as_of_day is None):
            raise ValueError("give exactly one of known_at and as_of_day")
        projector: Projector = as_known_at(known_at) if known_at else as_of(cast(date, as_of_day))
        try:
            state = self.repository.get(pupil_id_for(upn), projector_func=cast(Any, projector))
        except AggregateNotFoundError:
            return []
        return list(cast(RecordedHistory, state).events)

    def _read(self, stored: StoredEvent) -> StoredItem:
        try:
            return cast(SENHistoryEvent, self.mapper.to_domain_event(stored))
        except PupilErased as erased:
            header = header_of(stored)
            if header is None:
                return f"erased, and its stored hashes cannot be read ({erased.erasure.describe()})"
            return ErasedEntry(stored.originator_version, header.event_hash,
                               header.previous_hash, erased.erasure.describe())
        except Exception as exc:  # a tampered row may not even decode
            return f"{type(exc).__name__}: {exc}"

    def erasure_of(self, upn: str) -> str | None:
        """"erased on D by X because Y" when the pupil's history was erased."""
        erasure = self.keys.erasure_of(pupil_ref(pupil_id_for(upn)))
        return erasure.describe() if erasure else None

    def _stored_items(self, pupil_id: UUID) -> list[tuple[int, StoredItem]]:
        return [(s.originator_version, self._read(s))
                for s in self.recorder.select_events(pupil_id)]

    def verify_pupil(self, upn: str) -> tuple[int, ChainBreak | None]:
        """(events checked, first break) for one pupil, from the stored rows themselves."""
        pupil_id = pupil_id_for(upn)
        items = self._stored_items(pupil_id)
        return len(items), first_break(pupil_id, items)

    def stored_head(self, upn: str) -> str | None:
        """The hash the pupil's newest stored event claims (erased or not); None: none."""
        items = self._stored_items(pupil_id_for(upn))
        newest = items[-1][1] if items else None
        return None if newest is None or isinstance(newest, str) else newest.event_hash

    def verify_pupil_against_anchors(self, upn: str, anchored: dict[int, tuple[str, str]]
                                     ) -> tuple[int, ChainBreak | None]:
        """One pupil's stored rows against the heads anchored for them ({version: (head,
        when)}): (heads compared, first mismatch), without reading anyone else's."""
        pupil_id = pupil_id_for(upn)
        return anchor_break(pupil_id, self._stored_items(pupil_id), anchored)

    def pupil_count(self) -> int:
        return self.process_recorder.pupil_count()

    def stored_streams(self, *, from_pupil: UUID | None = None, to_pupil: UUID | None = None
                       ) -> Iterator[tuple[UUID, list[tuple[int, StoredItem]]]]:
        """Every pupil's stored events (of the pupils from `from_pupil` to `to_pupil`, not
        included, when given), one pupil at a time (memory: a page of rows). The keys of a
        page's pupils are fetched in one round trip, not one per pupil."""
        pupil: UUID | None = None
        items: list[tuple[int, StoredItem]] = []
        read = self._read
        for page in self.process_recorder.stored_pages_by_pupil(from_pupil=from_pupil,
                                                                to_pupil=to_pupil):
            self.keys.prepare_for_reading(map(pupil_ref, {row.pupil_id for row in page}))
            for row in page:
                if row.pupil_id != pupil and pupil is not None:
                    yield pupil, items
                    items = []
                pupil = row.pupil_id
                items.append((row.version, read(row.stored_event)))
        if pupil is not None:
            yield pupil, items

    def verify_all(self, on_checked: Callable[[int], None] | None = None, *,
                   workers: int | None = None) -> tuple[int, int, list[ChainBreak]]:
        """(pupils, events, first break per broken pupil) over the whole store, pupil by
        pupil; `on_checked(pupils so far)` is called after each, for a progress bar.
        Erased pupils are checked too (by the hashes kept beside their sealed events).

        `workers`: processes to share the pupils among (this one included), by ranges of
        pupil ids, each checking its pupils' rows wholly (`services/records/
        verification.py`); None: one per core once the store is big enough to gain. The in-memory store,
        and keys given to the application rather than read from its settings, are
        verified in this process only."""
        workers = self._verify_workers(workers)
        if workers <= 1:
            return self.verify_pupil_range(None, None, on_checked)
        events_stored = self.recorder.max_notification_id() or 0
        ranges = pupil_ranges(min(MAX_VERIFY_RANGES,
                                  max(4 * workers, events_stored // EVENTS_PER_RANGE)))
        checked = 0

        def range_checked(pupils: int) -> None:
            nonlocal checked
            for done in range(checked + 1, checked + pupils + 1):
                if on_checked:
                    on_checked(done)
            checked += pupils

        results = verify_in_processes(RecordsApplication, self.env, ranges, workers,
                                      lambda pupils: self.verify_pupil_range(*pupils),
                                      range_checked)
        return (sum(pupils for pupils, _, _ in results), sum(events for _, events, _ in results),
                [found for _, _, breaks in results for found in breaks])

    def verify_pupil_range(self, from_pupil: UUID | None, to_pupil: UUID | None,
                           on_checked: Callable[[int], None] | None = None
                           ) -> tuple[int, int, list[ChainBreak]]:
        """`verify_all` of the pupils from `from_pupil` to `to_pupil` (not included), in
        this process; None: no bound."""
        pupils = events = 0
        breaks = []
        for pupil_id, items in self.stored_streams(from_pupil=from_pupil, to_pupil=to_pupil):
            pupils += 1
            events += len(items)
            found = first_break(pupil_id, items)
            if found:
                breaks.append(replace(found, upn=upn_in(items)))
            if on_checked:
                on_checked(pupils)
        return pupils, events, breaks

    def _verify_workers(self, asked: int | None) -> int:
        """How many processes verify: one where others could not open the same rows (the
        in-memory store; keys given rather than read from the settings)."""
        if not self._keys_from_settings or not isinstance(
                self.process_recorder, PostgresRecordsRecorder):
            return 1
        if asked is not None:
            return asked
        if (self.recorder.max_notification_id() or 0) < PARALLEL_VERIFY_FROM:
            return 1
        return min(MAX_VERIFY_WORKERS, len(os.sched_getaffinity(0)))

    def verify_against_anchors(
        self, anchored: dict[UUID, dict[int, tuple[str, str]]],
    ) -> tuple[int, list[ChainBreak]]:
        """Compare the store with chain heads held in Kafka: {pupil: {version: (head, when)}}.

        Catches what the chain alone cannot: whole chains rewritten with fresh hashes, and
        pupils or newest events deleted outright. Returns (heads checked, mismatches).
        """
        checked = 0
        mismatches: list[ChainBreak] = []
        seen: set[UUID] = set()
        for pupil_id, items in self.stored_streams():
            seen.add(pupil_id)
            compared, found = anchor_break(pupil_id, items, anchored.get(pupil_id, {}))
            checked += compared
            if found:
                mismatches.append(found)
        for pupil_id in sorted(set(anchored) - seen):
            compared, found = anchor_break(pupil_id, [], anchored[pupil_id])
            checked += compared
            if found:
                mismatches.append(found)
        return checked, mismatches

    def heads_between(self, after: int, limit: int) -> AnchorHeads | None:
        """Chain heads of the pupils whose histories grew after notification `after`."""
        page = self.notifications(after, limit)
        if not page:
            return None
        heads: dict[UUID, tuple[int, str]] = {}
        for n in page:
            item = self._read(n)
            header = header_of(n)
            # An unreadable (tampered) row is anchored as it claims to be; verify reports it.
            head = (item.event_hash if not isinstance(item, str) else header.event_hash
                    if header else f"unreadable: {item}"[:200])
            pupil_id = UUID(str(n.originator_id))
            if pupil_id not in heads or heads[pupil_id][0] < n.originator_version:
                heads[pupil_id] = (n.originator_version, head)
        return AnchorHeads(after=after, up_to=page[-1].id, heads=heads)

    def all_heads(self, up_to: int) -> list[tuple[UUID, int, str]]:
        """Every pupil's chain head as it stood at notification `up_to`: one row per pupil,
        read with one query (the newest stored event of each stream)."""
        heads = []
        for row in self.process_recorder.newest_rows(up_to):
            event = self._read(row.stored_event)
            head = (chain_hash(event) if isinstance(event, SENHistoryEvent) else event.event_hash
                    if isinstance(event, ErasedEntry) else f"unreadable: {event}")
            heads.append((row.pupil_id, row.version, head))
        return heads

    ANCHOR_KEY = "anchor#audit"

    def anchored_up_to(self) -> int:
        return self.process_recorder.max_tracking_id(self.ANCHOR_KEY) or 0

    def mark_anchored(self, notification_id: int) -> None:
        self.process_recorder.insert_tracking(Tracking(self.ANCHOR_KEY, notification_id))

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )

    def to_history_event(self, notification: Notification) -> SENHistoryEvent | None:
        """The notification's event; None when its pupil was erased (nothing to relay)."""
        try:
            return cast(SENHistoryEvent, self.mapper.to_domain_event(notification))
        except PupilErased:
            return None

    RELAY_KEY = "relay#pupil-history"

    def relayed_up_to(self) -> int:
        """The last notification id relayed to Kafka (0 when none)."""
        return self.process_recorder.max_tracking_id(self.RELAY_KEY) or 0

    def mark_relayed(self, notification_id: int) -> None:
        self.process_recorder.insert_tracking(Tracking(self.RELAY_KEY, notification_id))


def seal_stored_history(settings: HubSettings, keys: PupilKeys, *,
                        pupil_id: UUID | str | None = None, batch: int = 500) -> SealedEvents:
    """`RecordsApplication.seal_stored_events` with these settings' database user (the
    owner: records' own role cannot UPDATE its rows) and these keys (the caller's, so an
    erasure it just made is seen at once). `pupil_id`: the pupil's stream id
    (`pupil_ref_for_upn`), or None for every pupil."""
    app = RecordsApplication(env=settings.eventsourcing_env(), keys=keys)
    try:
        return app.seal_stored_events(pupil_id=pupil_id, batch=batch)
    finally:
        app.close()
