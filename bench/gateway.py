"""Events per second through the HTTPS gateway (NDJSON batches) against a bare producer.

Run: `make bench` (or `.venv/bin/python bench/gateway.py --events 5000 --batch 500 --runs 3`).
Needs Kafka and PostgreSQL (deploy/local/up). One fresh topic namespace and database for
the whole run: the service principals synced into it, a school with a token, and a real
`sendhub serve gateway` over HTTPS on a free port. Each run sends N valid events from
that school: through the gateway as sequential NDJSON batches (each answered only after
the broker acknowledged every event, acks=all), and, as the bare baseline, with one
kafka-python producer (acks=all) as the gateway's own Kafka user over the same SASL_SSL
listener, to the same topic, with the same keys and header, flushed. Prints the medians
of the runs and the ratio gateway / bare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.topics import PRINCIPAL_HEADER  # noqa: E402
from sendhub.principals_admin import forget_namespace, sync  # noqa: E402
from services.shared.access import Kind, Principal  # noqa: E402
from services.shared.database import drop_database, upgrade  # noqa: E402
from services.shared.kafka import client_options  # noqa: E402
from services.shared.principals import PrincipalStore  # noqa: E402
from services.shared.settings import HubSettings  # noqa: E402
from tests.factories import random_upn, school_event  # noqa: E402
from tests.gateway_support import GatewayProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
URN = "100001"


def events(n: int) -> list[tuple[bytes, bytes]]:
    """(key, body) for n events from school URN, ten per pupil."""
    upns = [random_upn() for _ in range(max(1, n // 10))]
    out = []
    for i in range(n):
        upn = upns[i % len(upns)]
        e = school_event(source={"urn": URN, "system": "SIMS"},
                         pupil={"upn": upn, "given_name": "P", "family_name": "Q",
                                "date_of_birth": "2015-01-01"})
        out.append((upn.encode(), json.dumps(e).encode()))
    return out


def through_gateway(gateway: GatewayProcess, token: str, messages: list[tuple[bytes, bytes]],
                    batch: int) -> float:
    with gateway.client(token) as client:
        start = time.perf_counter()
        for i in range(0, len(messages), batch):
            body = b"\n".join(value for _, value in messages[i:i + batch])
            answer = client.post("/v1/events", content=body,
                                 headers={"Content-Type": "application/x-ndjson"})
            if answer.status_code != 207 or answer.json()["refused"]:
                raise RuntimeError(f"the gateway refused events: {answer.text[:500]}")
        return time.perf_counter() - start


def bare(settings: HubSettings, messages: list[tuple[bytes, bytes]]) -> float:
    producer = KafkaProducer(**client_options(settings, "gateway"), acks="all", linger_ms=5)
    topic = settings.topics.school_events_from("gateway")
    headers = [(PRINCIPAL_HEADER, f"school-{URN}".encode())]
    producer.partitions_for(topic)  # connected and authenticated before the clock starts
    start = time.perf_counter()
    for key, value in messages:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = HubSettings()
    run = uuid.uuid4().hex[:8]
    db = f"sendhub_bench_{run}"
    with psycopg.connect(base.database_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = str(base.database_url).rsplit("/", 1)[0] + f"/{db}"
    settings = HubSettings(database_url=url, topic_namespace=f"bench-{run}.")
    upgrade(settings)
    sync(settings)  # the gateway's Kafka user and its topics in this namespace
    store = PrincipalStore(settings.database_conninfo)
    school = store.add(Principal(Kind.school, URN)).principal
    token = store.issue_token(school.name).token
    logs = ROOT / ".cache" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    gateway = GatewayProcess({"SENDHUB_TOPIC_NAMESPACE": settings.topic_namespace,
                              "SENDHUB_DATABASE_URL": url,
                              "SENDHUB_GATEWAY_MAX_BATCH_EVENTS": str(args.batch),
                              "SENDHUB_GATEWAY_RATE_LIMIT_PER_MINUTE": "100000"},
                             logs / f"gateway-{run}.log")
    try:
        gateway.start()
        through_gateway(gateway, token, events(args.batch), args.batch)  # warm up
        bare_times, gateway_times = [], []
        for i in range(args.runs):
            messages = events(args.events)
            bare_times.append(bare(settings, messages))
            gateway_times.append(through_gateway(gateway, token, messages, args.batch))
            print(f"run {i + 1}: bare {bare_times[-1]:.2f} s, gateway {gateway_times[-1]:.2f} s")
    finally:
        gateway.stop()
        _clean_up(base, settings, db)
    b, g = statistics.median(bare_times), statistics.median(gateway_times)
    print(f"events per run: {args.events}, NDJSON batches of {args.batch}, SASL_SSL, acks=all")
    print(f"bare kafka-python producer: median {b:.2f} s = {args.events / b:,.0f} events/s")
    print(f"through the HTTPS gateway: median {g:.2f} s = {args.events / g:,.0f} events/s")
    print(f"ratio gateway / bare (time): {g / b:.1f}x")


def _clean_up(base: HubSettings, settings: HubSettings, db: str) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**client_options(settings), client_id="sendhub-bench")
    try:
        ours = [t for t in admin.list_topics() if t.startswith(settings.topic_namespace)]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()
    forget_namespace(settings, [])
    for leftover in settings.credentials_dir.glob(f"{settings.topic_namespace}*.password"):
        leftover.unlink()
    drop_database(base.database_conninfo, db)


if __name__ == "__main__":
    main()
