"""HTTP shapes of the tickets context."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from goticket.tickets.domain import MAX_CODE_LENGTH, ScanOutcome, ScanResult, TicketStatus
from goticket.tickets.ports import Sales
from goticket.tickets.service import ShownTicket

MAX_SCANS = 1000


class Jwk(msgspec.Struct, frozen=True):
    """An Ed25519 public key that signs ticket codes (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    kid: Annotated[str, msgspec.Meta(description="the key id a code's payload names")]
    x: Annotated[str, msgspec.Meta(description="the 32-byte public key, unpadded base64url")]
    use: Literal["sig"]


class Jwks(msgspec.Struct, frozen=True):
    keys: list[Jwk]


Code = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_CODE_LENGTH,
        description="A ticket code `GT1.<payload>.<signature>`, as the ticket's QR code holds it",
    ),
]


class TicketResponse(msgspec.Struct, rename="camel"):
    id: UUID
    booking_id: UUID
    event_id: UUID
    status: TicketStatus
    code: Annotated[
        str,
        msgspec.Meta(
            description="`GT1.<payload>.<signature>`: verifiable offline with the published keys"
        ),
    ]
    checked_in_at: Annotated[
        datetime | None, msgspec.Meta(description="When the ticket was first used; null until then")
    ]

    @classmethod
    def of(cls, shown: ShownTicket) -> TicketResponse:
        t = shown.ticket
        return cls(t.id, t.booking_id, t.event_id, t.status, shown.code, t.checked_in_at)


class TicketList(msgspec.Struct):
    items: list[TicketResponse]


class CheckInRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: Code


class CheckInResponse(msgspec.Struct, rename="camel"):
    ticket: TicketResponse
    first_check_in: Annotated[
        bool, msgspec.Meta(description="Always true: any later scan of the ticket is a 409")
    ]


class ScanRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    code: Annotated[str, msgspec.Meta(max_length=MAX_CODE_LENGTH, description="The scanned code")]
    scanned_at: Annotated[
        datetime,
        msgspec.Meta(
            tz=True,
            description="RFC 3339 with a UTC offset: when the scanner read the code. A time ahead"
            " of the server's clock counts as the server's time; one before year 1 in UTC as"
            " 0001-01-01T00:00:00Z. A leap second (:60) is refused",
        ),
    ]


class SyncRequest(msgspec.Struct, forbid_unknown_fields=True):
    scans: Annotated[list[ScanRequest], msgspec.Meta(min_length=1, max_length=MAX_SCANS)]


class ScanResultResponse(msgspec.Struct, rename="camel"):
    code: str
    outcome: ScanOutcome
    checked_in_at: Annotated[
        datetime | None,
        msgspec.Meta(
            description="The ticket's first use after the batch; null for invalid and wrong-event"
        ),
    ]

    @classmethod
    def of(cls, result: ScanResult) -> ScanResultResponse:
        return cls(result.code, result.outcome, result.checked_in_at)


class SyncResponse(msgspec.Struct):
    results: list[ScanResultResponse]


class Money(msgspec.Struct):
    amount: Annotated[int, msgspec.Meta(description="Minor units: 25000 is 250.00")]
    currency: Annotated[str, msgspec.Meta(description="ISO 4217 code, the event's")]


class SalesResponse(msgspec.Struct, rename="camel"):
    capacity: int
    available: int
    pending: Annotated[int, msgspec.Meta(description="Spots held, awaiting payment")]
    confirmed: Annotated[int, msgspec.Meta(description="Spots of confirmed bookings")]
    cancelled: Annotated[int, msgspec.Meta(description="Spots of cancelled bookings")]
    expired: Annotated[int, msgspec.Meta(description="Spots of holds that expired")]
    checked_in: Annotated[int, msgspec.Meta(description="Tickets used at the door")]
    revenue: Annotated[
        Money,
        msgspec.Meta(
            description="Σ totalPrice of confirmed bookings (instant or paid) in the event's"
            " currency"
        ),
    ]

    @classmethod
    def of(cls, s: Sales) -> SalesResponse:
        return cls(
            s.capacity,
            s.available,
            s.pending,
            s.confirmed,
            s.cancelled,
            s.expired,
            s.checked_in,
            Money(s.revenue, s.currency),
        )
