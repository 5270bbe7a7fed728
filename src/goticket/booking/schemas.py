"""HTTP bodies of the booking context."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from goticket.booking.domain import MAX_QUANTITY, Booking, BookingStatus


class BookingRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    quantity: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)] = 1


class BookingResponse(msgspec.Struct, rename="camel"):
    id: UUID
    event_id: UUID
    user_id: UUID
    quantity: int
    status: BookingStatus
    total_price: int
    currency: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, b: Booking) -> BookingResponse:
        return cls(
            b.id,
            b.event_id,
            b.user_id,
            b.quantity,
            b.status,
            b.total_price,
            b.currency,
            b.created_at,
            b.updated_at,
        )


class BookingPage(msgspec.Struct, rename="camel"):
    items: list[BookingResponse]
    next_cursor: str | None
