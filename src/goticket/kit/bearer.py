"""The caller's identity from ``Authorization: Bearer <access token>``."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from goticket.kit.auth import Principal
from goticket.kit.errors import AuthenticationFailed
from goticket.kit.tokens import TokenCodec

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    return bearer_principal(request.headers.get("authorization"), request.app.state.tokens)


def bearer_principal(header: str | None, tokens: TokenCodec) -> Principal:
    match = _BEARER.match(header) if header else None
    if match is None:
        raise AuthenticationFailed("a bearer access token is required")
    return tokens.verify(match.group(1))
