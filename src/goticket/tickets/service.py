"""Use cases of ticket codes that need no table: sign, verify, publish the public keys.

Issuance (tickets of a confirmed booking) and check-in build on this; the keys are loaded once
per process by the composition root, so a rotation takes effect when the service restarts."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from goticket.tickets.domain import (
    PublicKey,
    SigningKey,
    TicketClaims,
    issue_code,
    jwk,
    verify_code,
)


class TicketSigning:
    def __init__(self, current: SigningKey, published: Sequence[PublicKey]) -> None:
        self._current = current
        self._keys = {key.kid: key for key in published}
        self._jwks = [jwk(key) for key in published]

    def issue(self, ticket_id: UUID, event_id: UUID) -> str:
        return issue_code(ticket_id, event_id, self._current)

    def verify(self, code: str) -> TicketClaims:
        return verify_code(code, self._keys)

    def public_jwks(self) -> list[dict[str, str]]:
        return list(self._jwks)
