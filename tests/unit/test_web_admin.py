"""The admin console's pure rules: what the operator may add or revoke (the CLI's own
rules and errors), how a form's values are read, the registry import's per-line report
(the CLI's messages), the sign-in link, and that the gateway serves none of it."""

from __future__ import annotations

import pytest

from sendhub.principal_rules import BUILT_IN, KINDS, principal_to_add, refuse_built_in
from sendhub.principals_admin import SyncReport, sync_summary
from sendhub.web.admin import MAX_TOKEN_DAYS, acts_for_of, shown_lines, token_days
from sendhub.web.admin_app import admin_pages, link_url, loopback
from sendhub.web.routes import gateway_pages
from services.shared.access import PrincipalError
from services.transfers.registry import (
    RowProblem,
    imported_message,
    parse_registry_csv,
    read_registry_csv,
    skipped_message,
)

CSV = ("URN,EstablishmentName,PhaseOfEducation (name),LA (code),Trusts (name)\n"
       "100001,Alder Primary,Primary,801,\n"
       "12345,Too Short,Secondary,801,\n"
       "100002,Birch Academy,Secondary,801,Avon Trust\n"
       "100003,,Primary,801,\n")


@pytest.mark.parametrize(("kind", "identifier", "acts_for", "name"), [
    ("school", "100001", [], "school-100001"),
    ("post16", "10000001", [], "post16-10000001"),
    ("la", "801", [], "la-801"),
    ("trust", "Avon Valley Trust", [], "trust-avon-valley-trust"),
    ("connector", "Acme MIS", ["100001", "100002"], "connector-acme-mis"),
    ("auditor", "J Smith", [], "auditor-j-smith"),
])
def test_a_principal_to_add_is_named_as_the_cli_names_it(
        kind: str, identifier: str, acts_for: list[str], name: str) -> None:
    principal = principal_to_add(kind, identifier, acts_for)
    assert principal.name == name and principal.acts_for == frozenset(acts_for)


@pytest.mark.parametrize(("kind", "identifier", "acts_for", "error"), [
    ("school", "12345", [], "a school is identified by a 6-digit URN, not '12345'"),
    ("post16", "20000001", [], "a post16 is identified by an 8-digit UKPRN starting 1"),
    ("la", "80", [], "a la is identified by a 3-digit LA code, not '80'"),
    ("school", "100001", ["100002"], "acts"),
    ("pupil", "x", [], f"unknown kind 'pupil': one of {KINDS}"),
    ("service", "ingest", [], BUILT_IN),
    ("operator", "operator", [], BUILT_IN),
    ("service", "nobody", [], "a service is identified by ingest or records"),
])
def test_a_principal_that_cannot_be_added_is_refused_with_the_clis_error(
        kind: str, identifier: str, acts_for: list[str], error: str) -> None:
    with pytest.raises(PrincipalError) as refused:
        principal_to_add(kind, identifier, acts_for)
    assert error in str(refused.value)


@pytest.mark.parametrize("name", ["operator", "service-ingest", "service-gateway"])
def test_built_in_principals_cannot_be_revoked(name: str) -> None:
    with pytest.raises(PrincipalError, match=f"{name} is built in and cannot be revoked"):
        refuse_built_in(name)


@pytest.mark.parametrize("name", ["school-100001", "la-801", "connector-service-desk"])
def test_other_principals_may_be_revoked(name: str) -> None:
    refuse_built_in(name)


def test_a_connectors_urns_may_be_typed_with_commas_spaces_or_lines() -> None:
    assert acts_for_of(" 100001, 100002;100003\n100004  ") == ["100001", "100002", "100003",
                                                               "100004"]
    assert acts_for_of("  ") == []


@pytest.mark.parametrize(("typed", "days"), [("90", 90), (" 1 ", 1),
                                             (str(MAX_TOKEN_DAYS), MAX_TOKEN_DAYS)])
def test_a_tokens_lifetime_is_a_whole_number_of_days(typed: str, days: int) -> None:
    assert token_days(typed) == days


@pytest.mark.parametrize("typed", ["0", "-5", "1.5", "ninety", "", str(MAX_TOKEN_DAYS + 1),
                                   "9" * 40])
def test_a_tokens_lifetime_out_of_range_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match="whole number of days"):
        token_days(typed)


def test_every_line_of_a_registry_file_is_read_with_its_setting_or_why_not() -> None:
    lines = read_registry_csv(CSV)
    assert [(r.line, r.urn, r.problem) for r in lines] == [
        (2, "100001", None), (3, "12345", "URN '12345' is not 6 digits"),
        (4, "100002", None), (5, "100003", "EstablishmentName is empty")]
    assert lines[2].setting is not None and lines[2].setting.trust == "Avon Trust"
    assert lines[1].setting is None


def test_the_per_line_reading_agrees_with_the_clis_parser() -> None:
    settings, problems = parse_registry_csv(CSV)
    lines = read_registry_csv(CSV)
    assert settings == [r.setting for r in lines if r.setting]
    assert problems == [RowProblem(r.line, r.problem) for r in lines if r.problem]


def test_the_import_is_reported_in_the_clis_words() -> None:
    assert skipped_message("gias.csv", RowProblem(3, "URN '12345' is not 6 digits")) == \
        "gias.csv:3: skipped: URN '12345' is not 6 digits"
    assert imported_message("gias.csv", 2, 2) == \
        "Imported 2 setting(s) from gias.csv; 2 row(s) skipped"
    assert imported_message("gias.csv", 5, 0) == "Imported 5 setting(s) from gias.csv"


def test_a_long_report_shows_every_refused_line_and_the_first_imported_ones() -> None:
    rows = "".join(f"{100000 + n},School {n},Primary\n" if n % 10 else f"bad{n},X,Primary\n"
                   for n in range(1, 101))
    lines = read_registry_csv("URN,EstablishmentName,PhaseOfEducation (name)\n" + rows)
    shown, left_out = shown_lines(lines, limit=20)
    assert sum(1 for r in shown if r.problem) == 10
    assert sum(1 for r in shown if r.problem is None) == 20 and left_out == 70
    assert [r.line for r in shown] == sorted(r.line for r in shown)
    assert shown_lines(lines) == (lines, 0)


def test_the_sync_report_reads_as_the_clis() -> None:
    report = SyncReport(users=["school-1", "service-ingest"], granted=3, removed=1,
                        revoked=["school-2"], topics_created=["a", "b"])
    assert sync_summary(report) == ("principals synced: 2 Kafka users, 3 grants added, "
                                    "1 removed, 1 revoked, 2 topics created")


def test_the_sign_in_link_names_where_the_console_listens() -> None:
    assert link_url("https", "127.0.0.1", 8444, "abc") == \
        "https://127.0.0.1:8444/sign-in/link?code=abc"
    assert link_url("https", "::1", 8444, "abc") == "https://[::1]:8444/sign-in/link?code=abc"


@pytest.mark.parametrize(("host", "local"), [("127.0.0.1", True), ("::1", True),
                                             ("localhost", True), ("0.0.0.0", False),
                                             ("10.1.2.3", False), ("admin.example", False)])
def test_only_loopback_is_loopback(host: str, local: bool) -> None:
    assert loopback(host) is local


def test_the_gateway_serves_none_of_the_consoles_pages() -> None:
    served = {getattr(r, "path", "") for router in gateway_pages() for r in router.routes}
    console = {getattr(r, "path", "") for router in admin_pages() for r in router.routes}
    assert console and all(path.startswith("/admin") for path in console)
    assert not {p for p in served if p.startswith("/admin")}
