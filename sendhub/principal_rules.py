"""What the operator may add or revoke, and how a typed kind and identifier become a
principal: one set of rules for `sendhub principals` and the admin console.

Pure and light (the CLI imports it on every call): no I/O, only `services.shared.access`.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.shared.access import Kind, Principal, PrincipalError, slug

KINDS = "school URN, post16 UKPRN, connector NAME, la CODE, trust NAME, auditor NAME"
ADDABLE = (Kind.school, Kind.post16, Kind.connector, Kind.la, Kind.trust, Kind.auditor)
NAMED = ("trust", "connector", "auditor")
"""Kinds identified by a name, slugged as the registry's trust names are."""
BUILT_IN = ("services and the operator are built in; `sendhub principals sync` gives them "
            "their credentials")


def principal_to_add(kind: str, identifier: str, acts_for: Iterable[str] = ()) -> Principal:
    """The principal `sendhub principals add KIND IDENTIFIER` adds, or `PrincipalError`
    saying what was expected."""
    try:
        principal = Principal(Kind(kind), slug(identifier) if kind in NAMED else identifier,
                              frozenset(acts_for))
    except ValueError as exc:
        if isinstance(exc, PrincipalError):
            raise
        raise PrincipalError(f"unknown kind {kind!r}: one of {KINDS}") from None
    if principal.kind not in ADDABLE:
        raise PrincipalError(BUILT_IN)
    return principal


def refuse_built_in(name: str) -> None:
    """Services and the operator are not rows to revoke: say so rather than 'unknown'."""
    if name == "operator" or name.startswith(f"{Kind.service.value}-"):
        raise PrincipalError(f"{name} is built in and cannot be revoked (`sendhub principals "
                             "sync` gives the services and the operator their credentials)")
