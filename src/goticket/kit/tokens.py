"""Stateless access tokens (JWT HS256): verifying one reads no database, the role rides in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import jwt

from goticket.kit.auth import Principal, Role
from goticket.kit.errors import AuthenticationFailed


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
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds

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
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "role", "iat", "exp", "iss", "aud"]},
            )
            return Principal(UUID(str(claims["sub"])), Role(str(claims["role"])))
        except (jwt.PyJWTError, ValueError) as exc:
            raise AuthenticationFailed("the access token is missing, invalid or expired") from exc
