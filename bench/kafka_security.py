"""What TLS costs on the Kafka path: the same produce-and-consume over the broker's
SASL_SSL client listener and over a listener without TLS, in the same run.

Run: `make bench` (or `.venv/bin/python bench/kafka_security.py --messages 20000 --runs 3`).
Needs deploy/local/up's broker. Both paths are the operator's, on loopback, to a fresh
topic each: SCRAM-SHA-512 over TLS on 127.0.0.1:9092 (what every client uses) against
SASL PLAIN without TLS on the broker's own listener 127.0.0.1:9094 (which only the
broker and the operator's tools use). The broker has no unauthenticated listener at all,
so "without TLS" is the baseline; SASL costs once per connection, which is timed apart
(connect: a producer's first acknowledged send). Each message is 1 KiB, acks=all,
idempotent, linger 5 ms. Prints medians of the runs and the ratio TLS / no TLS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.shared.kafka import client_options  # noqa: E402
from services.shared.settings import HubSettings  # noqa: E402

BROKER_LISTENER = "127.0.0.1:9094"


def without_tls(settings: HubSettings) -> dict[str, Any]:
    return {"bootstrap_servers": BROKER_LISTENER, "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN", "sasl_plain_username": "operator",
            "sasl_plain_password": settings.kafka_password("operator")}


def one_run(options: dict[str, Any], n: int) -> tuple[float, float]:
    """(connect seconds, produce-and-consume seconds) for n messages on a new topic."""
    topic = f"bench-security-{uuid.uuid4().hex[:8]}"
    value = os.urandom(1024)
    started = time.perf_counter()
    producer = KafkaProducer(**options, acks="all", enable_idempotence=True, linger_ms=5)
    producer.send(topic, key=b"0", value=value).get(timeout=30)
    connected = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(n - 1):
        producer.send(topic, key=str(i % 100).encode(), value=value)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, **options, auto_offset_reset="earliest", group_id=None,
                             enable_auto_commit=False)
    seen = 0
    while seen < n:
        for records in consumer.poll(timeout_ms=200).values():
            seen += len(records)
    consumer.close()
    return connected, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = HubSettings(kafka_username="operator")
    tls, plain = client_options(settings), without_tls(settings)
    results: dict[str, list[tuple[float, float]]] = {"TLS": [], "no TLS": []}
    for run in range(args.runs):
        for name, options in (("no TLS", plain), ("TLS", tls)):
            results[name].append(one_run(options, args.messages))
        print(f"run {run + 1}: " + ", ".join(
            f"{k} {v[-1][1]:.2f} s (connect {v[-1][0] * 1000:.0f} ms)" for k, v in results.items()))
    medians = {k: (statistics.median(c for c, _ in v), statistics.median(t for _, t in v))
               for k, v in results.items()}
    for name, (connect, took) in medians.items():
        print(f"{name:7} median {took:.2f} s = {args.messages / took:,.0f} messages/s "
              f"(1 KiB, acks=all); connect {connect * 1000:.0f} ms")
    print(f"ratio TLS / no TLS: {medians['TLS'][1] / medians['no TLS'][1]:.2f}x throughput time, "
          f"{medians['TLS'][0] / medians['no TLS'][0]:.2f}x connect")


if __name__ == "__main__":
    main()
