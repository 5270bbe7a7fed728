"""Booking use cases. ``book`` hands the allocation to a ``Reserver`` (the batching reservation
engine, or one transaction per request) and is where every booking answer leaves the context:
each rejection and each 503 is counted here, once."""

from __future__ import annotations

import asyncio
from uuid import UUID

from goticket.booking.checkout import refund
from goticket.booking.domain import (
    Booking,
    BookingNotFound,
    BookingStatus,
    BookRequest,
    EventNotFound,
    RequestInProgress,
    can_see,
    check_idempotency_key,
    check_on_sale,
    check_quantity,
    ensure_can_list,
    shed_reason,
)
from goticket.booking.ports import (
    BookingMetrics,
    CachedTerms,
    EventCatalog,
    NoMetrics,
    Refunds,
    Reserver,
    UnitOfWorkFactory,
    report,
)
from goticket.kit.auth import Principal
from goticket.kit.clock import Clock
from goticket.kit.errors import DomainError, Unavailable
from goticket.kit.pagination import Page, Position


class BookingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        catalog: EventCatalog,
        reserver: Reserver,
        clock: Clock,
        *,
        in_progress_wait: float = 10.0,
        metrics: BookingMetrics | None = None,
        cached_terms: CachedTerms | None = None,
        refunds: Refunds | None = None,
    ) -> None:
        self._uow = uow
        self._refunds = refunds
        self._cached_terms = cached_terms
        self._metrics: BookingMetrics = metrics or NoMetrics()
        self._catalog = catalog
        self._reserver = reserver
        self._clock = clock
        self._in_progress_wait = in_progress_wait
        # Requests of this process still being decided, by (user, idempotency key): a duplicate
        # waits for the first one's outcome instead of racing it.
        self._in_flight: dict[tuple[UUID, str], asyncio.Event] = {}

    async def book(
        self, actor: Principal, event_id: UUID, quantity: int, idempotency_key: str | None = None
    ) -> Booking:
        # Malformed input is a 422, not a booking the rules refused: it is not counted.
        check_quantity(quantity)
        check_idempotency_key(idempotency_key)
        request = BookRequest(event_id, actor.user_id, quantity, idempotency_key)
        try:
            return await self._book(request)
        except Unavailable as error:
            report(self._metrics.shedding, shed_reason(error))
            raise
        except DomainError as error:
            report(self._metrics.rejected, error.code)
            raise

    async def _book(self, request: BookRequest) -> Booking:
        idempotency_key = request.idempotency_key
        if idempotency_key is None:
            self._refuse_early(request.event_id)
            return await self._reserver.reserve(request)
        slot = (request.user_id, idempotency_key)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._in_progress_wait
        while (first := self._in_flight.get(slot)) is not None:
            try:
                await asyncio.wait_for(first.wait(), max(0.0, give_up - loop.time()))
            except TimeoutError:
                raise RequestInProgress(
                    "a request with this Idempotency-Key is still being processed; retry shortly"
                ) from None
        done = self._in_flight[slot] = asyncio.Event()
        try:
            return await self._reserver.reserve(request)
        finally:
            del self._in_flight[slot]
            done.set()

    def _refuse_early(self, event_id: UUID) -> None:
        """Refuse from this process's copy of the event, before any database work, a booking
        the sale window rules out (the pre-sale stampede costs no query). Keyed requests skip
        this, as they skip the sold-out memory: one may be the retry of a booking made before
        ``salesStartAt`` was moved later, and it must get that booking (the transaction replays
        it). A stale copy never books: the transaction re-reads the terms under the lock."""
        terms = self._cached_terms(event_id) if self._cached_terms is not None else None
        if terms is not None:
            # Counted by ``book`` like any refusal (by code); the engine's sold-out-from-memory
            # counter stays what its name says.
            check_on_sale(terms, self._clock.now())

    async def get(self, actor: Principal, booking_id: UUID) -> Booking:
        async with self._uow(readonly=True) as uow:
            booking = await uow.bookings.get(booking_id)
        if booking is None:
            raise BookingNotFound("no such booking")
        await self._ensure_can_see(actor, booking)
        return booking

    async def cancel(self, actor: Principal, booking_id: UUID) -> Booking:
        """Cancel a hold or a confirmed booking: its spots go back on sale, a paid one is
        refunded (its tickets are voided in the same commit). Cancelling again changes nothing."""
        booking = await self.get(actor, booking_id)
        if not booking.is_active:
            return booking  # cancelling again changes nothing
        async with self._uow() as uow:
            repo = uow.bookings
            # Lock the inventory row first, like every other writer, then re-read the booking:
            # a concurrent cancel may have won, and its spots must not come back twice.
            available = await repo.lock_inventory(booking.event_id)
            current = await repo.get(booking_id)
            if available is None or current is None:
                raise BookingNotFound("no such booking")
            if not current.is_active:
                return current
            cancelled = current.cancelled(self._clock.now())
            if current.is_paid:
                if self._refunds is None:
                    raise RuntimeError("a paid booking cannot be cancelled without refunds")
                await refund(self._refunds, current)
            await repo.save_status(cancelled)
            await repo.set_available(booking.event_id, available + cancelled.quantity)
            await uow.commit()
        self._reserver.released(booking.event_id)
        if current.status is BookingStatus.PENDING:
            report(self._metrics.holds, "cancelled")
        if current.is_paid:
            report(self._metrics.refunded, "cancelled")
        return cancelled

    async def list_mine(
        self, actor: Principal, after: Position | None, limit: int
    ) -> Page[Booking]:
        async with self._uow(readonly=True) as uow:
            rows = await uow.bookings.list_for_user(actor.user_id, after, limit + 1)
        return _page(rows, limit)

    async def list_for_event(
        self, actor: Principal, event_id: UUID, after: Position | None, limit: int
    ) -> Page[Booking]:
        terms = await self._catalog(event_id)
        if terms is None:
            raise EventNotFound("no such event")
        ensure_can_list(actor, terms)
        async with self._uow(readonly=True) as uow:
            rows = await uow.bookings.list_for_event(event_id, after, limit + 1)
        return _page(rows, limit)

    async def _ensure_can_see(self, actor: Principal, booking: Booking) -> None:
        if actor.is_admin or actor.user_id == booking.user_id:
            return
        terms = await self._catalog(booking.event_id)
        if not can_see(actor, booking, terms.organizer_id if terms else None):
            # Someone else's booking is "not found": its existence must not leak.
            raise BookingNotFound("no such booking")


def _page(rows: list[Booking], limit: int) -> Page[Booking]:
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(rows[:limit], Position(last.created_at, last.id) if last else None)
