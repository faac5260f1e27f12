"""The hub's main job, demonstrated: infrastructure and services up, a scenario in,
packets out, a readable summary, and everything it started stopped again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import psycopg
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.rule import Rule

from contracts.dead_letter import DeadLetterV1
from contracts.packet import TransferPacketV1
from sendhub import scenario
from sendhub.publishing import publish_lines
from sendhub.summaries import dead_letter_summary, packet_summary
from sendhub.topics_reader import read_topic
from services.shared.settings import HubSettings
from services.transfers.domain import packet_id_for

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ingest", "records", "transfers")
WAIT_SECONDS = 180


def kafka_answers(settings: HubSettings) -> bool:
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=2).close()
    except OSError:
        return False  # fast answer when nothing listens
    try:
        KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                      request_timeout_ms=3000).close()
        return True
    except KafkaError:
        return False


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


def run_demo(settings: HubSettings, console: Console, keep_infrastructure: bool = False) -> int:
    console.print(Rule("SEN transfer hub: demonstration"))
    missing = [name for name, answers in (("kafka", kafka_answers), ("postgres", postgres_answers))
               if not answers(settings)]
    if missing:
        console.print(f"Not running: {', '.join(missing)}; starting with deploy/local/up")
        subprocess.run([str(ROOT / "deploy/local/up")], check=True)
    else:
        console.print(f"Using the running Kafka ({settings.kafka_bootstrap}) and PostgreSQL.")
    log_dir = ROOT / ".cache" / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), console=console) as progress:
            for name in SERVICES:
                procs[name] = start_service(name, log_dir)
            wait_until_started(procs, progress)
            lines = scenario.scenario_lines()
            sent = publish_lines(settings, lines)
            progress.add_task("school events published", total=len(lines), completed=sent.count)
            invalid_index = next(i for i, line in enumerate(lines)
                                 if scenario.INVALID_EVENT_ID.encode() in line)
            invalid_position = sent.positions[invalid_index]
            expected = {
                packet_id_for(pupil.upn, UUID(move_id)): receiver
                for pupil, move_id, receiver in scenario.MOVES
            }
            packets, letter = wait_for_results(settings, expected, invalid_position, progress)
        show_results(console, settings, expected, packets, letter, log_dir)
        return 0 if len(packets) == len(expected) and letter is not None else 1
    finally:
        console.print("Stopping the services...")
        stop_services(procs)
        if missing and not keep_infrastructure:
            console.print(f"Stopping what the demonstration started: {', '.join(missing)}")
            subprocess.run([str(ROOT / "deploy/local/down"), *missing], check=False)


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
            for record in read_topic(settings.kafka_bootstrap, settings.topics.inbox(receiver)):
                packet = TransferPacketV1.model_validate_json(record.value, extra="ignore")
                if packet.packet_id in expected:
                    packets[packet.packet_id] = packet
        if letter is None:
            for record in read_topic(settings.kafka_bootstrap, settings.topics.rejected):
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
