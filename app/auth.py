"""Who is calling: JWT verification, stream tickets, and what a caller may see.

Tokens are verified against an algorithm allow-list (`JWT_ALGORITHMS`; `none` is never
accepted), the key is chosen by algorithm family (HMAC secret vs public key, so a public key
can never be used as an HMAC secret), `exp` is required, and `aud`/`iss` are checked when
configured. A customer token carries `sub` and its account id (`JWT_ACCOUNT_CLAIM`); a
service token carries an OAuth-style space-separated `scope`.

Stream tickets are short-lived HS256 tokens that the server signs itself, bound to one order
and one account, so a browser can open an EventSource without putting its JWT in a URL.

Failures raise `ApiError` with a reason code (counted in metrics); tokens never reach a log or
an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import jwt
from flask import Request

from settings import WebSettings

from .errors import ApiError

SERVICE_SCOPE = "orders:fulfill"
READ_SCOPES = frozenset({"orders:read", SERVICE_SCOPE})
_TICKET_AUDIENCE = "order-stream"
_TICKET_TYPE = "stream-ticket"
_HMAC_FAMILY = "HS"
_QUERY_CREDENTIALS = ("access_token", "token", "jwt")
#: The `ord` of an account ticket: it opens the account's stream, and no order's.
ACCOUNT_TICKET = "*"


@dataclass(frozen=True)
class Principal:
    """A verified caller."""

    subject: str
    account_id: str | None
    scopes: frozenset[str]
    expires_at: float
    #: Set for a stream ticket: the only order it opens.
    order_id: str | None = None
    #: The token's `iat`, when it has one.
    issued_at: float | None = None

    def has_scope(self, *wanted: str) -> bool:
        return any(scope in self.scopes for scope in wanted)

    def is_customer(self) -> bool:
        return self.account_id is not None and not self.scopes


class AuthError(ApiError):
    """401: the credentials are missing, malformed, expired or not ours."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(401, reason, message, {"WWW-Authenticate": 'Bearer realm="orders"'})
        self.reason = reason


class Forbidden(ApiError):
    """403: valid credentials without the right to this resource."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(403, reason, message)
        self.reason = reason


class Authenticator:
    """Verifies tokens and signs stream tickets with one configuration."""

    def __init__(self, web: WebSettings) -> None:
        self.algorithms = _allowed_algorithms(web.jwt_algorithms)
        self.secret = web.jwt_secret
        self.public_key = web.jwt_public_key
        self.audience = web.jwt_audience
        self.issuer = web.jwt_issuer
        self.account_claim = web.jwt_account_claim
        self.leeway = web.jwt_leeway_seconds
        self.ticket_ttl = web.stream_ticket_ttl_seconds
        self.ticket_secret = _ticket_secret(web)
        self.max_ttl = web.jwt_max_ttl_seconds
        self.expiry_margin = web.sse_expiry_margin_seconds

    def verify(self, token: str) -> Principal:
        """Verify a customer or service JWT."""
        algorithm = self._header_algorithm(token)
        key = self.secret if algorithm.startswith(_HMAC_FAMILY) else self.public_key
        if not key:
            raise AuthError("TOKEN_INVALID", f"tokens signed with {algorithm} are not accepted")
        claims = self._decode(token, key, [algorithm], self.audience, self.issuer)
        return self._principal(claims)

    def _header_algorithm(self, token: str) -> str:
        try:
            algorithm = str(jwt.get_unverified_header(token).get("alg", ""))
        except jwt.PyJWTError:
            raise AuthError("TOKEN_MALFORMED", "the token is not a JWT") from None
        if algorithm not in self.algorithms:
            raise AuthError("TOKEN_ALGORITHM", f"algorithm {algorithm or 'none'} is not allowed")
        return algorithm

    def _decode(
        self, token: str, key: str, algorithms: list[str], audience: str | None, issuer: str | None
    ) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=audience,
                issuer=issuer,
                leeway=self.leeway,
                options={"require": ["exp"], "verify_aud": audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("TOKEN_EXPIRED", "the token has expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError("TOKEN_INVALID", f"the token lacks the {exc.claim} claim") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise AuthError("TOKEN_INVALID", "the token is not meant for this service") from None
        except jwt.InvalidSignatureError:
            raise AuthError("TOKEN_INVALID", "the token signature does not verify") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthError("TOKEN_INVALID", "the token is not valid") from None

    def _principal(self, claims: dict[str, Any]) -> Principal:
        account = claims.get(self.account_claim)
        scope = claims.get("scope") or ""
        if not isinstance(scope, str) or (account is not None and not isinstance(account, str)):
            raise AuthError("TOKEN_INVALID", "the token's claims have the wrong types")
        expires_at, issued_at = self._lifetime(claims)
        return Principal(
            subject=str(claims.get("sub", "")),
            account_id=account or None,
            scopes=frozenset(scope.split()),
            expires_at=expires_at,
            issued_at=issued_at,
        )

    def _lifetime(self, claims: dict[str, Any]) -> tuple[float, float | None]:
        """`exp` and `iat` as unix times, refusing absurd values and lifetimes longer than
        `JWT_MAX_TTL_SECONDS` (a stolen ten-year token must not keep working)."""
        expires_at, issued_at = _timestamp(claims.get("exp")), claims.get("iat")
        if expires_at is None or (issued_at is not None and _timestamp(issued_at) is None):
            raise AuthError("TOKEN_INVALID", "the token's exp or iat is not a valid time")
        start = float(issued_at) if issued_at is not None else time.time()
        if self.max_ttl and expires_at - start > self.max_ttl:
            raise AuthError("TOKEN_LIFETIME", "the token's lifetime is longer than allowed")
        return expires_at, float(issued_at) if issued_at is not None else None

    def stream_deadline(self, principal: Principal) -> float:
        """When a stream opened with `principal` ends: a margin before the credential expires
        (at most a tenth of its lifetime), so the page renews it before there is a gap."""
        lifetime = principal.expires_at - (principal.issued_at or time.time())
        return principal.expires_at - min(self.expiry_margin, max(0.0, lifetime) / 10)

    def check_streamable(self, principal: Principal) -> float:
        """The stream deadline, or a 401 when the credential is too close to expiring to be
        worth a stream (or a ticket): the caller needs a new credential first."""
        deadline = self.stream_deadline(principal)
        if time.time() >= deadline:
            raise AuthError("TOKEN_EXPIRED", "the credential expires too soon; renew it")
        return deadline

    # --- stream tickets --------------------------------------------------------------------

    def issue_ticket(self, principal: Principal, order_id: str) -> tuple[str, int]:
        """A ticket for `order_id`'s stream, expiring with the ticket TTL or the token; never
        for a token already past (or at) the point where its streams would end."""
        self.check_streamable(principal)
        now = int(time.time())
        expires = min(now + self.ticket_ttl, int(principal.expires_at))
        claims = {
            "typ": _TICKET_TYPE,
            "sub": principal.subject,
            "acc": principal.account_id,
            "ord": order_id,
            "aud": _TICKET_AUDIENCE,
            "iat": now,
            "exp": expires,
        }
        return jwt.encode(claims, self.ticket_secret, algorithm="HS256"), max(0, expires - now)

    def verify_ticket(self, ticket: str) -> Principal:
        claims = self._decode(ticket, self.ticket_secret, ["HS256"], _TICKET_AUDIENCE, None)
        if claims.get("typ") != _TICKET_TYPE or not isinstance(claims.get("ord"), str):
            raise AuthError("TICKET_INVALID", "not a stream ticket")
        expires_at, issued_at = self._lifetime(claims)
        return Principal(
            subject=str(claims.get("sub", "")),
            account_id=claims.get("acc"),
            scopes=frozenset(),
            expires_at=expires_at,
            order_id=claims["ord"],
            issued_at=issued_at,
        )

    # --- reading credentials from a request ------------------------------------------------

    def from_header(self, request: Request) -> Principal:
        """The caller of an API endpoint: `Authorization: Bearer <JWT>` only."""
        return self.verify(_bearer(request) or _missing())

    def from_stream_request(self, request: Request) -> Principal:
        """The caller of a stream: Bearer header, `access_token` cookie, or `?ticket=`."""
        if any(name in request.args for name in _QUERY_CREDENTIALS):
            raise AuthError("TOKEN_IN_QUERY", "tokens are refused in URLs; use a stream ticket")
        token = _bearer(request) or request.cookies.get("access_token")
        if token:
            return self.verify(token)
        ticket = request.args.get("ticket")
        if ticket:
            return self.verify_ticket(ticket)
        return self.verify(_missing())

    def from_header_or_cookie(self, request: Request) -> Principal:
        """The caller of a page-initiated API call: Bearer header or the `access_token` cookie."""
        return self.verify(_bearer(request) or request.cookies.get("access_token") or _missing())


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _missing() -> NoReturn:
    raise AuthError("TOKEN_MISSING", "credentials are required")


#: Latest time a token may name (year 2500): anything beyond is garbage, not a date.
_LATEST_TIMESTAMP = 16_725_225_600


def _timestamp(value: Any) -> float | None:
    """A claim as a unix time, or None unless it is a number in a sane range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= _LATEST_TIMESTAMP else None


def _allowed_algorithms(value: str) -> frozenset[str]:
    names = {name.strip() for name in value.replace(",", " ").split()}
    names.discard("none")  # never, whatever the configuration says
    return frozenset(names & set(jwt.algorithms.get_default_algorithms()))


def _ticket_secret(web: WebSettings) -> str:
    if web.stream_ticket_secret:
        return web.stream_ticket_secret
    if web.jwt_secret:
        # A separate key derived from the JWT secret: a ticket is never a valid JWT.
        return hmac.new(web.jwt_secret.encode(), b"stream-ticket", hashlib.sha256).hexdigest()
    raise RuntimeError("set STREAM_TICKET_SECRET (or JWT_SECRET) to sign stream tickets")


def mint_token(
    web: WebSettings,
    *,
    account_id: str | None,
    scope: str | None,
    ttl: int,
    subject: str | None = None,
) -> str:
    """Sign a token with the configured key, for development and tests (`fulfillment token`)."""
    algorithm = sorted(_allowed_algorithms(web.jwt_algorithms))[0]
    key = web.jwt_secret if algorithm.startswith(_HMAC_FAMILY) else web.jwt_private_key
    if not key:
        raise RuntimeError(f"no key to sign {algorithm} tokens (set JWT_SECRET or JWT_PRIVATE_KEY)")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject or account_id or "service",
        "iat": now,
        "exp": now + ttl,
    }
    if account_id:
        claims[web.jwt_account_claim] = account_id
    if scope:
        claims["scope"] = scope
    if web.jwt_audience:
        claims["aud"] = web.jwt_audience
    if web.jwt_issuer:
        claims["iss"] = web.jwt_issuer
    return jwt.encode(claims, key, algorithm=algorithm)
