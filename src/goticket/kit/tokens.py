"""Stateless access tokens (JWT HS256): verifying one reads no database, the role rides in it."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from goticket.kit.auth import Principal, Role
from goticket.kit.errors import AuthenticationFailed

_ALGORITHMS = ["HS256"]


def wall_clock() -> float:
    # Looked up at each call, so that a test that moves time.time moves the codec too.
    return time.time()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


class VerifiedTokens:
    """Tokens already verified, each until its own ``exp``: a client sends the same token with
    every request, and a verified token stays valid until then (it is immutable and signed).

    At most ``max_size`` entries; the least recently used leaves first, so a flood of one-off
    tokens never empties the cache of the clients still sending theirs.
    """

    def __init__(self, max_size: int, clock: Callable[[], float] = wall_clock) -> None:
        if max_size < 1:
            raise ValueError("the token cache holds at least one entry")
        self._max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[0] <= self._clock():  # expired at exp, as the verifier decides
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return entry[1]

    def put(self, token: str, principal: Principal, expires: float) -> None:
        self._entries[token] = (expires, principal)
        self._entries.move_to_end(token)
        if len(self._entries) > self._max_size:
            self._entries.popitem(last=False)


class TokenCodec:
    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        cache_size: int = 100_000,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters long")
        self._key = OctKey.import_key(secret)
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        self._clock = clock
        required = jwt.ClaimsOption(essential=True)
        self._claims = jwt.JWTClaimsRegistry(
            # exp, nbf and iat are checked on the clock the cache uses.
            now=lambda: int(self._clock()),
            iss=jwt.ClaimsOption(essential=True, value=issuer),
            aud=jwt.ClaimsOption(essential=True, value=audience),
            sub=required,
            role=required,
            iat=required,
            exp=required,
        )
        self._verified = VerifiedTokens(cache_size, clock)

    def issue(self, principal: Principal, now: datetime) -> IssuedToken:
        claims = {
            "sub": str(principal.user_id),
            "role": principal.role.value,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self._ttl)).timestamp()),
        }
        token = jwt.encode({"alg": _ALGORITHMS[0]}, claims, self._key, algorithms=_ALGORITHMS)
        return IssuedToken(token, self._ttl)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            return known
        principal, expires = self._decode(token)
        self._verified.put(token, principal, expires)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(token, self._key, algorithms=_ALGORITHMS).claims
            self._claims.validate(claims)
            principal = Principal(UUID(str(claims["sub"])), Role(str(claims["role"])))
            return principal, float(claims["exp"])
        except (JoseError, ValueError, TypeError) as exc:
            raise AuthenticationFailed("the access token is missing, invalid or expired") from exc
