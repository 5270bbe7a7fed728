"""HTTP bodies of the booking context."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from goticket.booking.domain import MAX_QUANTITY, Booking, BookingStatus, PaymentStatus

# Where the buyer pays a hold's payment: (provider, payment id) -> URL, None for a provider this
# service does not know. The payments context's providers say (wired by app.py): the fake's
# checkout is an API call that plays the buyer, Stripe's opens a Checkout page.
CheckoutUrl = Callable[[str, UUID], str | None]


class BookingRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    quantity: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)] = 1


class PaymentResponse(msgspec.Struct, rename="camel"):
    """A hold's payment: `requires_payment` until the provider reports it; `failed` (the buyer
    may pay again while the hold lasts); `succeeded` (the booking is confirmed); `refunded`
    (a cancelled paid booking, or a payment that came after its hold's spots were gone)."""

    id: UUID
    provider: str
    status: PaymentStatus
    amount: int
    currency: str
    checkout_url: str | None


class BookingResponse(msgspec.Struct, rename="camel"):
    """A booking. `status`: `pending` (a hold awaiting payment until `expiresAt`),
    `confirmed`, `cancelled`, `expired`. `expiresAt` and `payment` are null for an instant
    booking."""

    id: UUID
    event_id: UUID
    user_id: UUID
    quantity: int
    status: BookingStatus
    total_price: int
    currency: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    payment: PaymentResponse | None

    @classmethod
    def of(cls, b: Booking, checkout_url: CheckoutUrl) -> BookingResponse:
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
            b.expires_at,
            _payment(b, checkout_url),
        )


def _payment(b: Booking, checkout_url: CheckoutUrl) -> PaymentResponse | None:
    if b.payment_id is None or b.payment_provider is None or b.payment_status is None:
        return None
    return PaymentResponse(
        b.payment_id,
        b.payment_provider,
        b.payment_status,
        b.total_price,
        b.currency,
        checkout_url(b.payment_provider, b.payment_id),
    )


class BookingPage(msgspec.Struct, rename="camel"):
    items: list[BookingResponse]
    next_cursor: str | None
