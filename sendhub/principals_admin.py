"""Applying who-may-do-what to the broker: SCRAM credentials, ACLs and each principal's own
topics, from the principals in the database (`sendhub principals sync`).

Idempotent: every principal ends with exactly the grants `kafka_grants.grants` names
(missing ones created, stale ones deleted), and a revoked principal with none and no
credentials. Passwords are generated once into the credentials directory, one file per
Kafka user (mode 600), and reused, so a second sync changes nothing. Runs as the
operator, the broker's only super user.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kafka.errors import TopicAlreadyExistsError

from sendhub.local_deploy import secret_file
from sendhub.principal_rules import refuse_built_in
from services.shared.access import SERVICES, Principal, service
from services.shared.kafka import client_options, retention_configs
from services.shared.kafka_grants import Grant, grants, topics_to_create
from services.shared.principals import IssuedToken, PrincipalStore, StoredPrincipal
from services.shared.settings import HubSettings

log = logging.getLogger("sendhub.principals")
MECHANISMS = {"SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
              "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256}


@dataclass
class SyncReport:
    users: list[str] = field(default_factory=list)
    granted: int = 0
    removed: int = 0
    revoked: list[str] = field(default_factory=list)
    topics_created: list[str] = field(default_factory=list)


def kafka_user(settings: HubSettings, principal: Principal) -> str:
    """A principal's Kafka user: its name in this deployment's namespace."""
    return f"{settings.topic_namespace}{principal.name}"


def kafka_note(settings: HubSettings, principal: Principal) -> str:
    """Where its Kafka user's password is, to hand over (never the password itself)."""
    user = kafka_user(settings, principal)
    return f"Kafka user {user}; its password is in {settings.credentials_dir / (user + '.password')}"


def _acl(user: str, grant: Grant) -> ACL:
    pattern = ResourcePattern(
        ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP, grant.name,
        ACLResourcePatternType.PREFIXED if grant.prefixed else ACLResourcePatternType.LITERAL)
    return ACL(f"User:{user}", "*", ACLOperation[grant.operation], ACLPermissionType.ALLOW,
               pattern)


def _held(admin: KafkaAdminClient, user: str) -> list[ACL]:
    everything = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    found, error = admin.describe_acls(ACLFilter(f"User:{user}", None, ACLOperation.ANY,
                                                 ACLPermissionType.ANY, everything))
    if error.errno:  # kafka-python returns the error rather than raising it here
        raise error
    return list(found)


class KafkaAccess:
    """The operator's admin connection, used for one sync or one revocation."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.admin = KafkaAdminClient(**client_options(settings), client_id="sendhub-principals")

    def close(self) -> None:
        self.admin.close()

    def password_of(self, user: str) -> str:
        return secret_file(self.settings.credentials_dir / f"{user}.password")

    def apply(self, principal: Principal, report: SyncReport) -> None:
        user = kafka_user(self.settings, principal)
        mechanism = MECHANISMS.get(self.settings.kafka_sasl_mechanism,
                                   ScramMechanism.SCRAM_SHA_512)
        failed = self.admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, mechanism, self.password_of(user))])
        if failed.get(user):
            raise RuntimeError(f"could not set the Kafka credentials of {user}: {failed[user]}")
        wanted = {_acl(user, g) for g in grants(principal, self.settings.topics, user)}
        held = set(_held(self.admin, user))
        if missing := wanted - held:
            self.admin.create_acls(list(missing))
        if stale := held - wanted:
            self._delete(stale)
        report.users.append(user)
        report.granted += len(missing)
        report.removed += len(stale)
        self._create_topics(topics_to_create(principal, self.settings.topics), report)

    def withdraw(self, principal: Principal, report: SyncReport) -> None:
        """No credentials and no grants: the principal can no longer connect at all."""
        user = kafka_user(self.settings, principal)
        held = set(_held(self.admin, user))
        if held:
            self._delete(held)
            report.removed += len(held)
        described = self.admin.describe_user_scram_credentials([user])
        infos = (described.get(user) or {}).get("credential_infos") or []
        if infos:
            self.admin.alter_user_scram_credentials(
                [UserScramCredentialDeletion(user, info["mechanism"]) for info in infos])
        # its password is of no use any more, and must not be restored after a restart
        (self.settings.credentials_dir / f"{user}.password").unlink(missing_ok=True)
        report.revoked.append(user)

    def _delete(self, acls: set[ACL]) -> None:
        self.admin.delete_acls(list(acls))

    def _create_topics(self, names: list[str], report: SyncReport) -> None:
        existing = set(self.admin.list_topics())
        missing = [NewTopic(name, self.settings.topic_partitions, 1,
                            topic_configs=retention_configs(self.settings, name))
                   for name in names if name not in existing]
        if missing:
            try:
                self.admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            report.topics_created += [t.name for t in missing]


def sync(settings: HubSettings, store: PrincipalStore | None = None) -> SyncReport:
    """The services' principals always; every principal in the database that uses Kafka."""
    report = SyncReport()
    access = KafkaAccess(settings)
    try:
        for name in SERVICES:
            access.apply(service(name), report)
        for stored in (store.all() if store else []):
            if stored.revoked_at is not None:
                access.withdraw(stored.principal, report)
            elif stored.uses_kafka:
                access.apply(stored.principal, report)
    finally:
        access.close()
    log.info("principals.synced", extra={"users": len(report.users),
                                          "granted": report.granted,
                                          "removed": report.removed})
    return report


def sync_summary(report: SyncReport) -> str:
    return (f"principals synced: {len(report.users)} Kafka users, {report.granted} grants "
            f"added, {report.removed} removed, {len(report.revoked)} revoked, "
            f"{len(report.topics_created)} topics created")


def give_kafka(settings: HubSettings, principal: Principal) -> SyncReport:
    """One principal's credentials, grants and topics, as `principals add --kafka` does."""
    report = SyncReport()
    access = KafkaAccess(settings)
    try:
        access.apply(principal, report)
    finally:
        access.close()
    return report


def revoke_principal(settings: HubSettings, store: PrincipalStore, name: str
                     ) -> tuple[StoredPrincipal, SyncReport | None]:
    """`sendhub principals revoke`: tokens and webhooks end now, and Kafka credentials and
    grants are deleted (the report; None when it had none). Raises `PrincipalError` for a
    built-in principal, `UnknownPrincipal` for one the hub does not know."""
    refuse_built_in(name)
    store.revoke(name)
    stored = store.get(name)
    assert stored is not None
    if not stored.uses_kafka:
        return stored, None
    report = SyncReport()
    access = KafkaAccess(settings)
    try:
        access.withdraw(stored.principal, report)
    finally:
        access.close()
    return stored, report


def rotate_token(store: PrincipalStore, name: str, days: int) -> tuple[IssuedToken, int]:
    """`sendhub principals rotate`: a new token, and how many older ones it revoked."""
    issued = store.issue_token(name, days=days)
    return issued, store.revoke_tokens_except(name, issued.credential_id)


def forget_namespace(settings: HubSettings, principals: list[Principal]) -> None:
    """Remove the credentials and grants of a namespace's principals (a test session's)."""
    access = KafkaAccess(settings)
    try:
        report = SyncReport()
        for principal in [service(name) for name in SERVICES] + principals:
            access.withdraw(principal, report)
    finally:
        access.close()
