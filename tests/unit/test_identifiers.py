from __future__ import annotations

import pytest

from contracts.identifiers import IdentifierError, check_ukprn, check_uln, check_upn, check_urn


@pytest.mark.parametrize("upn", ["H801200001001", "B801200005001"])
def test_permanent_upns_from_the_dfe_rules_are_valid(upn: str) -> None:
    assert check_upn(upn) is False


def test_a_upn_ending_in_a_letter_is_temporary() -> None:
    assert check_upn("G80120000101A") is True


@pytest.mark.parametrize(
    ("upn", "message"),
    [
        ("Z801200001001", "the UPN check letter is 'Z' but the digits give 'H'"),
        ("H80120000100", "a UPN has 13 characters, this one has 12"),
        ("H8012000010O1", "a UPN is a check letter, 11 digits, then a digit or"),
        ("I801200001001", "the letter 'I' is never used in a UPN"),
    ],
)
def test_invalid_upns_are_refused_with_the_reason(upn: str, message: str) -> None:
    with pytest.raises(IdentifierError, match=message):
        check_upn(upn)


@pytest.mark.parametrize("uln", ["9276308686", "1000000043"])
def test_valid_ulns_pass_the_check_digit(uln: str) -> None:
    assert check_uln(uln) is False


def test_9999999999_is_the_temporary_uln() -> None:
    assert check_uln("9999999999") is True


def test_a_uln_with_a_wrong_check_digit_is_refused() -> None:
    with pytest.raises(IdentifierError, match="check digit is 7 but the digits give 6"):
        check_uln("9276308687")


def test_urn_is_six_digits_and_ukprn_eight_starting_with_1() -> None:
    check_urn("100001")
    check_ukprn("10034567")
    with pytest.raises(IdentifierError, match="exactly 6 digits"):
        check_urn("10001")
    with pytest.raises(IdentifierError, match="starts with 1"):
        check_ukprn("20034567")
