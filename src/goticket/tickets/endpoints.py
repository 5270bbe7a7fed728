"""Routes of the tickets context: thin — call one service function, render."""

from __future__ import annotations

import msgspec
from litestar import Router, get
from litestar.datastructures import ResponseHeader

from goticket.tickets.schemas import Jwks
from goticket.tickets.service import TicketSigning

# Scanners may keep the keys this long; one that meets a code of an unknown kid fetches again.
CACHE_CONTROL = "public, max-age=300"


def tickets_router(signing: TicketSigning) -> Router:
    keys = msgspec.convert({"keys": signing.public_jwks()}, Jwks)

    @get(
        "/.well-known/goticket-keys.json",
        tags=["tickets"],
        response_headers=[
            ResponseHeader(name="Cache-Control", value=CACHE_CONTROL, description="cacheable")
        ],
        sync_to_thread=False,
    )
    def ticket_keys() -> Jwks:
        """The public keys that sign ticket codes, as a JWK Set: anyone may verify a code
        offline. A code's payload names its key by `kid`; keys rotate by `kid`, and old keys
        stay published while their tickets may be used."""
        return keys

    return Router("", route_handlers=[ticket_keys])
