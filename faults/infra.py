"""The broker and the database: a run's own namespace and database, and the two
infrastructure faults (kill -9 of the broker, an immediate restart of PostgreSQL).

The broker is found by the port it listens on, not by a pid file of this checkout: in
CI the checkout's own deploy/local started it, on a developer's machine another
checkout may have. It is restarted with the deploy/local of the checkout it came from
(read from its command line), so that checkout's pid file stays right; a broker started
some other way is restarted with its own command line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from kafka.admin import KafkaAdminClient, NewTopic

from contracts.topics import Topics
from sendhub.principals_admin import forget_namespace, sync
from services.shared.database import drop_database, upgrade
from services.shared.kafka import DEAD_LETTER_MAX_BYTES, client_options
from services.shared.settings import HubSettings

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def kafka_port(settings: HubSettings) -> tuple[str, int]:
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    return host, int(port)


def broker_answers(settings: HubSettings, timeout_s: float = 5.0) -> bool:
    try:
        admin = KafkaAdminClient(**client_options(settings), client_id="sendhub-faults",
                                 request_timeout_ms=int(timeout_s * 1000))
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def wait_for_broker(settings: HubSettings, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if broker_answers(settings):
            return True
        time.sleep(1)
    return False


@dataclass(frozen=True)
class Broker:
    """A running broker process, and how to start it again."""

    pid: int
    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str]

    @property
    def checkout(self) -> Path | None:
        """The checkout whose deploy/local started it (its log4j2 file is in there)."""
        for arg in self.argv:
            found = re.fullmatch(r"-Dlog4j2\.configurationFile=(.+)/deploy/kafka/log4j2\.properties",
                                 arg)
            if found and (Path(found[1]) / "deploy/local/lib.sh").is_file():
                return Path(found[1])
        return None

    @property
    def cache(self) -> Path | None:
        """deploy/local's cache folder: the server.properties it wrote is <cache>/kafka/."""
        config = Path(self.argv[-1]) if self.argv else None
        if config and config.name == "server.properties" and config.parent.name == "kafka":
            return config.parent.parent
        return None


def listener_pid(port: int) -> int | None:
    """The pid listening on 127.0.0.1:`port` (`ss -ltnpH`), or None."""
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found[1]) if found else None


def find_broker(settings: HubSettings) -> Broker | None:
    host, port = kafka_port(settings)
    if host not in LOCAL_HOSTS:
        return None
    pid = listener_pid(port)
    if pid is None:
        return None
    proc = Path(f"/proc/{pid}")
    try:
        argv = tuple(a for a in (proc / "cmdline").read_bytes().decode().split("\0") if a)
        environ = (proc / "environ").read_bytes().decode(errors="replace").split("\0")
        cwd = os.readlink(proc / "cwd")
    except OSError:
        return None
    env = dict(item.split("=", 1) for item in environ if "=" in item)
    return Broker(pid, argv, cwd, env)


def kill_broker(broker: Broker, port: int) -> None:
    """kill -9 of the broker's JVM; returns when the port is closed and the process gone."""
    os.kill(broker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (listener_pid(port) is not None
                                           or process_alive(broker.pid)):
        time.sleep(0.2)


def process_alive(pid: int) -> bool:
    """Whether pid is a live process: a zombie (killed, not yet reaped by its parent)
    is not, though `kill -0` still answers for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def start_broker(broker: Broker, log: Path) -> None:
    """Start it again as it was started: deploy/local's kafka_up of its checkout, else
    its own command line. Returns once it was started (not yet answering)."""
    with log.open("ab") as out:
        if broker.checkout is not None:
            env = {**os.environ, **({"SENDHUB_CACHE_DIR": str(broker.cache)} if broker.cache else {})}
            subprocess.Popen(["bash", "-c", 'source "$1" && kafka_up', "kafka_up",
                              str(broker.checkout / "deploy/local/lib.sh")],
                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
        else:
            subprocess.Popen(list(broker.argv), cwd=broker.cwd, env=broker.env, stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)


@dataclass(frozen=True)
class Cluster:
    version: str
    name: str


def find_postgres(settings: HubSettings) -> Cluster | None:
    """The Debian cluster (pg_lsclusters) serving the configured local port, if any."""
    host = settings.database_url.hosts()[0]
    if (host["host"] or "127.0.0.1") not in LOCAL_HOSTS or os.geteuid() != 0:
        return None
    port = str(host["port"] or 5432)
    try:
        out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == port:
            return Cluster(fields[0], fields[1])
    return None


def postgres_online(cluster: Cluster) -> bool:
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    return any(line.split()[:2] == [cluster.version, cluster.name] and " online" in line
               for line in out.splitlines())


def restart_postgres(cluster: Cluster) -> None:
    """pg_ctlcluster restart -m immediate: no checkpoint, clients cut off, crash recovery."""
    subprocess.run(["pg_ctlcluster", cluster.version, cluster.name, "restart", "-m", "immediate"],
                   check=True, capture_output=True, timeout=120)


def start_postgres(cluster: Cluster) -> None:
    if not postgres_online(cluster):
        subprocess.run(["pg_ctlcluster", cluster.version, cluster.name, "start"],
                       capture_output=True, timeout=120)


def database_answers(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@dataclass(frozen=True)
class Sandbox:
    """One phase's own topic namespace and database."""

    base: HubSettings
    namespace: str
    database: str

    @property
    def url(self) -> str:
        return str(self.base.database_url).rsplit("/", 1)[0] + f"/{self.database}"

    @property
    def settings(self) -> HubSettings:
        return HubSettings(kafka_bootstrap=self.base.kafka_bootstrap, database_url=self.url,
                           topic_namespace=self.namespace)

    @property
    def topics(self) -> Topics:
        return Topics(self.namespace)

    def create(self, receivers: list[str]) -> None:
        with psycopg.connect(self.base.database_conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        upgrade(self.settings)
        self.create_topics(receivers)
        if self.base.kafka_security_protocol != "PLAINTEXT":
            sync(self.settings)  # the services' own Kafka users and grants in this namespace

    def create_topics(self, receivers: list[str]) -> None:
        """The namespace's topics, made before the services start, with LogAppendTime:
        a record's timestamp is when the broker took it, which recovery times need.
        Other settings are those the services would give them."""
        t = self.topics
        names = [t.school_events, t.accepted, t.rejected, t.pupil_history, t.packet_receipts,
                 t.audit_anchors, *(t.inbox(r) for r in receivers)]
        special = {t.rejected: {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES)},
                   t.audit_anchors: {"retention.ms": "-1"}}
        admin = KafkaAdminClient(**client_options(self.base), client_id="sendhub-faults")
        try:
            admin.create_topics([NewTopic(name, self.base.topic_partitions, 1, topic_configs={
                "message.timestamp.type": "LogAppendTime", **special.get(name, {})})
                for name in names])
        finally:
            admin.close()

    def drop(self) -> list[str]:
        """Delete the namespace's topics and groups and drop the database; returns what
        could not be cleaned (each step is tried even when another failed)."""
        problems = []
        try:
            admin = KafkaAdminClient(**client_options(self.base), client_id="sendhub-faults")
            try:
                ours = [n for n in admin.list_topics() if n.startswith(self.namespace)]
                if ours:
                    admin.delete_topics(ours)
                groups = [g["group_id"] for g in admin.list_groups()
                          if str(g.get("group_id", "")).startswith(self.namespace)]
                if groups:
                    admin.delete_groups(groups)
            finally:
                admin.close()
        except Exception as error:
            problems.append(f"topics of {self.namespace}: {error}")
        if self.base.kafka_security_protocol != "PLAINTEXT":
            try:
                forget_namespace(self.settings, [])
                for leftover in self.base.credentials_dir.glob(f"{self.namespace}*.password"):
                    leftover.unlink()
            except Exception as error:
                problems.append(f"Kafka users of {self.namespace}: {error}")
        try:
            drop_database(self.base.database_conninfo, self.database)
        except psycopg.Error as error:
            problems.append(f"database {self.database}: {error}")
        return problems
