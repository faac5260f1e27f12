"""The gateway's pure parts: signatures, the rate limiter, problem documents, content
negotiation, cursors, batches, screening, the retry schedule and the listen address."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sendhub.gateway.bodies import ndjson_lines
from sendhub.gateway.problems import Problem, problem_document, rate_limited, unauthenticated
from sendhub.gateway.ratelimit import RateLimiter
from sendhub.gateway.reading import decode_cursor, encode_cursor, negotiate
from sendhub.gateway.sending import screen_event
from sendhub.gateway.server import GatewayConfigError, listen_address
from sendhub.gateway.signing import BadSignature, sign, verify
from sendhub.gateway.store import inbox_filter
from sendhub.gateway.webhooks import check_url, retry_after
from services.shared.access import Kind, Principal
from tests.factories import school_event

SCHOOL = Principal(Kind.school, "100001")
NOW = datetime(2026, 1, 5, tzinfo=UTC)


# -- signatures -------------------------------------------------------------------------

def test_a_signed_delivery_verifies_with_the_same_secret_and_body() -> None:
    header = sign("whsec_abc", b'{"packet_id": "x"}', 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    verify("whsec_abc", b'{"packet_id": "x"}', header, now=1_700_000_010)


@pytest.mark.parametrize("secret, body, now", [
    ("whsec_other", b'{"packet_id": "x"}', 1_700_000_010),   # another secret
    ("whsec_abc", b'{"packet_id": "y"}', 1_700_000_010),     # a changed body
    ("whsec_abc", b'{"packet_id": "x"}', 1_700_001_000),     # replayed too late
])
def test_a_forged_changed_or_stale_delivery_is_refused(secret: str, body: bytes, now: int) -> None:
    header = sign("whsec_abc", b'{"packet_id": "x"}', 1_700_000_000)
    with pytest.raises(BadSignature):
        verify(secret, body, header, now=now)


def test_a_signature_header_without_its_parts_is_refused() -> None:
    with pytest.raises(BadSignature):
        verify("s", b"", "v1=abc", now=0)


# -- rate limiter -----------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_principal_may_burst_its_rate_then_waits_for_tokens_to_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock)  # one a second, a burst of 60
    assert all(limiter.take("school-100001") == 0.0 for _ in range(60))
    wait = limiter.take("school-100001")
    assert wait == pytest.approx(1.0)
    assert limiter.take("school-100002") == 0.0  # each principal has its own bucket
    clock.now += 1.0
    assert limiter.take("school-100001") == 0.0


# -- problems ---------------------------------------------------------------------------

def test_a_problem_document_has_the_rfc_9457_members() -> None:
    document = problem_document(403, "not yours", problems=[])
    assert document["status"] == 403 and document["title"] == "Forbidden"
    assert document["type"].endswith("/forbidden") and document["detail"] == "not yours"


def test_401_challenges_for_a_bearer_and_429_says_when_to_come_back() -> None:
    assert unauthenticated("x", token_given=False).headers["WWW-Authenticate"] == \
        'Bearer realm="sendhub"'
    assert 'error="invalid_token"' in unauthenticated("x", token_given=True).headers[
        "WWW-Authenticate"]
    limited = rate_limited(0.2)
    assert limited.status == 429 and limited.headers["Retry-After"] == "1"


# -- negotiation and cursors --------------------------------------------------------------

@pytest.mark.parametrize("accept, form", [
    (None, "json"), ("*/*", "json"), ("application/json", "json"),
    ("application/xml", "ctf"), ("text/html,application/json;q=0.5", "html"),
    ("application/json;q=0.2, text/html;q=0.9", "html"), ("image/png, */*;q=0.1", "json"),
])
def test_the_answer_is_in_the_callers_preferred_form(accept: str | None, form: str) -> None:
    assert negotiate(accept, SCHOOL) == form


def test_ctf_is_for_schools_and_an_unknown_form_is_406() -> None:
    with pytest.raises(Problem) as refused:
        negotiate("application/xml", Principal(Kind.la, "801"))
    assert refused.value.status == 406
    with pytest.raises(Problem):
        negotiate("image/png", SCHOOL)


def test_a_cursor_reads_back_and_a_made_up_one_is_400() -> None:
    assert decode_cursor(encode_cursor(1234)) == 1234
    with pytest.raises(Problem) as refused:
        decode_cursor("1234")
    assert refused.value.status == 400


def test_an_la_inbox_is_the_lost_pupils_of_schools_in_its_area() -> None:
    assert inbox_filter("urn-100001") == ("p.receiver = %s", ["urn-100001"])
    where, params = inbox_filter("lost-pupils.la-801")
    assert "lost-pupils" in where and params == ["801"]


# -- batches and screening ----------------------------------------------------------------

def test_blank_lines_are_skipped_but_counted() -> None:
    assert ndjson_lines(b'{"a":1}\n\n  \n{"b":2}\n') == [(1, b'{"a":1}'), (4, b'{"b":2}')]


def test_an_event_is_refused_as_ingest_would_refuse_it_or_for_the_wrong_school() -> None:
    good = json.dumps(school_event()).encode()
    assert screen_event(1, good, SCHOOL, now=NOW, max_bytes=10_000).status == 202
    other = json.dumps(school_event(source={"urn": "100009", "system": "SIMS"})).encode()
    assert screen_event(1, other, SCHOOL, now=NOW, max_bytes=10_000).status == 403
    invalid = screen_event(2, b'{"event_type": "concern_raised"}', SCHOOL, now=NOW,
                           max_bytes=10_000)
    assert invalid.status == 422 and invalid.problems and invalid.document()["line"] == 2
    assert screen_event(1, good, SCHOOL, now=NOW, max_bytes=10).status == 413


# -- webhooks and the listen address ------------------------------------------------------

def test_retries_follow_the_schedule_then_stop() -> None:
    assert [retry_after([5.0, 60.0], n) for n in (1, 2, 3)] == [5.0, 60.0, None]


def test_a_webhook_must_be_https() -> None:
    assert check_url("https://mis.example/hook") == "https://mis.example/hook"
    with pytest.raises(ValueError):
        check_url("http://mis.example/hook")


def test_the_gateway_listens_where_its_url_says() -> None:
    assert listen_address("https://127.0.0.1:8443") == ("127.0.0.1", 8443, True)
    assert listen_address("http://0.0.0.0:8080") == ("0.0.0.0", 8080, False)
    assert listen_address("https://hub.example") == ("hub.example", 443, True)
    with pytest.raises(GatewayConfigError):
        listen_address("ftp://x")
