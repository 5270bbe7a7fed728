"""Ticket codes ``GT1.<payload>.<signature>``: the format and its rules; no I/O, no crypto library.

``payload`` is unpadded base64url of a compact JSON object with at least ``tid`` (ticket id),
``eid`` (event id) and ``kid`` (key id); ``signature`` is unpadded base64url of the Ed25519
signature of the ASCII bytes ``GT1.<payload>``. The signature itself is made and checked by the
keys this module is given (``tickets/signing.py`` holds the Ed25519 ones).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from goticket.kit.errors import FieldError, InvalidInput

PREFIX = "GT1"
SIGNATURE_BYTES = 64  # Ed25519
PUBLIC_KEY_BYTES = 32
# Far above any code we issue (about 200 characters): a longer one is refused before decoding.
MAX_CODE_LENGTH = 1024
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class InvalidTicketCode(InvalidInput):
    """Whatever is wrong with a code, it is this one error; ``reason`` says what, for operators."""

    code = "invalid-ticket"
    title = "Invalid ticket"

    def __init__(self, reason: str) -> None:
        super().__init__([FieldError("code", reason)], detail=f"invalid ticket code: {reason}")
        self.reason = reason


class PublicKey(Protocol):
    @property
    def kid(self) -> str: ...

    def verify(self, signature: bytes, message: bytes) -> bool: ...

    def raw(self) -> bytes: ...


class SigningKey(Protocol):
    @property
    def kid(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TicketClaims:
    ticket_id: UUID
    event_id: UUID
    kid: str
    # The payload's whole object, unknown fields included (a later code version may add some).
    payload: Mapping[str, Any]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes | None:
    """The bytes of canonical unpadded base64url, else None: no padding, no other alphabet,
    and no second spelling of the same bytes (unused trailing bits must be zero), so that one
    ticket has one code."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if b64url(data) == text else None


def signed_part(payload: str) -> bytes:
    return f"{PREFIX}.{payload}".encode("ascii")


def issue_code(ticket_id: UUID, event_id: UUID, key: SigningKey) -> str:
    claims = {"tid": str(ticket_id), "eid": str(event_id), "kid": key.kid}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{PREFIX}.{payload}.{b64url(key.sign(signed_part(payload)))}"


def jwk(key: PublicKey) -> dict[str, str]:
    """The public key as RFC 8037 publishes it, with exactly the fields API.md lists."""
    return {"kty": "OKP", "crv": "Ed25519", "kid": key.kid, "x": b64url(key.raw()), "use": "sig"}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        # Two parsers of one payload must never disagree on which "tid" it names.
        raise InvalidTicketCode("the payload repeats a field")
    return dict(pairs)


def _uuid(payload: Mapping[str, Any], field: str) -> UUID:
    value = payload.get(field)
    if not isinstance(value, str):
        raise InvalidTicketCode(f"the payload has no {field}")
    try:
        parsed = UUID(value)
    except ValueError:
        raise InvalidTicketCode(f"the payload's {field} is not a UUID") from None
    if str(parsed) != value:
        raise InvalidTicketCode(f"the payload's {field} is not a UUID in canonical form")
    return parsed


@dataclass(frozen=True, slots=True)
class ParsedCode:
    claims: TicketClaims
    signed: bytes
    signature: bytes


def parse_code(code: str) -> ParsedCode:
    """The code's parts, checked for shape only: the signature is not verified here."""
    if len(code) > MAX_CODE_LENGTH:
        raise InvalidTicketCode("the code is too long")
    parts = code.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidTicketCode(f"not a {PREFIX}.<payload>.<signature> code")
    _, payload_text, signature_text = parts
    raw_payload = from_b64url(payload_text)
    if raw_payload is None:
        raise InvalidTicketCode("the payload is not unpadded base64url")
    signature = from_b64url(signature_text)
    if signature is None:
        raise InvalidTicketCode("the signature is not unpadded base64url")
    if len(signature) != SIGNATURE_BYTES:
        raise InvalidTicketCode(f"the signature is not {SIGNATURE_BYTES} bytes (Ed25519)")
    try:
        payload = json.loads(raw_payload.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError):
        raise InvalidTicketCode("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidTicketCode("the payload is not a JSON object")
    kid = payload.get("kid")
    if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
        raise InvalidTicketCode("the payload has no valid kid")
    claims = TicketClaims(_uuid(payload, "tid"), _uuid(payload, "eid"), kid, payload)
    return ParsedCode(claims, signed_part(payload_text), signature)


def verify_code(code: str, keys: Mapping[str, PublicKey]) -> TicketClaims:
    """The claims of a code signed by one of ``keys`` (by kid), else ``InvalidTicketCode``."""
    parsed = parse_code(code)
    key = keys.get(parsed.claims.kid)
    if key is None:
        raise InvalidTicketCode(f"unknown key {parsed.claims.kid!r}")
    if not key.verify(parsed.signature, parsed.signed):
        raise InvalidTicketCode("the signature does not verify")
    return parsed.claims
