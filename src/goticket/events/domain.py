"""The event catalog: an event's schedule, price, capacity and owner. Pure: no I/O, no framework."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from goticket.kit.auth import Principal, Role
from goticket.kit.errors import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied

NAME_MAX = 200
DESCRIPTION_MAX = 5000
VENUE_MAX = 200
PRICE_MAX = 10**12
CAPACITY_MAX = 10_000_000
DEFAULT_CURRENCY = "EUR"
HOLD_SECONDS_MIN = 60
HOLD_SECONDS_MAX = 3600
DEFAULT_HOLD_SECONDS = 600
# The instants the service can store and read back: those whose UTC date lies in years 1..9999.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


UNREPRESENTABLE = "needs a UTC offset and a UTC date in years 1..9999"


def representable(instant: datetime) -> bool:
    """An aware ``instant`` whose UTC date fits in years 1..9999 (naive ones never do)."""
    return instant.tzinfo is not None and EARLIEST <= instant <= LATEST


class Checkout(enum.StrEnum):
    """How a booking is paid: "instant" (confirmed at once, as in v1) or "payment" (a hold)."""

    INSTANT = "instant"
    PAYMENT = "payment"


class EventNotFound(NotFound):
    code = "not-found"
    title = "Event not found"


class NotEventManager(PermissionDenied):
    code = "forbidden"
    title = "Not allowed to manage this event"


class CapacityBelowBooked(Conflict):
    code = "capacity-below-booked"
    title = "Capacity below the spots already booked"


class EventHasBookings(Conflict):
    code = "event-has-bookings"
    title = "Event has active bookings"


class CheckoutChangeWithHolds(Conflict):
    code = "checkout-change-with-holds"
    title = "Checkout cannot change while bookings are pending"


def schedule_errors(start_at: datetime | None, end_at: datetime | None) -> list[FieldError]:
    """``startAt`` < ``endAt``, both storable. ``None``: absent or, while a body is validated,
    invalid on its own; the rule then leaves it alone (so do those below)."""
    times = {"startAt": start_at, "endAt": end_at}
    unfit = [field for field, at in times.items() if at is not None and not representable(at)]
    errors = [FieldError(field, UNREPRESENTABLE) for field in unfit]
    if not unfit and start_at is not None and end_at is not None and start_at >= end_at:
        errors.append(FieldError("endAt", "must be after startAt"))
    return errors


def sales_start_errors(sales_start_at: datetime | None) -> list[FieldError]:
    """``salesStartAt``, when given, storable (it may fall anywhere, even after ``endAt``: the
    event is then never on sale, as one created in the past is)."""
    if sales_start_at is not None and not representable(sales_start_at):
        return [FieldError("salesStartAt", UNREPRESENTABLE)]
    return []


def limit_errors(capacity: int | None, max_per_user: int | None) -> list[FieldError]:
    """``maxPerUser`` in 1..``capacity``."""
    if max_per_user is not None and capacity is not None and not 1 <= max_per_user <= capacity:
        return [FieldError("maxPerUser", "must be between 1 and capacity")]
    return []


@dataclass(frozen=True, slots=True)
class EventDraft:
    """The mutable fields of an event, as a client sends them on create and replace."""

    name: str
    start_at: datetime
    end_at: datetime
    price: int
    capacity: int
    description: str | None = None
    venue: str | None = None
    currency: str = DEFAULT_CURRENCY
    max_per_user: int | None = None
    sales_start_at: datetime | None = None  # bookings before it are refused; none: no limit
    checkout: Checkout = Checkout.INSTANT
    hold_seconds: int = DEFAULT_HOLD_SECONDS  # how long a hold lasts (payment checkout)

    def check(self) -> None:
        """The rules that span fields (single fields are checked where the body is decoded)."""
        errors = schedule_errors(self.start_at, self.end_at)
        if not 1 <= len(self.name) <= NAME_MAX:
            errors.append(FieldError("name", f"must be 1 to {NAME_MAX} characters"))
        if not 0 <= self.price <= PRICE_MAX:
            errors.append(FieldError("price", f"must be between 0 and {PRICE_MAX}"))
        if not 1 <= self.capacity <= CAPACITY_MAX:
            errors.append(FieldError("capacity", f"must be between 1 and {CAPACITY_MAX}"))
        errors += limit_errors(self.capacity, self.max_per_user)
        errors += sales_start_errors(self.sales_start_at)
        if not HOLD_SECONDS_MIN <= self.hold_seconds <= HOLD_SECONDS_MAX:
            errors.append(
                FieldError(
                    "holdSeconds", f"must be between {HOLD_SECONDS_MIN} and {HOLD_SECONDS_MAX}"
                )
            )
        if errors:
            raise InvalidInput(errors)


@dataclass(frozen=True, slots=True)
class Event:
    id: UUID
    organizer_id: UUID
    name: str
    description: str | None
    venue: str | None
    start_at: datetime
    end_at: datetime
    price: int
    currency: str
    max_per_user: int | None
    created_at: datetime
    updated_at: datetime
    sales_start_at: datetime | None = None
    # Field names are the column names (kit.rows): ``checkout`` and ``hold_seconds``.
    checkout: Checkout = Checkout.INSTANT
    hold_seconds: int = DEFAULT_HOLD_SECONDS

    @classmethod
    def create(cls, event_id: UUID, organizer_id: UUID, draft: EventDraft, now: datetime) -> Event:
        draft.check()
        return cls(
            event_id,
            organizer_id,
            draft.name,
            draft.description,
            draft.venue,
            # Instants are kept in UTC, so an event reads the same however it was written.
            draft.start_at.astimezone(UTC),
            draft.end_at.astimezone(UTC),
            draft.price,
            draft.currency,
            draft.max_per_user,
            now,
            now,
            draft.sales_start_at.astimezone(UTC) if draft.sales_start_at else None,
            draft.checkout,
            draft.hold_seconds,
        )

    def replaced(self, draft: EventDraft, now: datetime) -> Event:
        return replace(
            Event.create(self.id, self.organizer_id, draft, self.created_at), updated_at=now
        )


@dataclass(frozen=True, slots=True)
class Stock:
    """An event's inventory: ``capacity = available + booked`` at every commit."""

    capacity: int
    available: int

    @property
    def booked(self) -> int:
        return self.capacity - self.available

    def resized(self, capacity: int) -> Stock:
        if capacity < self.booked:
            raise CapacityBelowBooked(
                f"{self.booked} spots are already booked; capacity cannot go below that",
                booked=self.booked,
            )
        return Stock(capacity, capacity - self.booked)


@dataclass(frozen=True, slots=True)
class EventView:
    event: Event
    stock: Stock


def ensure_can_create(actor: Principal) -> None:
    if actor.role not in (Role.ORGANIZER, Role.ADMIN):
        raise NotEventManager("only organizers and admins may create events")


def ensure_can_manage(actor: Principal, event: Event) -> None:
    if not (actor.is_admin or actor.user_id == event.organizer_id):
        raise NotEventManager("only the event's organizer or an admin may change it")


def ensure_checkout_can_change(current: Event, draft: EventDraft, pending: int) -> None:
    """A hold was made under its event's checkout: switching it while holds are pending would
    leave them under terms the event no longer has (a ``payment`` hold on an ``instant`` event).
    ``pending``: the event's pending bookings, counted under the inventory row lock, which every
    hold is made under too, so none can slip in before the change commits."""
    if draft.checkout is not current.checkout and pending > 0:
        raise CheckoutChangeWithHolds(
            f"{pending} bookings are pending payment; checkout can change once they are"
            " confirmed, cancelled or expired"
        )


def ensure_can_delete(stock: Stock) -> None:
    # ``booked`` counts the spots of pending holds too: a hold takes its spots at once.
    if stock.booked > 0:
        raise EventHasBookings(
            f"{stock.booked} spots are booked; cancel those bookings first", booked=stock.booked
        )


class InventoryPort(Protocol):
    """The booking context's inventory as the catalog needs it, wired in by the composition root.

    Counts travel as ``(capacity, available)`` pairs so that neither context imports the other.
    """

    async def create(self, event_id: UUID, capacity: int) -> None: ...
    async def lock(self, event_id: UUID) -> tuple[int, int] | None: ...
    async def store(self, event_id: UUID, capacity: int, available: int) -> None: ...
    async def counts(self, event_ids: list[UUID]) -> dict[UUID, tuple[int, int]]: ...
    async def pending(self, event_id: UUID) -> int:
        """How many of the event's bookings are pending (holds awaiting payment)."""
        ...
