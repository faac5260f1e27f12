"""Where the tests' Kafka and PostgreSQL come from: deploy/local's (the default, or
wherever SENDHUB_KAFKA_BOOTSTRAP and SENDHUB_DATABASE_URL point), or, with
SENDHUB_TEST_INFRA=containers, containers of the test session's own.

The containers are for machines with Docker and no deploy/local (CI runners, laptops):
Kafka 4 in KRaft mode (Confluent's image 8.0, which testcontainers' KafkaContainer knows
how to start) and PostgreSQL 15, like deploy/local. testcontainers, and the Docker
client under it, are imported only when containers are asked for, so collecting and
running the tests without Docker is unaffected. The containers path has not been run on
the development machines, which have no Docker engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Literal, NoReturn

import pytest

VARIABLE = "SENDHUB_TEST_INFRA"
KAFKA_IMAGE = "confluentinc/cp-kafka:8.0.0"  # Apache Kafka 4.0; KRaft only
POSTGRES_IMAGE = "postgres:15"
STARTUP_SECONDS = 120  # the first start also formats the broker's storage

# deploy/kafka/server.properties' choices that the hub's behaviour depends on, in the
# image's KAFKA_<PROPERTY> form (test_test_infrastructure keeps the two in step).
KAFKA_BROKER_ENV = {
    "KAFKA_NUM_PARTITIONS": "3",
    "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
    "KAFKA_MIN_INSYNC_REPLICAS": "1",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
}

Infrastructure = Literal["local", "containers"]


def chosen(environ: Mapping[str, str] = os.environ) -> Infrastructure:
    """Unset means deploy/local, as before the option existed; a misspelt value is refused
    rather than quietly testing against whatever runs on this machine."""
    value = environ.get(VARIABLE, "")
    if value in ("", "local"):
        return "local"
    if value == "containers":
        return "containers"
    raise pytest.UsageError(
        f"{VARIABLE}={value!r} is not known: set it to 'containers' (Kafka and PostgreSQL "
        "with testcontainers, needs Docker) or leave it unset (deploy/local)")


@contextmanager
def containers(unavailable: Callable[[str], NoReturn]) -> Iterator[tuple[str, str]]:
    """Kafka and PostgreSQL for one test session: (bootstrap servers, database URL of a
    superuser, who may create the session's databases). Removed again at the end.

    No Docker engine, or an image that cannot be pulled, is missing infrastructure like
    an unreachable deploy/local: `unavailable` fails under CI and skips elsewhere."""
    from docker.errors import DockerException
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    with ExitStack() as started:
        try:
            kafka = KafkaContainer(KAFKA_IMAGE).with_kraft()
            for name, value in KAFKA_BROKER_ENV.items():
                kafka.with_env(name, value)
            postgres = PostgresContainer(POSTGRES_IMAGE, username="sendhub", password="sendhub",
                                         dbname="sendhub", driver=None)
            started.callback(kafka.stop)
            kafka.start(timeout=STARTUP_SECONDS)
            started.callback(postgres.stop)
            postgres.start()
        except DockerException as exc:
            unavailable(f"{VARIABLE}=containers needs a Docker engine that can pull "
                        f"{KAFKA_IMAGE} and {POSTGRES_IMAGE}: {exc}")
        yield kafka.get_bootstrap_server(), postgres.get_connection_url()
