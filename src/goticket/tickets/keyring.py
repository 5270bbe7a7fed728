"""The key ring that signs ticket codes: from ``GOTICKET_TICKET_SIGNING_KEY``, else a JSON file in
the data folder, generated once (0600) and rotated by kid. Old keys stay in the ring, so that the
tickets they signed still verify and their public keys stay published.

The file::

    {"current": "<kid>",
     "keys": [{"kid": "<kid>", "privateKey": "<base64url 32-byte seed>",
               "createdAt": "<RFC 3339>"}]}

The variable: ``kid:seed[,kid:seed...]``; the first pair signs, the others only verify.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from goticket.kit.files import create_once, replace_whole
from goticket.tickets.domain import KID_PATTERN, b64url, from_b64url
from goticket.tickets.signing import BadKey, Ed25519Public, Ed25519Signing

FILE_NAME = "ticket-keys.json"
ENV_NAME = "GOTICKET_TICKET_SIGNING_KEY"


@dataclass(frozen=True, slots=True)
class KeyRing:
    current: Ed25519Signing
    # Every key, the current one included, oldest first.
    keys: tuple[Ed25519Signing, ...]
    created: Mapping[str, str] = field(default_factory=dict)

    def public_keys(self) -> dict[str, Ed25519Public]:
        return {key.kid: key.public() for key in self.keys}

    def with_new_key(self, now: datetime) -> KeyRing:
        kid = _new_kid(self.public_keys())
        key = Ed25519Signing.generate(kid)
        return KeyRing(key, (*self.keys, key), {**self.created, kid: now.isoformat()})

    def to_text(self) -> str:
        keys = [
            {"kid": k.kid, "privateKey": b64url(k.seed()), "createdAt": self.created.get(k.kid)}
            for k in self.keys
        ]
        return json.dumps({"current": self.current.kid, "keys": keys}, indent=2) + "\n"


def new_ring(now: datetime) -> KeyRing:
    key = Ed25519Signing.generate(_new_kid({}))
    return KeyRing(key, (key,), {key.kid: now.isoformat()})


def _new_kid(taken: Mapping[str, Any]) -> str:
    while True:
        kid = secrets.token_urlsafe(6)  # 8 characters: short codes, and a clash is retried
        if kid not in taken:
            return kid


def _seed(kid: str, text: object) -> Ed25519Signing:
    if not KID_PATTERN.fullmatch(kid):
        # Never echoed: written the wrong way round (seed:kid), the "kid" is the secret.
        raise BadKey("a key id is not 1..32 of A-Z a-z 0-9 _ - (the form is kid:seed)")
    seed = from_b64url(text) if isinstance(text, str) else None
    if seed is None:
        raise BadKey(f"key {kid!r} is not base64url")
    return Ed25519Signing.from_seed(kid, seed)


def _ring(current: str, keys: list[Ed25519Signing], created: dict[str, str]) -> KeyRing:
    by_kid = {key.kid: key for key in keys}
    if len(by_kid) != len(keys):
        raise BadKey("a key id appears twice")
    if current not in by_kid:
        raise BadKey(f"the current key {current!r} is not in the ring")
    return KeyRing(by_kid[current], tuple(keys), created)


def parse_file(text: str) -> KeyRing:
    try:
        document = json.loads(text)
        entries = document["keys"]
        keys = [_seed(str(entry["kid"]), entry["privateKey"]) for entry in entries]
        created = {str(e["kid"]): str(e["createdAt"]) for e in entries if e.get("createdAt")}
        return _ring(str(document["current"]), keys, created)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadKey(f"unreadable key ring: {exc}") from None


def parse_variable(value: str) -> KeyRing:
    keys = []
    for item in value.split(","):
        kid, colon, seed = item.strip().partition(":")
        if not colon:
            raise BadKey(f"{ENV_NAME}: expected kid:seed[,kid:seed...]")
        keys.append(_seed(kid, seed))
    return _ring(keys[0].kid, keys, {})


class KeyRingFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME

    def existing(self) -> KeyRing | None:
        return parse_file(self.path.read_text()) if self.path.exists() else None

    def load_or_create(self, now: datetime) -> KeyRing:
        return parse_file(create_once(self.path, new_ring(now).to_text()))

    def rotate(self, now: datetime) -> KeyRing:
        # Created first through the same link() as every other starter, so that a process that
        # has just created the ring and signs with it never sees its key replaced.
        self.load_or_create(now)
        with self._locked():
            ring = parse_file(self.path.read_text()).with_new_key(now)
            replace_whole(self.path, ring.to_text())
        return ring

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Two rotations at once must not both read the old ring and drop each other's key.
        fd = os.open(self.path.with_name(f".{FILE_NAME}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
            yield
        finally:
            os.close(fd)


def existing_ring(data_dir: Path, configured: str | None) -> KeyRing | None:
    """The configured ring, else the data folder's if there is one (none is made here)."""
    if configured is not None:
        return parse_variable(configured)
    return KeyRingFile(data_dir).existing()


def resolve_ring(data_dir: Path, configured: str | None, now: datetime) -> KeyRing:
    """The configured ring, else the data folder's (created on first use)."""
    return existing_ring(data_dir, configured) or KeyRingFile(data_dir).load_or_create(now)
