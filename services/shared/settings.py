"""The hub's one way to be configured: environment variables prefixed `SENDHUB_`.

Who a process is on PostgreSQL: the user named in `SENDHUB_DATABASE_URL`, when it names
one (a one-role deployment, the test suite); otherwise, and the default URL names none,
the role of what runs: `sendhub serve <service>` connects as `sendhub_<service>`
(least privilege, granted by migration 0003), the CLI's reading commands as
`sendhub_reader`, and everything else (`sendhub db upgrade`, the operator's commands)
as the owner `sendhub`. So a service that is compromised or wrong cannot rewrite the
histories, and no process holds more than its work needs unless configured to.

The database password never sits in the default URL, where it would be copied into
shells, logs and process listings. It is found, in this order: a password in
`SENDHUB_DATABASE_URL` itself (still accepted); `SENDHUB_DATABASE_PASSWORD`;
the file named by `SENDHUB_DATABASE_PASSWORD_FILE` (a container secret); the file
`deploy/local/up` writes for that user (`.cache/postgres/password` for the owner,
`.cache/postgres/<role>.password` for the others), when it exists; otherwise none,
and libpq looks in `PGPASSWORD` or `~/.pgpass` itself (both psycopg and eventsourcing's
datastore go through libpq, which treats an empty password as none given).

An obviously placeholder password is refused, as the FastAPI template's
`_enforce_non_default_secrets` does, but only for a database reached over the network:
the local deploy keeps `sendhub` on loopback, where only this machine's users can
connect and a placeholder protects nothing less than a generated password would.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote, unquote

from pydantic import Field, PostgresDsn, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import Topics

# Each service's HTTP port (/healthz, /readyz, /metrics) unless SENDHUB_HTTP_PORT says
# otherwise; deploy/prometheus/prometheus.yml scrapes these.
DEFAULT_HTTP_PORTS = {"ingest": 9101, "records": 9102, "transfers": 9103}
# Where deploy/local/up writes the owner's password (lib.sh: $CACHE/postgres/password);
# each other role's is beside it, <role>.password.
LOCAL_PASSWORD_FILE = Path(__file__).resolve().parents[2] / ".cache" / "postgres" / "password"
# The PostgreSQL roles (deploy/local/lib.sh creates them; migration 0003 grants to them).
OWNER_ROLE = "sendhub"
READER_ROLE = "sendhub_reader"
# What deploy/local/up generates: the CA and broker/gateway certificate, and the Kafka
# passwords of the principals it creates (one file each, readable by this user only).
LOCAL_DIR = Path(__file__).resolve().parents[2] / ".cache" / "local"
LOCAL_CA_FILE = LOCAL_DIR / "tls" / "ca.pem"
PLACEHOLDER_PASSWORDS = frozenset({"sendhub", "changethis", "password", "postgres", "secret",
                                   "admin", "example"})


class InsecureDatabasePassword(ValueError):
    """A placeholder password for a database other users can reach over the network."""


def _loopback(host: str | None) -> bool:
    if not host or host.startswith("/") or host.lower().startswith("%2f") or host == "localhost":
        return True  # a Unix socket, or this machine by name
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HubSettings(BaseSettings):
    """Settings every service reads; defaults point at deploy/local/up's broker and database."""

    model_config = SettingsConfigDict(env_prefix="SENDHUB_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["SASL_SSL", "PLAINTEXT"] = Field(
        default="SASL_SSL", description="SASL over TLS; PLAINTEXT only when set so "
        "explicitly (a warning is logged at every start)")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str | None = Field(
        default=None, description="the Kafka user to connect as; unset: a service connects "
        "as its own principal (<namespace>service-<name>), the tools as the operator")
    kafka_password_file: Path | None = Field(
        default=None, description="a file holding that user's Kafka password; unset: "
        "<credentials dir>/<user>.password")
    kafka_ca_file: Path | None = Field(
        default=None, description="the CA that signed the broker's certificate; unset: "
        "deploy/local/up's .cache/local/tls/ca.pem, else the system's CAs")
    credentials_dir: Path = Field(
        default=LOCAL_DIR / "credentials", description="where `sendhub principals sync` "
        "writes the Kafka passwords it generates (one <user>.password file each, mode 600)")
    token: SecretStr | None = Field(
        default=None, description="the bearer token the CLI's reading commands act with")
    token_file: Path | None = Field(
        default=None, description="a file holding that token (read when SENDHUB_TOKEN is unset)")
    gateway_url: str = Field(default="https://127.0.0.1:8443",
                             description="where `sendhub serve gateway` listens")
    gateway_certificate_file: Path | None = Field(
        default=None, description="the gateway's TLS certificate chain (PEM); unset: "
        "deploy/local/up's .cache/local/tls/server.pem")
    gateway_key_file: Path | None = Field(
        default=None, description="its private key (PEM); unset: .cache/local/tls/server.key")
    database_url: PostgresDsn = Field(
        default=PostgresDsn("postgresql://127.0.0.1:5432/sendhub"), description="the hub's "
        "database; a user named in it is used by every process, otherwise each connects "
        "as its own role (sendhub_<service>, sendhub_reader, the owner sendhub)")
    database_password: SecretStr | None = Field(
        default=None, description="the database password, when the URL carries none"
    )
    database_password_file: Path | None = Field(
        default=None, description="a file holding the database password (a container secret)"
    )
    # The role this process acts as when the URL names no user (`as_database_role`).
    _database_role: str = PrivateAttr(default=OWNER_ROLE)
    topic_namespace: str = Field(
        default="", description="put in front of every topic and consumer group name"
    )
    topic_partitions: int = 3
    consumer_linger_ms: int = Field(
        default=0, ge=0, le=500, description="how long a consumer lets the broker wait for "
        "more messages before answering a fetch (0: answer with whatever is there); under a "
        "steady stream, fuller batches cost fewer round trips per event, at up to this much "
        "delay per stage (local tuning)")
    max_event_bytes: int = Field(
        default=512 * 1024, description="inbound events larger than this are dead-lettered"
    )
    log_level: str = "INFO"
    instance_id: str | None = Field(
        default=None, description="a stable name for this process among its service's "
        "instances (e.g. records-1): consumers use static group membership, so a restarted "
        "process takes its partitions back at once; two live processes must not share one")
    relay_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often records' relay looks for history events "
        "to publish when nothing woke it (PostgreSQL's NOTIFY wakes it at once after each "
        "stored batch, from any records process)")
    pupil_state_cache: int = Field(
        default=5_000, ge=0, description="pupils whose current history state a records "
        "process keeps between batches, so a batch need not re-read whole streams (each is "
        "checked against the stored version first; 0 keeps none)")
    anchor_interval_seconds: float = Field(
        default=60.0, description="how often records publishes chain heads to the anchors topic"
    )
    delivery_interval_seconds: float = Field(
        default=5.0, description="how often transfers looks for packets to send or re-send"
    )
    max_packet_bytes: int = Field(
        default=900_000, description="a packet larger than this is condensed (long texts "
        "shortened) or, if still too large, kept as undeliverable; keep it under the "
        "broker's message.max.bytes")
    resend_after_school_days: int = Field(
        default=15, description="re-send a packet with no receipt after this many school "
        "days of its receiver's LA (weekdays less England's bank holidays, within the LA's "
        "terms where `sendhub calendar import` loaded them); the hub's own policy, not "
        "the statutory 15 school days for sending the CTF")
    http_host: str = Field(
        default="127.0.0.1", description="where a service serves /healthz, /readyz, /metrics"
    )
    http_port: int | None = Field(
        default=None, ge=0, le=65535,
        description="a service's HTTP port; unset: 9101 ingest, 9102 records, 9103 "
        "transfers; 0: any free port (logged as http.listening)")
    metrics_interval_seconds: float = Field(
        default=10.0, gt=0,
        description="how often consumer lag and the stores' gauges are measured")
    policy_concern_open_weeks: int | None = Field(
        default=None, ge=1, description="local policy, not statute: a concern followed "
        "through by an assessment within this many weeks (the report's `concern_open_policy` "
        "clock and its concern intervals); unset: measured, with no limit")
    policy_plan_gap_weeks: int | None = Field(
        default=None, ge=1, description="local policy, not statute: a plan in place within "
        "this many weeks of needs being found or of arriving at a new setting (the report's "
        "plan gaps); unset: measured, with no limit")
    post16_concerns_itemised_months: int = Field(
        default=24, ge=1, le=240, description="local policy, not law: in a full post-16 "
        "packet, concerns raised up to this many months before the move are itemised, and "
        "older ones summarised per area of need (count and date range); an open concern "
        "is itemised at any age")

    retention_sen_record_years: int = Field(
        default=31, ge=1, description="a pupil's SEN history, and the hub's copies of their "
        "packets, are erased by `sendhub retention run` once this many years have passed "
        "since the pupil's date of birth (IRMS Information Management Toolkit for Schools "
        "2019: SEN files, reviews and EHC plans, date of birth + 31 years)")
    retention_transit_days: float = Field(
        default=30, gt=0, description="local policy: how long Kafka keeps the transit topics "
        "(school events, accepted events, pupil history, receipts)")
    retention_dead_letter_days: float = Field(
        default=30, gt=0, description="local policy: how long Kafka keeps dead letters")
    retention_inbox_days: float = Field(
        default=90, gt=0, description="local policy: how long Kafka keeps packets in "
        "receivers' inbox topics (the gateway serves them from PostgreSQL after that)")
    master_key_file: Path = Field(
        default=LOCAL_DIR / "master.key", description="the master key that wraps every "
        "pupil's data key (32 random bytes, base64, mode 600); the default file is made on "
        "first use, a file named here must exist. Keep it apart from the database's backups")
    key_cache_seconds: float = Field(
        default=60.0, ge=0, description="how long a process may read with a pupil's data key "
        "before asking the database again (writes always ask): an erasure reaches every "
        "process within this time")

    @model_validator(mode="after")
    def _one_password_source(self) -> Self:
        """Two explicit passwords would leave it to chance which one connects."""
        given = [name for name, value in (
            ("SENDHUB_DATABASE_URL", self._url_password()),
            ("SENDHUB_DATABASE_PASSWORD", self.database_password),
            ("SENDHUB_DATABASE_PASSWORD_FILE", self.database_password_file)) if value is not None]
        if len(given) > 1:
            raise ValueError(f"the database password is given twice ({' and '.join(given)}): "
                             "give it once")
        if self._url_password() is not None:
            self._refuse_placeholder(self._url_password())
        if self.database_password is not None:
            self._refuse_placeholder(self.database_password.get_secret_value())
        return self

    def kafka_user(self, service: str | None = None) -> str:
        """Who this process is on Kafka: SENDHUB_KAFKA_USERNAME, else the service's own
        principal in this namespace, else (the tools) the operator."""
        if self.kafka_username:
            return self.kafka_username
        return f"{self.topic_namespace}service-{service}" if service else "operator"

    def kafka_password(self, user: str) -> str:
        path = self.kafka_password_file or self.credentials_dir / f"{user}.password"
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ValueError(
                f"cannot read the Kafka password of {user} from {path} "
                f"(SENDHUB_KAFKA_PASSWORD_FILE): {exc.strerror}. deploy/local/up and "
                "`sendhub principals sync` write it; elsewhere, set SENDHUB_KAFKA_USERNAME "
                "and SENDHUB_KAFKA_PASSWORD_FILE") from None

    def kafka_ca(self) -> Path | None:
        if self.kafka_ca_file is not None:
            return self.kafka_ca_file
        return LOCAL_CA_FILE if LOCAL_CA_FILE.is_file() else None

    def cli_token(self) -> str | None:
        """The bearer token the CLI acts with, if one is configured."""
        if self.token is not None:
            return self.token.get_secret_value().strip()
        if self.token_file is not None:
            try:
                return self.token_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"cannot read the token file {self.token_file} "
                                 f"(SENDHUB_TOKEN_FILE): {exc.strerror}") from None
        return None

    def http_port_for(self, service: str) -> int:
        """The port a service listens on: SENDHUB_HTTP_PORT, else the service's own."""
        return self.http_port if self.http_port is not None else DEFAULT_HTTP_PORTS[service]

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_namespace)

    def _url_password(self) -> str | None:
        password = self.database_url.hosts()[0]["password"]
        return unquote(password) if password is not None else None

    def _refuse_placeholder(self, password: str | None) -> None:
        host = self.database_url.hosts()[0]["host"]
        if password is not None and password.strip().lower() in PLACEHOLDER_PASSWORDS \
                and not _loopback(host):
            raise InsecureDatabasePassword(
                f"the database password for {host} is the placeholder {password!r}: set a real "
                "one (SENDHUB_DATABASE_PASSWORD or SENDHUB_DATABASE_PASSWORD_FILE). Placeholders "
                "are accepted only for a database on this machine (loopback), as deploy/local/up "
                "runs it.")

    def as_database_role(self, role: str) -> Self:
        """These settings for a process that acts as `role` (the URL's user still wins)."""
        copy = self.model_copy()
        copy._database_role = role
        return copy

    def for_service(self, service: str) -> Self:
        """These settings as `sendhub serve <service>` uses them: its own database role."""
        return self.as_database_role(service_role(service))

    @property
    def database_user(self) -> str:
        """Who this process connects as: the URL's user, else its role (module docstring)."""
        named = self.database_url.hosts()[0]["username"]
        return unquote(named) if named else self._database_role

    def local_password_file(self) -> Path:
        """Where deploy/local/up keeps this user's password."""
        user = self.database_user
        return LOCAL_PASSWORD_FILE if user == OWNER_ROLE \
            else LOCAL_PASSWORD_FILE.with_name(f"{user}.password")

    def resolved_database_password(self) -> str | None:
        """The password to connect with, or None to let libpq find one (~/.pgpass).

        Read at each call, not at start-up: `make demo` builds its settings before
        deploy/local/up has written the local password file."""
        if (in_url := self._url_password()) is not None:
            return in_url
        if self.database_password is not None:
            return self.database_password.get_secret_value()
        path = self.database_password_file
        if path is None and self.local_password_file().is_file():
            path = self.local_password_file()
        if path is None:
            return None
        try:
            password = path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"cannot read the database password file {path} "
                             f"(SENDHUB_DATABASE_PASSWORD_FILE): {exc.strerror}") from None
        self._refuse_placeholder(password)
        return password

    def eventsourcing_env(self, schema: str = "public") -> dict[str, str]:
        """Translate the one database URL into eventsourcing's own variables.

        CREATE_TABLE is off: records' tables, like every other, come from the migrations
        (`sendhub db upgrade`), so a service never changes the schema as it starts."""
        host = self.database_url.hosts()[0]
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": (self.database_url.path or "").lstrip("/"),
            "POSTGRES_HOST": unquote(host["host"] or "127.0.0.1"),
            "POSTGRES_PORT": str(host["port"] or 5432),
            "POSTGRES_USER": self.database_user,
            # Empty is "not given" to libpq, which then reads ~/.pgpass.
            "POSTGRES_PASSWORD": self.resolved_database_password() or "",
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "CREATE_TABLE": "n",
            # Where records finds its pupils' data keys (services/shared/pupil_keys.py).
            "SENDHUB_KEYS_CONNINFO": self.database_conninfo,
            "SENDHUB_MASTER_KEY_FILE": str(self.master_key_file),
            "SENDHUB_KEY_CACHE_SECONDS": str(self.key_cache_seconds),
            "SENDHUB_PUPIL_STATE_CACHE": str(self.pupil_state_cache),
        }

    @property
    def database_conninfo(self) -> str:
        """The URL to connect with: the configured one, with this process's user and the
        resolved password in it."""
        url = str(self.database_url)
        if self._url_password() is not None:
            return url
        password = self.resolved_database_password()
        scheme, _, rest = url.partition("://")
        authority, slash, tail = rest.partition("/")
        hosts = authority.rpartition("@")[2]
        user = quote(self.database_user, safe="")
        secret = "" if password is None else ":" + quote(password, safe="")
        return f"{scheme}://{user}{secret}@{hosts}{slash}{tail}"

    def database_url_for(self, database: str) -> str:
        """Another database on the same server, as a URL naming this process's user (and
        no password unless the configured URL has one): handed to other processes, it
        connects them as that same user."""
        scheme, _, rest = str(self.database_url).partition("://")
        authority = rest.partition("/")[0]
        if "@" not in authority:
            authority = f"{quote(self.database_user, safe='')}@{authority}"
        return f"{scheme}://{authority}/{database}"

    # -- the HTTPS gateway (`sendhub serve gateway`, package sendhub/gateway) ----------------
    gateway_oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect: the issuer (`iss`) whose bearer JWTs the "
        "gateway accepts; unset: only the hub's own tokens")
    gateway_oidc_audience: str | None = Field(
        default=None, description="OpenID Connect: the audience (`aud`) those JWTs must name")
    gateway_oidc_jwks_url: str | None = Field(
        default=None, description="OpenID Connect: the https:// URL of the issuer's "
        "signing keys (JWKS), trusted through the system's CAs and SENDHUB_KAFKA_CA_FILE's")
    gateway_oidc_principal_claim: str = Field(
        default="sendhub_principal", description="the JWT claim naming the hub principal "
        "(e.g. school-100001), which must exist and be active")
    gateway_max_batch_events: int = Field(
        default=500, ge=1, description="most events in one NDJSON batch (POST /v1/events)")
    gateway_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="the largest request body the gateway "
        "reads (413 above it)")
    gateway_rate_limit_per_minute: int = Field(
        default=600, ge=1, description="requests per principal per minute (a token bucket "
        "that allows a burst of as many; 429 beyond it)")
    gateway_webhook_retry_seconds: list[float] = Field(
        default=[10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0], description="webhooks: the "
        "wait before each retry after a failed delivery; after the last, it is given up")
    gateway_webhook_interval_seconds: float = Field(
        default=2.0, gt=0, description="how often the gateway looks for packets to push")

    # -- the web application (served by the gateway; package sendhub/web) ------------------
    web_session_hours: float = Field(
        default=8, gt=0, description="the longest a web sign-in lasts (a working day)")
    web_idle_minutes: float = Field(
        default=60, gt=0, description="a web sign-in ends after this long without a request")
    web_oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect: the identity provider people sign in "
        "with (its /.well-known/openid-configuration is read); unset: sign-in by hub token "
        "only. The ID token's SENDHUB_GATEWAY_OIDC_PRINCIPAL_CLAIM names the principal")
    web_token_sign_in: bool | None = Field(
        default=None, description="whether people may sign in to the web application with "
        "a hub token; unset: yes unless SENDHUB_WEB_OIDC_ISSUER is set (then people sign in "
        "with their organisation's account and tokens stay with systems)")
    web_oidc_client_id: str | None = Field(
        default=None, description="OpenID Connect: the hub's client id at that provider")
    web_oidc_client_secret_file: Path | None = Field(
        default=None, description="OpenID Connect: a file holding the hub's client secret")
    def web_tokens_sign_in(self) -> bool:
        return self.web_token_sign_in if self.web_token_sign_in is not None \
            else self.web_oidc_issuer is None

    web_cookie_secret_file: Path | None = Field(
        default=None, description="the key that signs the short-lived sign-in cookie (the "
        "OpenID Connect state); default: generated once in .cache/local/web-cookie.secret. "
        "Every gateway behind one address must share it")
    admin_url: str = Field(
        default="https://127.0.0.1:8444", description="where `sendhub serve admin`, the "
        "operator's console, listens: loopback unless there is a reason (it acts with the "
        "operator's credentials); TLS with the gateway's certificate and key")


def service_role(service: str) -> str:
    """The PostgreSQL role `sendhub serve <service>` connects as by default."""
    return f"{OWNER_ROLE}_{service}"
