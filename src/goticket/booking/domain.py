"""Bookings and the rules that decide them. Pure: no I/O, no framework."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import ClassVar, Protocol
from uuid import UUID

from goticket.kit.auth import Principal
from goticket.kit.errors import (
    Conflict,
    DomainError,
    FieldError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unavailable,
)

MAX_QUANTITY = 10
IDEMPOTENCY_KEY_MAX = 255


class EventNotFound(NotFound):
    code = "not-found"
    title = "Event not found"


class BookingNotFound(NotFound):
    code = "not-found"
    title = "Booking not found"


class NotEventManager(PermissionDenied):
    code = "forbidden"
    title = "Not allowed to see this event's bookings"


class SoldOut(Conflict):
    code = "sold-out"
    title = "Sold out"


class PerUserLimitExceeded(Conflict):
    code = "per-user-limit"
    title = "Per-user limit reached"


class EventEnded(Conflict):
    code = "event-ended"
    title = "Event has ended"


class SalesNotStarted(Conflict):
    code = "sales-not-started"
    title = "Sales have not started"


class RequestInProgress(Conflict):
    code = "request-in-progress"
    title = "Request in progress"
    retry_after: int

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class BookingUnavailable(Unavailable):
    """A 503 of the booking path; ``shed_reason`` names it in the shed metric."""

    shed_reason: ClassVar[str] = "database-unavailable"


class Overloaded(BookingUnavailable):
    code = "overloaded"
    title = "Overloaded"
    shed_reason = "queue-full"


class DeadlinePassed(BookingUnavailable):
    """Not decided within the engine's deadline: it may still commit, so the retry must use
    the same Idempotency-Key."""

    shed_reason = "deadline"


class BookingFailed(BookingUnavailable):
    """A batch or a request failed for an unexpected reason (logged): the client retries, and
    the 503 is counted as ``failed``, not as the database being unavailable."""

    shed_reason = "failed"


def shed_reason(error: Unavailable) -> str:
    """Why a booking request got a 503; any other ``Unavailable`` is the database's."""
    return error.shed_reason if isinstance(error, BookingUnavailable) else "database-unavailable"


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency-key-reused"
    title = "Idempotency key reused"

    def __init__(self) -> None:
        super().__init__(
            [FieldError("Idempotency-Key", "already used for a different request")],
            "this Idempotency-Key was already used for another event or quantity",
        )


class BookingStatus(enum.StrEnum):
    PENDING = "pending"  # a hold: its spots are taken, awaiting payment until ``expires_at``
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ACTIVE = (BookingStatus.PENDING, BookingStatus.CONFIRMED)  # the statuses that hold spots


class PaymentStatus(enum.StrEnum):
    REQUIRES_PAYMENT = "requires_payment"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class BookingTerms:
    """What booking needs to know about an event (from the catalog)."""

    event_id: UUID
    organizer_id: UUID
    end_at: datetime
    price: int
    currency: str
    max_per_user: int | None
    sales_start_at: datetime | None = None
    # How long a hold lasts on a ``checkout: "payment"`` event; None: instant checkout.
    hold_seconds: int | None = None


class TermsReader(Protocol):
    """The catalog as booking reads it inside its own transaction (wired by the composition
    root): read after the inventory row is locked, the terms cannot change until the commit."""

    async def terms(self, event_ids: Sequence[UUID]) -> dict[UUID, BookingTerms]:
        """The terms of those of these events that exist."""


@dataclass(frozen=True, slots=True)
class BookRequest:
    event_id: UUID
    user_id: UUID
    quantity: int
    idempotency_key: str | None = None

    @property
    def request_hash(self) -> str:
        """Identifies what was asked, so that a reused key with another request is caught."""
        return hashlib.sha256(f"{self.event_id}:{self.quantity}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Booking:
    id: UUID
    event_id: UUID
    user_id: UUID
    quantity: int
    status: BookingStatus
    total_price: int
    currency: str
    idempotency_key: str | None
    request_hash: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None  # a hold's deadline, kept once it is decided
    confirmed_at: datetime | None = None  # its tickets exist from then on
    payment_id: UUID | None = None  # a hold's payment (none: instant checkout)
    payment_provider: str | None = None
    payment_status: PaymentStatus | None = None

    @property
    def is_confirmed(self) -> bool:
        return self.status is BookingStatus.CONFIRMED

    @property
    def is_active(self) -> bool:
        """It holds spots: pending (a hold) or confirmed."""
        return self.status in ACTIVE

    @property
    def is_paid(self) -> bool:
        return self.payment_status is PaymentStatus.SUCCEEDED

    def cancelled(self, now: datetime) -> Booking:
        """Cancelled by its owner, organizer or an admin: a paid booking is refunded."""
        return replace(
            self,
            status=BookingStatus.CANCELLED,
            payment_status=PaymentStatus.REFUNDED if self.is_paid else self.payment_status,
            updated_at=now,
        )

    def expired(self, now: datetime) -> Booking:
        return replace(self, status=BookingStatus.EXPIRED, updated_at=now)

    def is_due(self, now: datetime) -> bool:
        """A hold past its deadline, to be expired by the sweeper."""
        return (
            self.status is BookingStatus.PENDING
            and self.expires_at is not None
            and self.expires_at <= now
        )


def check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput.single("quantity", f"must be between 1 and {MAX_QUANTITY}")


def check_on_sale(terms: BookingTerms, now: datetime) -> None:
    """Whether the event is on sale at ``now``: ONE rule for the early check (from the cached
    event, no database) and the decision under the row lock. An ended event says so first, even
    when its sale never started: that answer is final, "not started yet" would invite retries."""
    if terms.end_at <= now:
        raise EventEnded("this event has ended and can no longer be booked")
    if terms.sales_start_at is not None and now < terms.sales_start_at:
        raise SalesNotStarted(
            f"bookings open at {terms.sales_start_at.isoformat()}",
            sales_start_at=terms.sales_start_at,
        )


def check_allocation(
    terms: BookingTerms, request: BookRequest, *, available: int, user_active: int
) -> None:
    """Decide one request against the locked inventory; raise when it cannot be granted."""
    if terms.max_per_user is not None and user_active + request.quantity > terms.max_per_user:
        raise PerUserLimitExceeded(
            f"at most {terms.max_per_user} spots per person for this event;"
            f" you already hold {user_active}",
            limit=terms.max_per_user,
        )
    if request.quantity > available:
        raise SoldOut(f"only {available} spots left", available=available)


def replay(existing: Booking, request: BookRequest) -> Booking:
    """A retry with the same key gets the original booking; another request with it is refused."""
    if existing.request_hash != request.request_hash:
        raise IdempotencyKeyReused()
    return existing


def new_booking(
    booking_id: UUID,
    request: BookRequest,
    terms: BookingTerms,
    now: datetime,
    *,
    payment_provider: str = "fake",
) -> Booking:
    """A confirmed booking, or on a payment event a hold with its payment (same id space: the
    payment's id is the booking's, so a hold costs no second id and no second row)."""
    common = Booking(
        id=booking_id,
        event_id=request.event_id,
        user_id=request.user_id,
        quantity=request.quantity,
        status=BookingStatus.CONFIRMED,
        total_price=terms.price * request.quantity,
        currency=terms.currency,
        idempotency_key=request.idempotency_key,
        request_hash=request.request_hash,
        created_at=now,
        updated_at=now,
        confirmed_at=now,
    )
    if terms.hold_seconds is None:
        return common
    return replace(
        common,
        status=BookingStatus.PENDING,
        confirmed_at=None,
        expires_at=now + timedelta(seconds=terms.hold_seconds),
        payment_id=booking_id,
        payment_provider=payment_provider,
        payment_status=PaymentStatus.REQUIRES_PAYMENT,
    )


class SettlementAction(enum.Enum):
    NOTHING = "nothing"  # already decided (a duplicate notice) or not this booking's business
    CONFIRM = "confirm"  # the hold is paid: confirmed, its spots were already taken
    RETAKE = "retake"  # paid after it expired: confirmed, its spots taken again
    REFUND = "refund"  # paid, but it cannot be confirmed: the payment goes back


@dataclass(frozen=True, slots=True)
class Settlement:
    action: SettlementAction
    booking: Booking  # the booking after the settlement

    @property
    def spots_taken(self) -> int:
        return self.booking.quantity if self.action is SettlementAction.RETAKE else 0


def settle_payment(
    booking: Booking,
    *,
    amount: int,
    currency: str,
    available: int,
    user_active: int,
    max_per_user: int | None,
    now: datetime,
) -> Settlement:
    """What a successful payment does to its booking, decided under the inventory row lock.

    A pending hold is confirmed (even past ``expires_at`` while the sweeper has not reached it:
    its spots are still taken). An expired hold is confirmed only if its spots can be taken again
    within the stock and the per-user limit; else the payment is refunded — never oversell. A
    cancelled booking is refunded. A payment that does not match the booking's price is refunded
    rather than trusted."""
    if booking.payment_status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
        return Settlement(SettlementAction.NOTHING, booking)
    refund = Settlement(
        SettlementAction.REFUND,
        replace(booking, payment_status=PaymentStatus.REFUNDED, updated_at=now),
    )
    if amount != booking.total_price or currency != booking.currency:
        return refund
    paid = replace(
        booking,
        status=BookingStatus.CONFIRMED,
        payment_status=PaymentStatus.SUCCEEDED,
        confirmed_at=now,
        updated_at=now,
    )
    if booking.status is BookingStatus.PENDING:
        return Settlement(SettlementAction.CONFIRM, paid)
    if booking.status is BookingStatus.EXPIRED:
        within_limit = max_per_user is None or user_active + booking.quantity <= max_per_user
        if booking.quantity <= available and within_limit:
            return Settlement(SettlementAction.RETAKE, paid)
    return refund


def payment_failed(booking: Booking, now: datetime) -> Booking | None:
    """A failed attempt: the hold stays until it expires and the buyer may pay again. None when
    it changes nothing (the booking is no longer awaiting payment)."""
    if (
        booking.status is not BookingStatus.PENDING
        or booking.payment_status is not PaymentStatus.REQUIRES_PAYMENT
    ):
        return None
    return replace(booking, payment_status=PaymentStatus.FAILED, updated_at=now)


def can_see(actor: Principal, booking: Booking, organizer_id: UUID | None) -> bool:
    return actor.is_admin or actor.user_id in (booking.user_id, organizer_id)


def ensure_can_list(actor: Principal, terms: BookingTerms) -> None:
    if not (actor.is_admin or actor.user_id == terms.organizer_id):
        raise NotEventManager("only the event's organizer or an admin may list its bookings")


def check_idempotency_key(key: str | None) -> None:
    if key is None:
        return
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not all(" " <= ch <= "~" for ch in key):
        raise InvalidInput.single(
            "Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters"
        )


Outcome = Booking | DomainError


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What one transaction does for a batch of requests on one event."""

    outcomes: list[Outcome]  # one per request, in arrival order
    created: list[Booking]  # the rows to insert
    available: int  # the event's available spots after the batch


def plan_batch(
    terms: BookingTerms,
    requests: Sequence[BookRequest],
    *,
    available: int,
    user_active: Mapping[UUID, int],
    existing: Mapping[tuple[UUID, str], Booking],
    now: datetime,
    new_id: Callable[[], UUID],
    decided: dict[tuple[UUID, str], Outcome] | None = None,
    payment_provider: str = "fake",
) -> BatchPlan:
    """Decide a batch in arrival order against the locked inventory, exactly as if each request
    had run alone in that order: replays first, then the sale window (ended, not started yet),
    the per-user limit (counting what earlier requests of the batch took) and the stock."""
    active = dict(user_active)
    outcomes: list[Outcome] = []
    created: list[Booking] = []
    decided = {} if decided is None else decided  # shared by the events of one transaction
    for request in requests:
        slot = (request.user_id, request.idempotency_key) if request.idempotency_key else None
        outcome: Outcome
        try:
            if slot is not None and slot in existing:
                outcome = replay(existing[slot], request)
            elif slot is not None and slot in decided:
                # The same key twice in one batch: the second gets the first one's answer.
                earlier = decided[slot]
                outcome = replay(earlier, request) if isinstance(earlier, Booking) else earlier
            else:
                check_on_sale(terms, now)
                check_allocation(
                    terms,
                    request,
                    available=available,
                    user_active=active.get(request.user_id, 0),
                )
                outcome = new_booking(
                    new_id(), request, terms, now, payment_provider=payment_provider
                )
                created.append(outcome)
                available -= request.quantity
                active[request.user_id] = active.get(request.user_id, 0) + request.quantity
        except DomainError as error:
            outcome = error
        if slot is not None:
            decided.setdefault(slot, outcome)
        outcomes.append(outcome)
    return BatchPlan(outcomes, created, available)
