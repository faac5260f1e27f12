"""Reading request bodies within the size limit, and splitting NDJSON batches.

Edge adapter. The limit is checked twice: against `Content-Length` before anything is
read, and while the body streams in (a chunked body has no length, and a length can
lie), so a body over the limit is never held in memory whole.
"""

from __future__ import annotations

from fastapi import Request

from sendhub.gateway.problems import Problem, too_large

JSON = "application/json"
NDJSON = "application/x-ndjson"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to be over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise too_large(f"the body is {declared} bytes; the limit is {limit}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def ndjson_lines(body: bytes) -> list[tuple[int, bytes]]:
    """(line number from 1, bytes) for each non-blank line; blank lines are skipped but
    counted, so a line number always matches the caller's file."""
    return [(number, line) for number, line in enumerate(body.split(b"\n"), start=1)
            if line.strip()]
