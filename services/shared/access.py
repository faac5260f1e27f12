"""Who the hub knows and what each may do: pure rules, no I/O.

Every route into the hub (a Kafka topic, an HTTPS request, a CLI command) ends with an
authenticated `Principal`, and every decision about it is one of the functions here, so
the broker's ACLs, the gateway and the tools cannot disagree. Authority comes from how
the caller authenticated (its credentials, the topic it could write to), never from
what a message says about itself.

Who may see what is the hub's access policy, agreed with the data controllers (the
schools, trusts and local authorities), not law. The law behind it: SEN information is
special category data (UK GDPR Article 9) and is shared with a pupil's next school under
the Education (Pupil Information) (England) Regulations 2005, regulation 9.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from contracts.packet import TransferPacketV1


class Kind(StrEnum):
    """The kinds of principal, each identified in its own way."""

    school = "school"        # by URN
    post16 = "post16"        # a post-16 provider, by UKPRN
    connector = "connector"  # a MIS vendor's or trust's central feed, by name
    la = "la"                # a local authority, by its three-digit LA code
    trust = "trust"          # a multi-academy trust, by its registry name
    auditor = "auditor"      # by name
    service = "service"      # ingest, records, transfers, gateway
    operator = "operator"    # manages principals; reads nothing without a role


SERVICES = ("ingest", "records", "transfers", "gateway")
_IDENTIFIER = {
    Kind.school: re.compile(r"[0-9]{6}"),
    Kind.post16: re.compile(r"1[0-9]{7}"),
    Kind.la: re.compile(r"[0-9]{3}"),
    Kind.connector: re.compile(r"[a-z0-9][a-z0-9-]{0,62}"),
    Kind.trust: re.compile(r"[a-z0-9][a-z0-9-]{0,62}"),
    Kind.auditor: re.compile(r"[a-z0-9][a-z0-9.-]{0,62}"),
    Kind.service: re.compile("|".join(SERVICES)),
    Kind.operator: re.compile(r"operator"),
}
_EXAMPLES = {Kind.school: "a 6-digit URN", Kind.post16: "an 8-digit UKPRN starting 1",
             Kind.la: "a 3-digit LA code", Kind.service: " or ".join(SERVICES),
             Kind.operator: "'operator'"}


class PrincipalError(ValueError):
    """A principal that cannot exist: the message says what was expected."""


def slug(text: str) -> str:
    """A trust's registry name (or any name) as a principal identifier."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `acts_for` is the URNs a connector may send events for;
    `members` the URNs of a trust's schools or of the schools in an LA's area, as the
    settings registry says at the time of the check."""

    kind: Kind
    identifier: str
    acts_for: frozenset[str] = field(default_factory=frozenset)
    members: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        shape = _IDENTIFIER[self.kind]
        if not shape.fullmatch(self.identifier):
            expected = _EXAMPLES.get(self.kind, "lower-case letters, digits and hyphens")
            raise PrincipalError(f"a {self.kind.value} is identified by {expected}, "
                                 f"not {self.identifier!r}")
        if self.acts_for and self.kind is not Kind.connector:
            raise PrincipalError("only a connector acts for other settings (--acts-for)")
        bad = [urn for urn in self.acts_for if not re.fullmatch(r"[0-9]{6}", urn)]
        if bad:
            raise PrincipalError(f"--acts-for takes URNs (6 digits), not {', '.join(bad)}")
        if self.kind is Kind.connector and (self.identifier == "gateway" or re.match(
                r"(urn|ukprn|la)-", self.identifier)):
            raise PrincipalError(f"{self.identifier!r} would read as another sender's topic; "
                                 "choose another connector name")

    @property
    def name(self) -> str:
        """The principal's one name: its Kafka user, its access-log actor, its topic suffix."""
        return "operator" if self.kind is Kind.operator else f"{self.kind.value}-{self.identifier}"

    @classmethod
    def parse(cls, name: str, acts_for: Iterable[str] = ()) -> Principal:
        """`school-100001` and the like back into a principal."""
        if name == "operator":
            return cls(Kind.operator, "operator")
        kind, _, identifier = name.partition("-")
        try:
            return cls(Kind(kind), identifier, frozenset(acts_for))
        except ValueError as exc:
            if isinstance(exc, PrincipalError):
                raise
            raise PrincipalError(f"{name!r} is not a principal: expected one of "
                                 f"{', '.join(k.value for k in Kind)}, a hyphen and an "
                                 "identifier (e.g. school-100001)") from None

    def with_members(self, urns: Iterable[str]) -> Principal:
        return Principal(self.kind, self.identifier, self.acts_for, frozenset(urns))


def sender_of(principal: Principal) -> str | None:
    """The suffix of the principal's own inbound topics (contracts/topics.py), if it
    writes to Kafka at all."""
    return {Kind.school: f"urn-{principal.identifier}",
            Kind.post16: f"ukprn-{principal.identifier}",
            Kind.la: f"la-{principal.identifier}",
            Kind.connector: principal.identifier}.get(
        principal.kind, "gateway" if principal == service("gateway") else None)


def principal_named_by_sender(sender: str) -> str:
    """The principal behind an inbound topic's suffix (never the gateway's: it names its
    caller in a header)."""
    if sender.startswith("urn-"):
        return f"school-{sender[4:]}"
    if sender.startswith("ukprn-"):
        return f"post16-{sender[6:]}"
    if sender.startswith("la-"):
        return f"la-{sender[3:]}"
    return f"connector-{sender}"


def service(name: str) -> Principal:
    return Principal(Kind.service, name)


OPERATOR = Principal(Kind.operator, "operator")


def may_send_events_for(principal: Principal, recorded_by: str) -> bool:
    """A school speaks for itself; a connector for the settings it was registered for;
    a local authority for itself (`recorded_by` is `la-<code>` for an LA's events, as
    `contracts.inbound.where_recorded` names them, else the school's URN)."""
    if principal.kind is Kind.school:
        return principal.identifier == recorded_by
    if principal.kind is Kind.connector:
        return recorded_by in principal.acts_for
    if principal.kind is Kind.la:
        return recorded_by == f"la-{principal.identifier}"
    return False


def receivers_of(principal: Principal) -> tuple[str, ...]:
    """Every inbox a principal reads: a school's `urn-…`, a post-16 provider's `ukprn-…`,
    and a local authority's two, its lost pupils (`lost-pupils.la-…`, the possible
    children missing education of its schools) and its own (`la-…`, the EHC plans of
    pupils moving into or out of its care). Others read none."""
    if principal.kind is Kind.school:
        return (f"urn-{principal.identifier}",)
    if principal.kind is Kind.post16:
        return (f"ukprn-{principal.identifier}",)
    if principal.kind is Kind.la:
        return (lost_pupils_receiver(principal.identifier), la_receiver(principal.identifier))
    return ()


def la_receiver(la_code: str) -> str:
    """An LA's own inbox: the EHC plans that move into or out of its care."""
    return f"la-{la_code}"


def lost_pupils_receiver(la_code: str | None) -> str:
    """Pupils who left a school in LA `la_code` for an unknown destination are that LA's
    possible children missing education; one inbox per LA, never a shared one."""
    return f"lost-pupils.la-{la_code or 'unknown'}"


def inbox_of(receiver: str, sending_la: str | None) -> str:
    """The inbox a packet goes to: its receiver's, or for a pupil with no known
    destination, the lost-pupils inbox of the LA of the school the pupil left."""
    return lost_pupils_receiver(sending_la) if receiver == "lost-pupils" else receiver


def packet_inbox(packet: TransferPacketV1) -> str:
    """The inbox a packet went to, from the packet alone (an LA's notice names its
    receiver in `addressed_to`)."""
    return inbox_of(packet.receiver, packet.from_setting.la_code)


def may_receive_for(principal: Principal, inbox: str) -> bool:
    """Reading a packet that went to `inbox`, or sending its receipt."""
    return inbox in receivers_of(principal)


def may_oversee(principal: Principal, urn: str) -> bool:
    """Transfers and overdue lists: a trust for its member schools, an LA for the settings
    in its area, a school for itself."""
    if principal.kind in (Kind.trust, Kind.la):
        return urn in principal.members
    return principal.kind is Kind.school and principal.identifier == urn


def may_read_history(principal: Principal) -> bool:
    """A pupil's whole history, replay, report and verify: auditors, always with a reason."""
    return principal.kind is Kind.auditor


def may_manage_principals(principal: Principal) -> bool:
    return principal.kind is Kind.operator


def may_oversee_la(principal: Principal, la_code: str) -> bool:
    """`sendhub oversight --la CODE`, the figures of an LA's area: that LA and auditors."""
    return principal.kind is Kind.auditor or (
        principal.kind is Kind.la and principal.identifier == la_code)


def may_oversee_trust(principal: Principal, trust_name: str) -> bool:
    """`sendhub oversight --trust NAME`, the figures of a trust's schools: that trust (its
    identifier is the registry name slugged) and auditors."""
    return principal.kind is Kind.auditor or (
        principal.kind is Kind.trust and principal.identifier == slug(trust_name))


def may_see_pupils(principal: Principal, urn: str) -> bool:
    """The pupils behind an oversight figure of the setting `urn`: a trust for its member
    schools, an LA for the settings in its area (`members`, from the registry at the time
    of the check), an auditor for any. Figures themselves carry no pupil and are shown
    to whoever may oversee the scope."""
    if principal.kind is Kind.auditor:
        return True
    if principal.kind in (Kind.trust, Kind.la):
        return urn in principal.members
    return False
