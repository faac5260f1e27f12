"""`sendhub serve gateway`: the app on uvicorn, over TLS unless told otherwise.

Listens where `SENDHUB_GATEWAY_URL` says (default https://127.0.0.1:8443; port 0 takes
any free port). TLS uses `SENDHUB_GATEWAY_CERTIFICATE_FILE` and `SENDHUB_GATEWAY_KEY_FILE`,
by default the certificate deploy/local/up generates. Plain HTTP only when the URL says
http://, with a warning logged at start. The socket is bound before anything connects, so
a port in use is said at once; the port bound is logged as `gateway.listening`.
uvicorn's access log is off: the app logs each request without its path (a UPN) or
headers (a token).
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

from services.shared.serving import bind
from services.shared.settings import LOCAL_DIR, HubSettings

GRACEFUL_SHUTDOWN_SECONDS = 5
log = logging.getLogger("sendhub.gateway")


class GatewayConfigError(ValueError):
    """SENDHUB_GATEWAY_URL or the TLS files cannot be used."""


def listen_address(url: str, setting: str = "SENDHUB_GATEWAY_URL") -> tuple[str, int, bool]:
    """(host, port, tls) from the gateway's URL (or the admin console's, `setting`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise GatewayConfigError(f"{setting} must be https://host:port, not {url!r}")
    tls = parts.scheme == "https"
    return parts.hostname, parts.port if parts.port is not None else (443 if tls else 80), tls


def tls_files(settings: HubSettings) -> tuple[Path, Path]:
    certificate = settings.gateway_certificate_file or LOCAL_DIR / "tls" / "server.pem"
    key = settings.gateway_key_file or LOCAL_DIR / "tls" / "server.key"
    for what, path in (("certificate", certificate), ("key", key)):
        if not path.is_file():
            raise GatewayConfigError(
                f"the gateway's TLS {what} {path} is missing: run deploy/local/up, or set "
                "SENDHUB_GATEWAY_CERTIFICATE_FILE and SENDHUB_GATEWAY_KEY_FILE")
    return certificate, key


async def serve_gateway(settings: HubSettings) -> None:
    from sendhub.gateway.app import build_app

    # httpx logs every URL it calls at INFO: a webhook URL may carry a receiver's secret.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    host, port, tls = listen_address(settings.gateway_url)
    files = tls_files(settings) if tls else None
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    if not tls:
        log.warning("gateway.plaintext", extra={
            "detail": "SENDHUB_GATEWAY_URL is http://: tokens and SEN data cross the network "
                      "unencrypted; use https:// outside a test"})
    config = uvicorn.Config(
        build_app(settings), log_config=None, access_log=False, lifespan="on",
        # SIGTERM: requests in hand finish; idle keep-alive clients do not hold it open
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        ssl_certfile=str(files[0]) if files else None,
        ssl_keyfile=str(files[1]) if files else None)
    log.info("gateway.listening", extra={"host": host, "port": bound,
                                         "scheme": "https" if tls else "http"})
    try:
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()
