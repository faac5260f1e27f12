"""The three services running as separate processes against the real broker and database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from contracts.dead_letter import DeadLetterV1
from contracts.packet import TransferPacketV1
from sendhub.topics_reader import read_topic
from services.shared.kafka import client_options
from services.shared.settings import HubSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "records", "transfers")


def http_port_in(log: Path) -> int:
    """The HTTP port a service logged as bound (`http.listening`)."""
    for line in log.read_text().splitlines():
        if '"http.listening"' in line:
            return int(json.loads(line)["port"])
    raise RuntimeError(f"{log.name}: no http.listening line")


class RunningServices:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}-{self.starts[name]}.log"

    def start(self, service: str, instance: int = 1) -> str:
        """Start one instance of a service; its name is the service's for the first
        instance, `<service>-<n>` for others. Each instance keeps its own instance id
        across restarts (static group membership)."""
        name = service if instance == 1 else f"{service}-{instance}"
        self.starts[name] = self.starts.get(name, 0) + 1
        log = self.log_path(name).open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "sendhub.cli", "serve", service],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**self.env, "SENDHUB_INSTANCE_ID": str(instance)},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_path(name).read_text()[-3000:]}")
            if b"started successfully" in self.log_path(name).read_bytes():
                return name
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not start in 60 s")

    def stop(self, name: str) -> None:
        """SIGTERM: the instance finishes the batch in hand, commits and leaves."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    def http_port(self, name: str) -> int:
        """The port the service's /healthz, /readyz and /metrics are on (it logs it)."""
        return http_port_in(self.log_path(name))

    def kill(self, name: str) -> None:
        """SIGKILL: no clean shutdown, no last commit; what a crash looks like."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def services(hub_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningServices]:
    log_dir = ROOT / "test-artifacts" / "service-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    running = RunningServices(hub_env, log_dir)
    try:
        for name in SERVICES:
            running.start(name)
        yield running
    finally:
        running.stop_all()


def eventually(check: Any, seconds: float = 60) -> Any:
    """Retry `check` until its assertions hold (the services work asynchronously)."""
    for attempt in Retrying(stop=stop_after_delay(seconds), wait=wait_fixed(0.5),
                            retry=retry_if_exception_type(AssertionError), reraise=True):
        with attempt:
            return check()


def inbox(settings: HubSettings, receiver: str) -> list[tuple[TransferPacketV1, dict[str, bytes]]]:
    """Every packet in a receiver's inbox topic, in order, with its headers."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_options(settings), group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    topic = settings.topics.inbox(receiver)
    found = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return []
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    found.append((TransferPacketV1.model_validate_json(r.value),
                                  dict(r.headers or [])))
    finally:
        consumer.close()
    return found


def packets_for(settings: HubSettings, receiver: str, upn: str) -> list[TransferPacketV1]:
    return [p for p, _ in inbox(settings, receiver) if p.pupil.upn == upn]


def dead_letters(settings: HubSettings) -> list[DeadLetterV1]:
    return [DeadLetterV1.model_validate_json(r.value)
            for r in read_topic(settings, settings.topics.rejected)]
