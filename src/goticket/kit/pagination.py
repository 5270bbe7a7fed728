"""Opaque, signed keyset cursors: a cursor the server did not issue is refused, never trusted."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from goticket.kit.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the sort key and id of its last item (ties broken by id)."""

    at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: Position | None


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"goticket-cursor:" + secret.encode()).digest()

    def encode(self, kind: str, position: Position) -> str:
        payload = json.dumps([kind, position.at.isoformat(), str(position.id)]).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")

    def decode(self, kind: str, cursor: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            mac, payload = raw[:16], raw[16:]
            expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(mac, expected):
                raise ValueError("bad signature")
            got_kind, at, ident = json.loads(payload)
            if got_kind != kind:
                raise ValueError("cursor of another list")
            return Position(datetime.fromisoformat(at), UUID(ident))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInput.single("cursor", "not a cursor issued by this server") from exc
