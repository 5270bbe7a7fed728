"""HTTP shapes of the tickets context."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec


class Jwk(msgspec.Struct, frozen=True):
    """An Ed25519 public key that signs ticket codes (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    kid: Annotated[str, msgspec.Meta(description="the key id a code's payload names")]
    x: Annotated[str, msgspec.Meta(description="the 32-byte public key, unpadded base64url")]
    use: Literal["sig"]


class Jwks(msgspec.Struct, frozen=True):
    keys: list[Jwk]
