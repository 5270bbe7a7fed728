"""HTTP bodies of the catalog."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from goticket.events.domain import (
    CAPACITY_MAX,
    DEFAULT_CURRENCY,
    DEFAULT_HOLD_SECONDS,
    DESCRIPTION_MAX,
    HOLD_SECONDS_MAX,
    HOLD_SECONDS_MIN,
    NAME_MAX,
    PRICE_MAX,
    VENUE_MAX,
    Checkout,
    EventDraft,
    EventView,
    limit_errors,
    sales_start_errors,
    schedule_errors,
)
from goticket.kit.errors import FieldError

Timestamp = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="RFC 3339 timestamp with a UTC offset, in the years 1..9999 in UTC;"
        " a leap second (:60) is refused",
    ),
]
Currency = Annotated[
    str,
    msgspec.Meta(
        # The lengths too: a regex '$' also matches before a trailing newline.
        min_length=3,
        max_length=3,
        pattern="^[A-Z]{3}$",
        description="ISO 4217 code",
        examples=["EUR"],
    ),
]


class EventRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """The mutable fields of an event. On replace, an optional field left out is cleared."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
    start_at: Timestamp
    end_at: Annotated[Timestamp, msgspec.Meta(description="After startAt")]
    price: Annotated[
        int, msgspec.Meta(ge=0, le=PRICE_MAX, description="Minor units: 25000 is 250.00")
    ]
    capacity: Annotated[int, msgspec.Meta(ge=1, le=CAPACITY_MAX)]
    description: Annotated[str, msgspec.Meta(max_length=DESCRIPTION_MAX)] | None = None
    venue: Annotated[str, msgspec.Meta(max_length=VENUE_MAX)] | None = None
    currency: Currency = DEFAULT_CURRENCY
    max_per_user: (
        Annotated[
            int,
            msgspec.Meta(ge=1, le=CAPACITY_MAX, description="1..capacity; no limit when absent"),
        ]
        | None
    ) = None
    sales_start_at: (
        Annotated[
            Timestamp,
            msgspec.Meta(
                description="On-sale time: bookings before it are 409 sales-not-started;"
                " no restriction when absent"
            ),
        ]
        | None
    ) = None
    checkout: Annotated[
        Checkout,
        msgspec.Meta(
            description='"instant" (the default): a booking is confirmed at once, as in v1;'
            ' "payment": a booking is a hold, pending until paid. Changing it while the event'
            " has pending bookings is 409 checkout-change-with-holds"
        ),
    ] = Checkout.INSTANT
    hold_seconds: Annotated[
        int,
        msgspec.Meta(
            ge=HOLD_SECONDS_MIN,
            le=HOLD_SECONDS_MAX,
            description='How long a payment hold lasts, in seconds (checkout "payment")',
        ),
    ] = DEFAULT_HOLD_SECONDS

    @classmethod
    def cross_field_errors(cls, valid: Mapping[str, Any]) -> list[FieldError]:
        """The rules spanning fields, over the fields that are valid on their own: a 422 lists
        these along with the single-field errors (``kit.bodies.collect_errors`` calls this)."""
        return (
            schedule_errors(valid.get("start_at"), valid.get("end_at"))
            + limit_errors(valid.get("capacity"), valid.get("max_per_user"))
            + sales_start_errors(valid.get("sales_start_at"))
        )

    def draft(self) -> EventDraft:
        return EventDraft(
            name=self.name,
            start_at=self.start_at,
            end_at=self.end_at,
            price=self.price,
            capacity=self.capacity,
            description=self.description,
            venue=self.venue,
            currency=self.currency,
            max_per_user=self.max_per_user,
            sales_start_at=self.sales_start_at,
            checkout=self.checkout,
            hold_seconds=self.hold_seconds,
        )


class EventResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    # omit_defaults: only the optional v2 fields that may be absent have defaults; an event
    # without them reads as in v1 (no ``null`` member added). ``checkout`` and ``holdSeconds``
    # always have a value, and every event shows it.
    id: UUID
    organizer_id: UUID
    name: str
    description: str | None
    venue: str | None
    start_at: datetime
    end_at: datetime
    price: int
    currency: str
    capacity: int
    max_per_user: int | None
    available_spots: int
    created_at: datetime
    updated_at: datetime
    checkout: Checkout
    hold_seconds: Annotated[int, msgspec.Meta(ge=HOLD_SECONDS_MIN, le=HOLD_SECONDS_MAX)]
    sales_start_at: datetime | None = None

    @classmethod
    def of(cls, view: EventView) -> EventResponse:
        e = view.event
        return cls(
            e.id,
            e.organizer_id,
            e.name,
            e.description,
            e.venue,
            e.start_at,
            e.end_at,
            e.price,
            e.currency,
            view.stock.capacity,
            e.max_per_user,
            view.stock.available,
            e.created_at,
            e.updated_at,
            e.checkout,
            e.hold_seconds,
            e.sales_start_at,
        )


class EventPage(msgspec.Struct, rename="camel"):
    items: list[EventResponse]
    next_cursor: str | None
