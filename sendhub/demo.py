"""The hub's main job, demonstrated: infrastructure and services up, the settings
registry loaded, a scenario in, packets out in three forms, receipts back, a late entry
amended, a lost pupil found, an auditor's replay and chain check, and everything it
started stopped again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psycopg
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.rule import Rule

from contracts.dead_letter import DeadLetterV1
from contracts.packet import TransferPacketV1
from sendhub import demo_web, scenario
from sendhub.access_log import Reader
from sendhub.demo_access import (
    BRISTOL,
    BRISTOL_TOKEN,
    HttpsSchools,
    add_demo_principals,
    show_refused_attempts,
)
from sendhub.publishing import publish_lines, publish_receipts
from sendhub.summaries import dead_letter_summary, deliveries_table, packet_summary
from sendhub.topics_reader import read_topic
from services.records.entrypoint import build_application
from services.shared.binding import WrongCluster, bind
from services.shared.database import drop_database, upgrade
from services.shared.kafka import client_options
from services.shared.principals import PrincipalStore
from services.shared.pupil_keys import pupil_keys_for
from services.shared.school_days import parse_term_dates_csv
from services.shared.school_terms_store import import_terms
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from services.transfers.forms import render
from services.transfers.packets import packet_id_for
from services.transfers.registry import parse_registry_csv

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ingest", "records", "transfers")
WAIT_SECONDS = 180


def kafka_answers(settings: HubSettings) -> bool:
    if not _listening(settings.kafka_bootstrap):
        return False  # fast answer when nothing listens
    try:
        KafkaConsumer(**client_options(settings), request_timeout_ms=3000).close()
        return True
    except KafkaError:
        return False


def _listening(address: str) -> bool:
    host, _, port = address.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=2).close()
        return True
    except OSError:
        return False


def _pg_address(settings: HubSettings) -> str:
    host = settings.database_url.hosts()[0]
    return f"{host['host'] or '127.0.0.1'}:{host['port'] or 5432}"


def postgres_answers(settings: HubSettings) -> bool:
    try:
        psycopg.connect(settings.database_conninfo, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


def start_service(name: str, log_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sendhub.cli", "serve", name],
        stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ.copy(),
    )
    return process, log_path


def wait_until_started(procs: dict[str, tuple[subprocess.Popen[bytes], Path]],
                       progress: Progress) -> None:
    task = progress.add_task("starting services", total=len(procs))
    waiting = set(procs)
    deadline = time.monotonic() + 60
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            process, log_path = procs[name]
            if process.poll() is not None:
                raise RuntimeError(f"the {name} service exited; see {log_path}")
            if b"started successfully" in log_path.read_bytes():
                waiting.discard(name)
                progress.advance(task)
        time.sleep(0.2)
    if waiting:
        raise RuntimeError(f"services did not start within 60 s: {sorted(waiting)}")


def stop_services(procs: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> None:
    for process, _ in procs.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, _ in procs.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def ensure_infrastructure(settings: HubSettings, console: Console) -> list[str]:
    """Start with deploy/local/up what is not running; return what it started, so the
    demo stops only that. A server that runs but lacks the hub's database or role is
    only completed by deploy/local/up."""
    missing = [name for name, listening in (("kafka", _listening(settings.kafka_bootstrap)),
                                            ("postgres", _listening(_pg_address(settings))))
               if not listening]
    if missing or not (kafka_answers(settings) and postgres_answers(settings)):
        console.print("Starting with deploy/local/up"
                      + (f" (not running: {', '.join(missing)})" if missing else ""))
        subprocess.run([str(ROOT / "deploy/local/up")], check=True)
    else:
        console.print(f"Using the running Kafka ({settings.kafka_bootstrap}) and PostgreSQL.")
    return missing


def prepare_database(settings: HubSettings, console: Console, fresh: bool
                     ) -> TransfersApplication | None:
    """Schema at head, bound to this cluster, the registry sample loaded; None (with the
    reason shown) when the database belongs to another cluster."""
    if fresh:
        recreate_database(settings, console)
    console.print(f"Database schema at revision {upgrade(settings)}.")
    try:
        bind(settings)
    except WrongCluster as exc:
        console.print(f"[red]Cannot run the demonstration: {exc}[/red]\n"
                      "To run it on an empty database instead: sendhub demo --fresh")
        return None
    store = TransfersApplication.on_postgres(
        settings.database_conninfo, keys=pupil_keys_for(settings),
        resend_after_school_days=settings.resend_after_school_days)
    registry, problems = parse_registry_csv((ROOT / REGISTRY_SAMPLE).read_text())
    store.import_settings(registry)
    console.print(f"Settings registry: {len(registry)} schools and colleges from "
                  f"{REGISTRY_SAMPLE} ({len(problems)} rows skipped)")
    terms, term_problems = parse_term_dates_csv((ROOT / TERM_DATES_SAMPLE).read_text())
    per_la = import_terms(settings.database_conninfo, terms, datetime.now(UTC))
    console.print(f"Term dates: {', '.join(f'LA {la} {n} periods' for la, n in per_la.items())}"
                  f" from {TERM_DATES_SAMPLE} ({len(term_problems)} rows skipped); other LAs "
                  "count weekdays less England's bank holidays")
    return store


DEMO_KEY_CACHE_SECONDS = 2.0
"""The demo's services ask for a pupil's key again after 2 s (60 by default), so its
erasure's second pass over the topics waits 3 s, not a minute."""


def run_demo(settings: HubSettings, console: Console, keep_infrastructure: bool = False,
             fresh: bool = False) -> int:
    console.print(Rule("SEN transfer hub: demonstration"))
    os.environ.setdefault("SENDHUB_KEY_CACHE_SECONDS", str(DEMO_KEY_CACHE_SECONDS))
    settings = settings.model_copy(update={"key_cache_seconds": float(
        os.environ["SENDHUB_KEY_CACHE_SECONDS"])})
    missing = ensure_infrastructure(settings, console)
    log_dir = ROOT / ".cache" / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    store: TransfersApplication | None = None
    try:
        store = prepare_database(settings, console, fresh)
        if store is None:
            return 1
        return play_scenario(settings, console, store, procs, log_dir)
    finally:
        if store is not None:
            store.close()
        if procs:
            console.print("Stopping the services...")
            stop_services(procs)
        if missing and not keep_infrastructure:
            console.print(f"Stopping what the demonstration started: {', '.join(missing)}")
            subprocess.run([str(ROOT / "deploy/local/down"), *missing], check=False)


def play_scenario(settings: HubSettings, console: Console, store: TransfersApplication,
                  procs: dict[str, tuple[subprocess.Popen[bytes], Path]], log_dir: Path) -> int:
    """Services up, the scenario's events in, packets and receipts out, then the later
    events (an amendment, a re-route) and the auditor's view."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), console=console) as progress:
        token = add_demo_principals(settings)
        https = HttpsSchools(settings, log_dir)
        for name in SERVICES:
            procs[name] = start_service(name, log_dir)
        wait_until_started(procs, progress)
        procs["gateway"] = (https.start(), https.log_path)
        lines = scenario.scenario_lines()
        sent = publish_lines(settings, lines)
        progress.add_task("school events published", total=len(lines), completed=sent.count)
        invalid_index = next(i for i, line in enumerate(lines)
                             if scenario.INVALID_EVENT_ID.encode() in line)
        expected = {packet_id_for(pupil.upn, UUID(move_id)): receiver
                    for pupil, move_id, receiver in scenario.MOVES}
        packets, letter = wait_for_results(settings, expected, sent.positions[invalid_index],
                                           progress)
        if len(packets) < len(expected):
            progress.stop()
            show_results(console, settings, expected, packets, letter, log_dir)
            console.print(f"[red]Only {len(packets)} of {len(expected)} packets arrived in "
                          f"{WAIT_SECONDS} s; see the service logs in {log_dir}.[/red]")
            return 1
        receipts_sent = publish_receipts(settings, scenario.demo_receipts(packets))
        known_before_later_events = datetime.now(UTC)
        later = scenario.later_events()  # each school sends its own, over HTTPS
        told = https.send(later)
        progress.add_task("later events sent over HTTPS (weeks on)", total=len(later),
                          completed=len(later))
        later_packets = wait_for_later(settings, progress)
        wait_for_receipts(store, progress)
    show_results(console, settings, expected, packets, letter, log_dir)
    console.print(Rule("Schools without Kafka: the HTTPS gateway"))
    for line in told:
        console.print(line)
    show_later(console, settings, store, later_packets, receipts_sent.positions[-1],
               known_before_later_events)
    show_erasure(settings, console)
    show_local_authority(settings, console, log_dir)
    refused = show_refused_attempts(settings, console, scenario.impersonation())
    console.print("Try, as the demo's auditor: export SENDHUB_TOKEN_FILE="
                  f"{token.relative_to(ROOT)}; sendhub history {scenario.AMIRA.upn} --as-of "
                  f"2025-12-31 --reason demo; sendhub report {scenario.CHLOE.upn} --reason demo; "
                  "sendhub verify --all --against-anchors")
    admin, admin_log, link = demo_web.start_admin(log_dir)
    procs["admin"] = (admin, admin_log)
    demo_web.show_web(console, https.url, demo_web.web_sign_ins(settings), link)
    ok = letter is not None and later_packets.complete and refused
    if ok:
        demo_web.keep_serving(console)
    return 0 if ok else 1


def show_erasure(settings: HubSettings, console: Console) -> None:
    """Harry's parents objected; the trust's DPO authorised the erasure of the hub's copy
    (as `sendhub erase` does it). On a second run it is already done, and says so."""
    from sendhub.erasure import erase_pupils

    harry = scenario.HARRY
    console.print(Rule("An erasure: the hub's copy of Harry's record (sendhub erase)"))
    records = build_application(settings)
    held = len(records.history_events(harry.upn)) if records.erasure_of(harry.upn) is None else 0
    (report,) = erase_pupils(settings, [harry.upn], reason=scenario.HARRY_ERASURE_REASON,
                             authorised_by=scenario.HARRY_ERASURE_AUTHORISED_BY)
    console.print(f"Harry ({harry.upn}): {report.erasure.describe()}"
                  + (f"; {held} events held until now." if report.first_time
                     else " (done on an earlier run)."))
    console.print(f"His data key is destroyed; in the hub's tables he is now {report.pseudonym}; "
                  f"{report.topics.total_removed} message(s) about him removed from Kafka, "
                  f"{sum(report.topics.copied.values())} others' copied forward.")
    checked, broken = build_application(settings).verify_pupil(harry.upn)
    console.print(f"sendhub verify {harry.upn}: {checked} events, chain "
                  + ("[green]intact[/green]" if broken is None else f"[red]{broken.problem}[/red]")
                  + f"; {records.erasure_of(harry.upn)}.")
    console.print("No packet about him was built, so no receiver holds a copy."
                  if not report.receivers else
                  f"Receivers to tell: {', '.join(r.receiver for r in report.receivers)}.")


def show_local_authority(settings: HubSettings, console: Console, log_dir: Path) -> None:
    """Bristol's (LA 801) view across its schools over the scenario's two school years:
    Ben's plan (decided in week 5, issued in week 19, amended for secondary school
    before 15 February), Ella's request declined four days late, Grace's possible child
    missing education, each school's files; then the page with its charts."""
    from sendhub.commands.oversight import print_oversight
    from sendhub.oversight import Window
    from sendhub.oversight_page import render_page
    from sendhub.oversight_store import gather_oversight
    from services.shared.clocks import LocalPolicy

    console.print(Rule("The local authority: Bristol (LA 801)"))
    window = Window(date(2024, 9, 1), date(2026, 8, 31))
    bristol = PrincipalStore(settings.database_conninfo).active(BRISTOL.name) or BRISTOL
    keys = pupil_keys_for(settings)
    try:
        result = gather_oversight(
            settings.database_conninfo, bristol, keys=keys, la="801", window=window,
            today=datetime.now(UTC).date(),
            policy=LocalPolicy(concern_open_weeks=settings.policy_concern_open_weeks),
            reader=Reader.of(BRISTOL.name,
                             "demo: Bristol's SEND team reviews its statutory clocks"))
    finally:
        keys.close()
    print_oversight(console, result)
    console.print("The files were sent today for moves the scenario replays from 2024 to "
                  "2026, so none was within 15 school days of the pupil leaving: a hub "
                  "connected at the time sends each as the move is recorded.")
    page = log_dir / "oversight-la-801.html"
    page.write_text(render_page(result, generated_at=datetime.now(UTC), actor=BRISTOL.name))
    console.print(f"Bristol's oversight page (charts, and the pupils behind each figure): "
                  f"{page.relative_to(ROOT)}. As Bristol: export SENDHUB_TOKEN_FILE="
                  f"{BRISTOL_TOKEN.relative_to(ROOT)}; sendhub oversight --la 801 --from "
                  f"{window.start} --to {window.end} --format html --reason demo")


def recreate_database(settings: HubSettings, console: Console) -> None:
    """`--fresh`: drop the hub's database and create it empty (its owner may do both)."""
    name = settings.database_url.path.lstrip("/") if settings.database_url.path else ""
    admin = settings.database_conninfo.rsplit("/", 1)[0] + "/postgres"
    drop_database(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    console.print(f"Started from an empty database: {name}")


REGISTRY_SAMPLE = "data/settings-registry-sample.csv"
TERM_DATES_SAMPLE = "data/term-dates-sample.csv"
FORMS_DIR = ROOT / ".cache" / "demo" / "forms"


@dataclass(frozen=True)
class Later:
    """What the later events produced: Amira's amendment (Oakfield's late entry), Grace's
    packet to the school found, and Ben's amendment (Riverside's retraction)."""

    amended: TransferPacketV1 | None
    found: TransferPacketV1 | None
    withdrawn: TransferPacketV1 | None

    @property
    def complete(self) -> bool:
        return None not in (self.amended, self.found, self.withdrawn)


def wait_for_later(settings: HubSettings, progress: Progress) -> Later:
    task = progress.add_task("amendments and re-routed packet", total=3)
    grace_id = packet_id_for(scenario.GRACE.upn, UUID(scenario.LATER_MOVES[0][1]))
    later = Later(None, None, None)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and not later.complete:
        for record in read_topic(settings, settings.topics.inbox("urn-131002")):
            packet = TransferPacketV1.model_validate_json(record.value, extra="ignore")
            if packet.pupil.upn == scenario.AMIRA.upn and packet.supersedes:
                later = replace(later, amended=packet)
        for record in read_topic(settings, settings.topics.inbox("urn-137004")):
            packet = TransferPacketV1.model_validate_json(record.value, extra="ignore")
            if packet.packet_id == grace_id:
                later = replace(later, found=packet)
        for record in read_topic(settings, settings.topics.inbox("urn-137003")):
            packet = TransferPacketV1.model_validate_json(record.value, extra="ignore")
            if packet.pupil.upn == scenario.BEN.upn and packet.supersedes:
                later = replace(later, withdrawn=packet)
        progress.update(task, completed=sum(p is not None for p in (
            later.amended, later.found, later.withdrawn)))
        if not later.complete:
            time.sleep(1.0)
    return later


def wait_for_receipts(store: TransfersApplication, progress: Progress) -> None:
    task = progress.add_task("receipts recorded", total=3)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = {d.upn: d.delivery.state for d in store.deliveries() if d.kind == "first"}
        # Amira's and Ben's first packets were amended since (a late entry, a retraction).
        done = sum(states.get(p.upn) == s for p, s in ((scenario.AMIRA, "superseded"),
                                                         (scenario.BEN, "superseded"),
                                                         (scenario.CHLOE, "accepted")))
        progress.update(task, completed=done)
        if done == 3:
            return
        time.sleep(0.5)


def wait_for_results(
    settings: HubSettings, expected: dict[UUID, str], invalid_position: tuple[int, int],
    progress: Progress,
) -> tuple[dict[UUID, TransferPacketV1], DeadLetterV1 | None]:
    packets: dict[UUID, TransferPacketV1] = {}
    letter: DeadLetterV1 | None = None
    task = progress.add_task("transfer packets delivered", total=len(expected))
    rejected_task = progress.add_task("invalid event dead-lettered", total=1)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for receiver in sorted(set(expected.values())):
            for record in read_topic(settings, settings.topics.inbox(receiver)):
                packet = TransferPacketV1.model_validate_json(record.value, extra="ignore")
                if packet.packet_id in expected:
                    packets[packet.packet_id] = packet
        if letter is None:
            for record in read_topic(settings, settings.topics.rejected):
                candidate = DeadLetterV1.model_validate_json(record.value)
                if (candidate.source_topic == settings.topics.school_events
                        and (candidate.partition, candidate.offset) == invalid_position):
                    letter = candidate
        progress.update(task, completed=len(packets))
        progress.update(rejected_task, completed=0 if letter is None else 1)
        if len(packets) == len(expected) and letter is not None:
            break
        time.sleep(1.0)
    return packets, letter


def show_results(console: Console, settings: HubSettings, expected: dict[UUID, str],
                 packets: dict[UUID, TransferPacketV1], letter: DeadLetterV1 | None,
                 log_dir: Path) -> None:
    for receiver in sorted(set(expected.values())):
        name = scenario.SETTING_NAMES.get(receiver, receiver)
        console.print(Rule(f"Inbox of {name} ({settings.topics.inbox(receiver)})"))
        for packet_id, to in expected.items():
            if to != receiver:
                continue
            if packet_id in packets:
                console.print(packet_summary(packets[packet_id]))
            else:
                console.print(f"[red]Packet {packet_id} has not arrived.[/red]")
    console.print(Rule("Rejected events (sen.rejected.v1)"))
    if letter is None:
        console.print("[red]The invalid event's dead letter was not found.[/red]")
    else:
        console.print(dead_letter_summary(letter))
    console.print(
        f"{len(packets)}/{len(expected)} packets delivered; pupils who stayed got none. "
        f"Service logs: {log_dir}. Read a history with: sendhub history "
        f"{scenario.AMIRA.upn}"
    )


def show_correction(console: Console, withdrawn: TransferPacketV1 | None) -> None:
    """Riverside withdrew a concern about Ben recorded in error: Hillcrest's amendment
    says so, without the concern."""
    console.print(Rule("A school withdraws an entry recorded in error"))
    if withdrawn is None:
        console.print("[red]Ben's amendment (Riverside's retraction) has not arrived.[/red]")
        return
    for change in withdrawn.changes:
        console.print(f"Hillcrest's amendment for Ben: {change}", markup=False, highlight=False)
    left_out = scenario.BEN_CONCERN_IN_ERROR not in withdrawn.model_dump_json()
    console.print(("[green]The withdrawn concern is in none of its forms.[/green]" if left_out
                   else "[red]The withdrawn concern is still in the amended packet.[/red]")
                  + " The auditor's history keeps it, marked: sendhub history "
                  f"{scenario.BEN.upn} --reason demo")


def show_later(console: Console, settings: HubSettings, store: TransfersApplication,
               later: Later, bad_receipt: tuple[int, int], known_at: datetime) -> None:
    amended, found = later.amended, later.found
    console.print(Rule("Weeks later: a late entry and a lost pupil found"))
    for packet in (amended, found):
        if packet is None:
            console.print("[red]An expected packet has not arrived.[/red]")
        else:
            console.print(packet_summary(packet))
    if amended is not None:
        FORMS_DIR.mkdir(parents=True, exist_ok=True)
        console.print(Rule("Riverside's packet for Amira in the three forms"))
        for form, suffix in (("json", "json"), ("ctf", "xml"), ("html", "html")):
            path = FORMS_DIR / f"amira-{amended.packet_id}.{suffix}"
            path.write_bytes(render(amended, form))  # type: ignore[arg-type]
            console.print(f"  {form:5} {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
        excerpt = amended.model_dump(mode="json", include={
            "packet_id", "supersedes", "changes", "sen_status", "current_needs",
            "sen_provision_history", "history_chain_head"})
        console.print("JSON (excerpt):", json.dumps(excerpt, indent=1), markup=False,
                      highlight=False)
        ctf = render(amended, "ctf").decode()
        console.print("CTF (excerpt):")
        console.print(ctf[ctf.index("<SENhistory>"):ctf.index("</SENhistory>") + 13], markup=False,
                      highlight=False)
    show_correction(console, later.withdrawn)
    console.print(Rule("Delivery states (sendhub transfers)"))
    console.print(deliveries_table(store.deliveries(), settings.resend_after_school_days))
    for record in read_topic(settings, settings.topics.rejected):
        letter = DeadLetterV1.model_validate_json(record.value)
        if (letter.source_topic == settings.topics.packet_receipts
                and (letter.partition, letter.offset) == bad_receipt):
            console.print(dead_letter_summary(letter))
    console.print(Rule("An auditor's questions"))
    records = build_application(settings)
    now = records.history_events(scenario.AMIRA.upn)
    # On a second run everything was recorded by the first: ask as of just before the
    # late entry was recorded, whenever that was.
    known_at = min(known_at, now[-1].timestamp - timedelta(microseconds=1))
    then = records.replay(scenario.AMIRA.upn, known_at=known_at)
    console.print(f"Amira's history as the hub knew it at {known_at:%H:%M:%S}: {len(then)} "
                  f"events; now: {len(now)} (Oakfield's late EP assessment, dated 9 January "
                  "2026, was recorded after).")
    started = time.perf_counter()
    pupils, events, breaks = records.verify_all()
    console.print(f"Hash chains: {events} events of {pupils} pupils checked in "
                  f"{time.perf_counter() - started:.2f} s, "
                  + ("[green]all intact[/green]." if not breaks else f"[red]{len(breaks)} broken[/red]."))
