"""Stateless access tokens (JWT HS256): verifying one reads no database, the role rides in it."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import jwt

from goticket.kit.auth import Principal, Role
from goticket.kit.errors import AuthenticationFailed

_VERIFIED_MAX = 100_000


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


class TokenCodec:
    _ALGORITHM = "HS256"

    def __init__(self, secret: str, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters long")
        self._secret = secret
        # The key prepared once: PyJWT otherwise re-inspects a raw secret on every decode.
        self._key = jwt.PyJWK(
            {"kty": "oct", "k": base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode()},
            algorithm=self._ALGORITHM,
        )
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        # Tokens already verified, until they expire: a client sends the same token with every
        # request, and a verified token stays valid until its exp (it is immutable and signed).
        self._verified: dict[str, tuple[float, Principal]] = {}

    def issue(self, principal: Principal, now: datetime) -> IssuedToken:
        claims = {
            "sub": str(principal.user_id),
            "role": principal.role.value,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self._ttl)).timestamp()),
        }
        return IssuedToken(jwt.encode(claims, self._secret, self._ALGORITHM), self._ttl)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and known[0] > time.time():
            return known[1]
        principal, expires = self._decode(token)
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (expires, principal)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "role", "iat", "exp", "iss", "aud"]},
            )
            principal = Principal(UUID(str(claims["sub"])), Role(str(claims["role"])))
            return principal, float(claims["exp"])
        except (jwt.PyJWTError, ValueError) as exc:
            raise AuthenticationFailed("the access token is missing, invalid or expired") from exc
