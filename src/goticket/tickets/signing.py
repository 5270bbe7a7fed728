"""Ed25519 keys (``cryptography``) behind the domain's ``SigningKey`` and ``PublicKey``, and
reading public keys back from a JWK Set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from goticket.tickets.domain import KID_PATTERN, PUBLIC_KEY_BYTES, from_b64url

SEED_BYTES = 32


class BadKey(ValueError):
    """A key or a key file that cannot be used; the message says why (never the key itself)."""


@dataclass(frozen=True, slots=True)
class Ed25519Public:
    kid: str
    key: Ed25519PublicKey

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def raw(self) -> bytes:
        return self.key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Ed25519Signing:
    kid: str
    key: Ed25519PrivateKey

    @classmethod
    def generate(cls, kid: str) -> Ed25519Signing:
        return cls(kid, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, kid: str, seed: bytes) -> Ed25519Signing:
        if not KID_PATTERN.fullmatch(kid):
            # Never echoed: written the wrong way round (seed:kid), the "kid" is the secret.
            raise BadKey("a key id is not 1..32 of A-Z a-z 0-9 _ - (the form is kid:seed)")
        if len(seed) != SEED_BYTES:
            raise BadKey(f"key {kid!r} is not {SEED_BYTES} bytes")
        return cls(kid, Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        return self.key.private_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def public(self) -> Ed25519Public:
        return Ed25519Public(self.kid, self.key.public_key())


def public_keys_from_jwks(document: Any) -> dict[str, Ed25519Public]:
    """The Ed25519 keys of a JWK Set by kid. Keys of other types are skipped, as RFC 7517 lets
    a reader do; an Ed25519 key that is malformed makes the whole set unusable (``BadKey``)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise BadKey('not a JWK Set: expected {"keys": [...]}')
    keys: dict[str, Ed25519Public] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        kid, x = jwk.get("kid"), jwk.get("x")
        if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
            raise BadKey("an Ed25519 key has no valid kid")
        raw = from_b64url(x) if isinstance(x, str) else None
        if raw is None or len(raw) != PUBLIC_KEY_BYTES:
            raise BadKey(f"key {kid!r}: x is not {PUBLIC_KEY_BYTES} bytes of base64url")
        if kid in keys:
            raise BadKey(f"key {kid!r} appears twice")
        keys[kid] = Ed25519Public(kid, Ed25519PublicKey.from_public_bytes(raw))
    return keys
