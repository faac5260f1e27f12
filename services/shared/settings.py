"""The hub's one way to be configured: environment variables prefixed `SENDHUB_`."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from pydantic import Field, PostgresDsn
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import Topics


class HubSettings(BaseSettings):
    """Settings every service reads; defaults point at deploy/local/up's broker and database."""

    model_config = SettingsConfigDict(env_prefix="SENDHUB_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: PostgresDsn = PostgresDsn(
        "postgresql://sendhub:sendhub@127.0.0.1:5432/sendhub"
    )
    topic_namespace: str = Field(
        default="", description="put in front of every topic and consumer group name"
    )
    topic_partitions: int = 3
    max_event_bytes: int = Field(
        default=512 * 1024, description="inbound events larger than this are dead-lettered"
    )
    log_level: str = "INFO"
    relay_interval_seconds: float = 0.2
    anchor_interval_seconds: float = Field(
        default=60.0, description="how often records publishes chain heads to the anchors topic"
    )
    delivery_interval_seconds: float = Field(
        default=5.0, description="how often transfers looks for packets to send or re-send"
    )
    resend_after_school_days: int = Field(
        default=15, description="re-send a packet with no receipt after this many weekdays"
    )
    actor: str | None = Field(
        default=None, description="who is reading pupils' records through the tools (audited)"
    )

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_namespace)

    def eventsourcing_env(self, schema: str = "public") -> dict[str, str]:
        """Translate the one database URL into eventsourcing's own variables."""
        url = urlparse(str(self.database_url))
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/"),
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or ""),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "CREATE_TABLE": "y",
        }

    @property
    def database_conninfo(self) -> str:
        return str(self.database_url)
