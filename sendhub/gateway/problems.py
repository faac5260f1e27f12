"""Errors as `application/problem+json` (RFC 9457): one exception, one document shape.

Pure: no I/O. A route raises `Problem`; the app's handler renders it. Details say what
was wrong and how to put it right, never a token, a secret or a pupil's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://sendhub.example/problems/"

# A short, stable type slug per status the gateway answers with.
SLUGS = {
    400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
    406: "not-acceptable", 409: "conflict", 410: "gone", 413: "too-large",
    415: "unsupported-media-type", 422: "invalid", 429: "rate-limited",
    500: "internal-error", 503: "unavailable",
}


class Problem(Exception):
    """Raised by a route when the request cannot be served: the status, a detail for
    the caller, extra members (e.g. `problems`) and response headers."""

    def __init__(self, status: int, detail: str, *, headers: Mapping[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    def document(self) -> dict[str, Any]:
        return problem_document(self.status, self.detail, **self.extensions)


def problem_document(status: int, detail: str, **extensions: Any) -> dict[str, Any]:
    """The RFC 9457 members (type, title, status, detail) and any extension members."""
    return {"type": TYPE_BASE + SLUGS.get(status, "error"),
            "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            **extensions}


def unauthenticated(detail: str, *, token_given: bool) -> Problem:
    """401 with the challenge RFC 6750 asks for (`invalid_token` when one was sent)."""
    challenge = 'Bearer realm="sendhub"' + (', error="invalid_token"' if token_given else "")
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


def forbidden(detail: str) -> Problem:
    return Problem(403, detail)


def not_found(detail: str) -> Problem:
    return Problem(404, detail)


def too_large(detail: str) -> Problem:
    return Problem(413, detail)


def rate_limited(retry_after: float) -> Problem:
    seconds = max(1, int(retry_after + 0.999))
    return Problem(429, f"too many requests from this principal; retry in {seconds} s",
                   headers={"Retry-After": str(seconds)})


def from_validation(status: int, detail: str, problems: list[dict[str, str]]) -> Problem:
    """422 (or 400) with the contract's list of `{path, message}`."""
    return Problem(status, detail, problems=problems)
