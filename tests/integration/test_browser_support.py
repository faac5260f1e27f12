"""The web application's browser-test infrastructure works: `check_page` passes an
accessible page and names the violations of an inaccessible one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser_support import check_page
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.integration

PIXEL = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
         '<rect width="40" height="40" fill="#1d70b8"/></svg>')

ACCESSIBLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Accessible page</title></head>
<body><main>
  <h1>Pupils moving in</h1>
  <img src="/pixel.svg" alt="Blue square" width="40" height="40">
  <form action="/search" method="get">
    <label for="upn">Unique pupil number</label>
    <input id="upn" name="upn" type="text">
    <button type="submit">Search</button>
  </form>
  <p style="color: #505a5f; background: #ffffff">Secondary text with enough contrast.</p>
</main></body></html>
"""

INACCESSIBLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inaccessible page</title></head>
<body><main>
  <h1>Pupils moving in</h1>
  <img src="/pixel.svg" width="40" height="40">
  <form action="/search" method="get">
    <input name="upn" type="text">
    <button type="submit">Search</button>
  </form>
  <p style="color: #c8c8c8; background: #ffffff">Faint text nobody can read.</p>
</main></body></html>
"""


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: str, content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Pages(_Quiet):
    PAGES = {"/accessible": ACCESSIBLE, "/inaccessible": INACCESSIBLE}

    def do_GET(self) -> None:
        if self.path == "/pixel.svg":
            self.reply(200, PIXEL, "image/svg+xml")
        elif self.path in self.PAGES:
            self.reply(200, self.PAGES[self.path])
        else:
            self.reply(404, "<!doctype html><title>Not found</title>")


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    for server in _serve(_Pages):
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1024, "height": 768})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_check_page_passes_an_accessible_page(page: Any, pages: str) -> None:
    page.goto(f"{pages}/accessible")

    check_page(page, "support-accessible")

    assert (ARTIFACTS / "web-support-accessible.png").stat().st_size > 0
    result = json.loads((ARTIFACTS / "web-support-accessible.axe.json").read_text())
    assert result["violations"] == []
    assert result["toolOptions"]["runOnly"]["values"] == [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
    assert {"image-alt", "label", "color-contrast"} <= {rule["id"] for rule in result["passes"]}


def test_check_page_names_each_violation(page: Any, pages: str) -> None:
    page.goto(f"{pages}/inaccessible")

    with pytest.raises(AssertionError) as failure:
        check_page(page, "support-inaccessible")

    message = str(failure.value)
    for rule in ("image-alt", "label", "color-contrast"):
        assert f"- {rule} (" in message
    assert "Images must have alternative text" in message
    assert "1 node(s): img" in message and "1 node(s): input" in message
    result = json.loads((ARTIFACTS / "web-support-inaccessible.axe.json").read_text())
    assert {v["id"] for v in result["violations"]} == {"image-alt", "label", "color-contrast"}
    assert (ARTIFACTS / "web-support-inaccessible.png").stat().st_size > 0
