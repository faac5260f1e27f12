"""A hub database belongs to one Kafka cluster and one topic namespace.

The stores keep Kafka positions (offsets) and what they have already relayed or sent.
Against a recreated broker, or another namespace, those would skip new messages and
never re-send old ones, silently. So the first service to start records which cluster
and namespace the database serves, and every later start checks it and refuses, with
a clear message, when they differ. The `hub_binding` table comes from the migrations.
"""

from __future__ import annotations

import psycopg
from kafka.admin import KafkaAdminClient

from services.shared import locks
from services.shared.kafka import client_options
from services.shared.settings import HubSettings


class WrongCluster(RuntimeError):
    """The database holds the hub's state for another Kafka cluster or namespace."""


def kafka_cluster_id(settings: HubSettings, service: str | None = None) -> str:
    admin = KafkaAdminClient(**client_options(settings, service), client_id="sendhub-binding")
    try:
        return str(admin.describe_cluster()["cluster_id"])
    finally:
        admin.close()


def check_binding(settings: HubSettings, cluster_id: str) -> None:
    """Bind an unbound database to this cluster and namespace; refuse a different one."""
    with psycopg.connect(settings.database_conninfo) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks.BINDING,))
        conn.execute("INSERT INTO hub_binding (kafka_cluster_id, topic_namespace) "
                     "VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (cluster_id, settings.topic_namespace))
        row = conn.execute("SELECT kafka_cluster_id, topic_namespace, bound_at "
                           "FROM hub_binding").fetchone()
    if row is None:
        raise RuntimeError(f"hub_binding in {settings.database_url.path} is empty right after "
                           "binding it: something deletes it")
    if (row[0], row[1]) != (cluster_id, settings.topic_namespace):
        raise WrongCluster(
            f"the database {settings.database_url.path} holds the hub's state for Kafka "
            f"cluster {row[0]} (namespace {row[1]!r}, since {row[2]:%Y-%m-%d %H:%M}), but "
            f"the broker at {settings.kafka_bootstrap} is cluster {cluster_id} (namespace "
            f"{settings.topic_namespace!r}). Its positions and sent packets do not match "
            "these topics. Use a new database for this cluster (SENDHUB_DATABASE_URL), "
            "or point SENDHUB_KAFKA_BOOTSTRAP at the cluster it belongs to.")


def bind(settings: HubSettings, service: str | None = None) -> None:
    check_binding(settings, kafka_cluster_id(settings, service))
