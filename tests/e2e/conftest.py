"""The three services running as separate processes against the real broker and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "records", "transfers")


class RunningServices:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}-{self.starts[name]}.log"

    def start(self, name: str) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        log = self.log_path(name).open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "sendhub.cli", "serve", name],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_path(name).read_text()[-3000:]}")
            if b"started successfully" in self.log_path(name).read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not start in 60 s")

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
