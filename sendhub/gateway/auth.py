"""Who is calling: a bearer token of the hub's own, or an OpenID Connect JWT.

Edge adapter. `Authenticator.principal_for` is synchronous (scrypt and PostgreSQL): the
`caller` dependency runs it off the event loop, then spends one of the principal's
rate-limit tokens. A hub token (`shb_…`) is checked by `PrincipalStore.authenticate`
(revocation and expiry at every request). Any other bearer is read as a JWT when OpenID
Connect is configured: signature by the issuer's JWKS, `iss`, `aud` and `exp` required,
and the claim `SENDHUB_GATEWAY_OIDC_PRINCIPAL_CLAIM` must name an active principal.
Refusals say which check failed, never the token.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Annotated

import anyio
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sendhub.gateway.context import Gateway, gateway
from sendhub.gateway.problems import forbidden, rate_limited, unauthenticated
from services.shared.access import Kind, Principal
from services.shared.principals import TOKEN_PREFIX, PrincipalStore, Unauthenticated
from services.shared.settings import HubSettings

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
bearer = HTTPBearer(auto_error=False, description="a hub token (`sendhub principals add "
                    "... --token`) or an OpenID Connect JWT from a configured issuer")


@dataclass(frozen=True)
class OIDC:
    """A trust's identity provider whose JWTs the gateway accepts."""

    issuer: str
    audience: str
    jwks_url: str
    claim: str

    @classmethod
    def from_settings(cls, settings: HubSettings) -> OIDC | None:
        given = (settings.gateway_oidc_issuer, settings.gateway_oidc_audience,
                 settings.gateway_oidc_jwks_url)
        if not any(given):
            return None
        if not all(given):
            raise ValueError("OpenID Connect needs SENDHUB_GATEWAY_OIDC_ISSUER, "
                             "SENDHUB_GATEWAY_OIDC_AUDIENCE and SENDHUB_GATEWAY_OIDC_JWKS_URL")
        return cls(str(settings.gateway_oidc_issuer), str(settings.gateway_oidc_audience),
                   str(settings.gateway_oidc_jwks_url), settings.gateway_oidc_principal_claim)


class Authenticator:
    def __init__(self, store: PrincipalStore, oidc: OIDC | None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.store = store
        self.oidc = oidc
        self._keys = jwt.PyJWKClient(oidc.jwks_url, cache_keys=True, ssl_context=tls,
                                     timeout=10) if oidc else None

    def principal_for(self, token: str) -> Principal:
        """The principal the bearer stands for, or `Unauthenticated` saying why not."""
        if token.startswith(TOKEN_PREFIX):
            return self.store.authenticate(token)
        if self.oidc is None or token.count(".") != 2:
            raise Unauthenticated("not a sendhub token")
        return self._from_jwt(token, self.oidc)

    def _from_jwt(self, token: str, oidc: OIDC) -> Principal:
        assert self._keys is not None
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=oidc.audience,
                                issuer=oidc.issuer,
                                options={"require": ["exp", "iss", "aud", oidc.claim]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the identity provider's token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is not meant for this hub (aud)") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token is from an issuer this hub does not trust") from None
        except jwt.PyJWKClientError:
            raise Unauthenticated("the token's signing key is not the issuer's") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token was refused ({type(exc).__name__})") from None
        name = claims[oidc.claim]
        principal = self.store.active(name) if isinstance(name, str) else None
        if principal is None:
            raise Unauthenticated(f"the token's {oidc.claim} names no active principal")
        return principal


async def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    hub: Annotated[Gateway, Depends(gateway)],
    request: Request,
) -> Principal:
    """The authenticated principal of this request (401, 403 or 429 otherwise)."""
    if credentials is None or not credentials.credentials:
        raise unauthenticated("send Authorization: Bearer <token>", token_given=False)
    try:
        principal = await anyio.to_thread.run_sync(
            hub.authenticator.principal_for, credentials.credentials)
    except Unauthenticated as exc:
        raise unauthenticated(str(exc), token_given=True) from None
    if principal.kind in (Kind.service, Kind.operator):
        raise forbidden("services and the operator do not act through the gateway")
    request.state.principal = principal.name
    wait = hub.limiter.take(principal.name)
    if wait:
        raise rate_limited(wait)
    return principal


Caller = Annotated[Principal, Depends(caller)]
