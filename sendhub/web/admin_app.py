"""`sendhub serve admin`: the operator's console as its own process, beside the gateway.

Listens where `SENDHUB_ADMIN_URL` says (default https://127.0.0.1:8444, loopback: a
warning is logged for any other host), with the gateway's TLS files. It connects as the
database owner and as the operator on Kafka, so it is never part of the internet-facing
gateway. At start it prints a one-time sign-in link (ten minutes, one use) and logs it
once as `admin.sign_in_link` (without its code); restarting it gives a new one. Errors are pages.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from sendhub.gateway.problems import Problem
from sendhub.gateway.server import GRACEFUL_SHUTDOWN_SECONDS, listen_address, tls_files
from sendhub.web import admin, admin_principals, admin_registry, admin_tokens, admin_webhooks
from sendhub.web.admin import Console
from sendhub.web.app import install_web
from sendhub.web.context import Web
from sendhub.web.pages import error_page, problem_page
from sendhub.web.signin import LINK_SECONDS, new_link
from services.shared.serving import bind
from services.shared.settings import HubSettings

log = logging.getLogger("sendhub.admin")


def admin_pages() -> list[APIRouter]:
    return [admin.router, admin_principals.router, admin_tokens.router, admin_webhooks.router,
            admin_registry.router]


def build_admin_app(settings: HubSettings) -> tuple[FastAPI, Web]:
    """The console's app and its web context (where `new_link` keeps the sign-in codes)."""
    hub = Console.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            hub.close()

    app = FastAPI(title="SEN transfer hub administration", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.console = hub
    web = install_web(app, settings, admin_pages(), admin=True)
    _pages_for_errors(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app, web


def _pages_for_errors(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        return problem_page(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_page(request, 400, "the page was asked for with values it cannot use")

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        return error_page(request, exc.status_code, "there is no such page"
                          if exc.status_code == 404 else str(exc.detail))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> Response:
        log.error("request.failed", extra={"error": type(exc).__name__}, exc_info=exc)
        return error_page(request, 500, "the console failed to answer; try again")


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def link_url(scheme: str, host: str, port: int, code: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}/sign-in/link?code={code}"


async def serve_admin(settings: HubSettings) -> None:
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    host, port, tls = listen_address(settings.admin_url, "SENDHUB_ADMIN_URL")
    files = tls_files(settings) if tls else None
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    scheme = "https" if tls else "http"
    if not loopback(host):
        log.warning("admin.not_loopback", extra={
            "host": host, "detail": "the console acts with the operator's credentials: "
                                    "serve it on loopback and reach it through SSH"})
    if not tls:
        log.warning("admin.plaintext", extra={
            "detail": "SENDHUB_ADMIN_URL is http://: tokens cross the network unencrypted"})
    app, web = build_admin_app(settings)
    link = link_url(scheme, host, bound, new_link(web))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                            ssl_certfile=str(files[0]) if files else None,
                            ssl_keyfile=str(files[1]) if files else None)
    log.info("admin.listening", extra={"host": host, "port": bound, "scheme": scheme})
    # The code is printed to the operator's terminal only: logs are shipped and kept.
    log.info("admin.sign_in_link", extra={"printed": True, "minutes": LINK_SECONDS // 60})
    sys.stdout.write(f"\nSign in to the administration console with this link, once, within "
                     f"{LINK_SECONDS // 60} minutes:\n\n    {link}\n\n")
    sys.stdout.flush()
    try:
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()
