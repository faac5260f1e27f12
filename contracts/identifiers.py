"""Identifiers used across English education: UPN, ULN, URN, UKPRN.

Contract layer: pure functions, standard library only. The check algorithms follow the
DfE's published rules (see ../shared/DOMAIN.md, "Standards and rules").
"""

from __future__ import annotations

import re

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # A=0 ... Z=22; I, O and S are never used.
TEMPORARY_ULN = "9999999999"

# ASCII digits only ([0-9], not \d, which matches any script's digits) and the whole
# string (fullmatch, not $, which also matches before a trailing newline): an identifier
# is a Kafka topic name and a stream id, so two spellings of one number must not pass.
_UPN_SHAPE = re.compile(r"[A-Z][0-9]{11}[0-9A-Z]")
_URN_SHAPE = re.compile(r"[0-9]{6}")
_UKPRN_SHAPE = re.compile(r"1[0-9]{7}")
_ULN_SHAPE = re.compile(r"[1-9][0-9]{9}")


class IdentifierError(ValueError):
    """Raised when an identifier is malformed or fails its check; the message says why."""


def upn_check_letter(body: str) -> str:
    """The check letter for the 12 characters that follow it in a UPN."""
    total = 0
    for weight, char in enumerate(body, start=2):
        value = int(char) if char.isdigit() else UPN_LETTERS.index(char)
        total += weight * value
    return UPN_LETTERS[total % 23]


def check_upn(upn: str) -> bool:
    """Validate a UPN; returns True when it is a temporary UPN (final character a letter)."""
    if len(upn) != 13:
        raise IdentifierError(f"a UPN has 13 characters, this one has {len(upn)}")
    if not _UPN_SHAPE.fullmatch(upn):
        raise IdentifierError(
            "a UPN is a check letter, 11 digits, then a digit or (temporary UPN) a letter"
        )
    for char in (upn[0], upn[12]):
        if char.isalpha() and char not in UPN_LETTERS:
            raise IdentifierError(f"the letter {char!r} is never used in a UPN")
    expected = upn_check_letter(upn[1:])
    if upn[0] != expected:
        raise IdentifierError(
            f"the UPN check letter is {upn[0]!r} but the digits give {expected!r}"
        )
    return upn[12].isalpha()


def check_uln(uln: str) -> bool:
    """Validate a ULN; returns True for the temporary ULN 9999999999."""
    if uln == TEMPORARY_ULN:
        return True
    if not _ULN_SHAPE.fullmatch(uln):
        raise IdentifierError("a ULN is 10 digits and does not start with 0")
    remainder = sum(int(d) * w for d, w in zip(uln[:9], range(10, 1, -1), strict=True)) % 11
    if remainder == 0:
        raise IdentifierError("this ULN cannot be valid: its weighted sum leaves remainder 0")
    expected = 10 - remainder
    if int(uln[9]) != expected:
        raise IdentifierError(f"the ULN check digit is {uln[9]} but the digits give {expected}")
    return False


def check_urn(urn: str) -> None:
    if not _URN_SHAPE.fullmatch(urn):
        raise IdentifierError("a URN is exactly 6 digits")


def check_ukprn(ukprn: str) -> None:
    if not _UKPRN_SHAPE.fullmatch(ukprn):
        raise IdentifierError("a UKPRN is exactly 8 digits and starts with 1")
