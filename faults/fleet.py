"""The three services as processes, any number of instances each, for one phase.

Each instance gets its own environment: `SENDHUB_INSTANCE_ID=<service>-<n>` and
`SENDHUB_HTTP_PORT=0` (so several instances of a service on one machine do not fight
over a port; both are harmless to a hub that does not read them yet).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ingest", "records", "transfers")
STARTED = b"started successfully"


@dataclass
class Instance:
    service: str
    number: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def name(self) -> str:
        return f"{self.service}-{self.number}"

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Fleet:
    env: dict[str, str]
    log_dir: Path
    instances: dict[str, Instance] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    def start(self, service: str, number: int) -> Instance:
        name = f"{service}-{number}"
        self.starts[name] = self.starts.get(name, 0) + 1
        log = self.log_dir / f"{name}.{self.starts[name]}.log"
        env = {**os.environ, **self.env, "SENDHUB_INSTANCE_ID": name, "SENDHUB_HTTP_PORT": "0"}
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "sendhub.cli", "serve", service],
                                       stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
        instance = Instance(service, number, process, log)
        self.instances[name] = instance
        return instance

    def start_all(self, per_service: int, timeout_s: float = 90) -> None:
        """Start every instance at once and wait until each says it started."""
        started = [self.start(s, n) for s in SERVICES for n in range(1, per_service + 1)]
        for instance in started:
            self.wait_started(instance, timeout_s)

    def wait_started(self, instance: Instance, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not instance.alive():
                raise RuntimeError(f"{instance.name} exited at start: "
                                   f"{instance.log.read_text(errors='replace')[-2000:]}")
            if STARTED in instance.log.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{instance.name} did not start within {timeout_s:.0f} s")

    def running(self, service: str | None = None) -> list[Instance]:
        return [i for i in self.instances.values()
                if i.alive() and (service is None or i.service == service)]

    def kill(self, name: str) -> None:
        """kill -9: no shutdown, no last commit, what a crash looks like."""
        instance = self.instances[name]
        instance.process.send_signal(signal.SIGKILL)
        instance.process.wait(timeout=10)

    def terminate(self, name: str, timeout_s: float = 30) -> None:
        """SIGTERM, as an orchestrator stops a process; SIGKILL if it hangs."""
        process = self.instances[name].process
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop_all(self) -> None:
        live = [i for i in self.instances.values() if i.alive()]
        for instance in live:
            instance.process.send_signal(signal.SIGTERM)
        for instance in live:
            try:
                instance.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait(timeout=10)

    def trim_logs(self, keep: int = 4_000_000) -> None:
        """Cut each log over `keep` bytes to its first and last quarter of that: a poison
        message can make a service log hundreds of MB a minute (the sizes are reported
        before this)."""
        for log in self.log_dir.glob("*.log"):
            size = log.stat().st_size
            if size <= keep:
                continue
            with log.open("rb") as f:
                head = f.read(keep // 4)
                f.seek(size - keep // 4)
                tail = f.read()
            log.write_bytes(head + f"\n... {size - len(head) - len(tail)} bytes cut by the fault "
                                   "suite ...\n".encode() + tail)

    def log_bytes(self) -> dict[str, int]:
        """Bytes each service logged (all instances, all starts): a flood shows here."""
        sizes: dict[str, int] = {}
        for log in self.log_dir.glob("*.log"):
            service = log.name.split("-", 1)[0]
            sizes[service] = sizes.get(service, 0) + log.stat().st_size
        return sizes
