"""Booking use cases. ``book`` hands the allocation to a ``Reserver``: the seam where the
one-transaction-per-request path and the batching reservation engine plug in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID

from goticket.booking.domain import (
    Booking,
    BookingNotFound,
    BookingTerms,
    BookRequest,
    EventNotFound,
    RequestInProgress,
    can_see,
    check_allocation,
    check_idempotency_key,
    check_not_ended,
    check_quantity,
    ensure_can_list,
    new_booking,
    replay,
)
from goticket.kit.auth import Principal
from goticket.kit.clock import Clock
from goticket.kit.pagination import Page, Position


class BookingsRepository(Protocol):
    async def lock_inventory(self, event_id: UUID) -> int | None:
        """Lock the event's inventory row for this transaction; its available spots."""

    async def set_available(self, event_id: UUID, available: int) -> None: ...
    async def by_key(self, user_id: UUID, key: str) -> Booking | None: ...
    async def confirmed_quantity(self, event_id: UUID, user_id: UUID) -> int: ...
    async def add(self, booking: Booking) -> bool:
        """Insert; False when the user's idempotency key is already taken."""

    async def get(self, booking_id: UUID) -> Booking | None: ...
    async def save_status(self, booking: Booking) -> None: ...
    async def list_for_user(
        self, user_id: UUID, after: Position | None, limit: int
    ) -> list[Booking]: ...
    async def list_for_event(
        self, event_id: UUID, after: Position | None, limit: int
    ) -> list[Booking]: ...


class BookingUnitOfWork(Protocol):
    @property
    def bookings(self) -> BookingsRepository: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[..., AbstractAsyncContextManager[BookingUnitOfWork]]
EventCatalog = Callable[[UUID], Awaitable[BookingTerms | None]]


class Reserver(Protocol):
    async def reserve(self, request: BookRequest, terms: BookingTerms) -> Booking:
        """Commit a booking for ``request`` (or return the one its key already made)."""


class DirectReserver:
    """One transaction per request: lock the event's inventory row, decide, write, commit.

    The row lock serialises every booking of one event, which is what makes the per-user limit
    and the idempotency check race-free (the reads happen after the lock is granted).
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def reserve(self, request: BookRequest, terms: BookingTerms) -> Booking:
        key = request.idempotency_key
        async with self._uow() as uow:
            repo = uow.bookings
            available = await repo.lock_inventory(request.event_id)
            if available is None:
                raise EventNotFound("no such event")
            if key is not None and (existing := await repo.by_key(request.user_id, key)):
                return replay(existing, request)
            check_not_ended(terms, self._clock.now())
            user_confirmed = (
                await repo.confirmed_quantity(request.event_id, request.user_id)
                if terms.max_per_user is not None
                else 0
            )
            check_allocation(terms, request, available=available, user_confirmed=user_confirmed)
            booking = new_booking(uuid.uuid4(), request, terms, self._clock.now())
            if not await repo.add(booking):
                # The same key was just used by this user on another event: no lock we hold
                # covered it, the unique constraint did. The insert waited for that transaction
                # to commit, so this statement (READ COMMITTED) sees its booking.
                assert key is not None
                existing = await repo.by_key(request.user_id, key)
                assert existing is not None, "a key conflict implies a committed booking"
                return replay(existing, request)
            await repo.set_available(request.event_id, available - request.quantity)
            await uow.commit()
        return booking


class BookingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        catalog: EventCatalog,
        reserver: Reserver,
        clock: Clock,
        *,
        in_progress_wait: float = 10.0,
    ) -> None:
        self._uow = uow
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
        check_quantity(quantity)
        check_idempotency_key(idempotency_key)
        request = BookRequest(event_id, actor.user_id, quantity, idempotency_key)
        if idempotency_key is None:
            return await self._book(request)
        slot = (actor.user_id, idempotency_key)
        while (first := self._in_flight.get(slot)) is not None:
            try:
                await asyncio.wait_for(first.wait(), self._in_progress_wait)
            except TimeoutError:
                raise RequestInProgress(
                    "a request with this Idempotency-Key is still being processed; retry shortly"
                ) from None
        done = self._in_flight[slot] = asyncio.Event()
        try:
            return await self._book(request)
        finally:
            del self._in_flight[slot]
            done.set()

    async def _book(self, request: BookRequest) -> Booking:
        terms = await self._catalog(request.event_id)
        if terms is None:
            raise EventNotFound("no such event")
        return await self._reserver.reserve(request, terms)

    async def get(self, actor: Principal, booking_id: UUID) -> Booking:
        async with self._uow(readonly=True) as uow:
            booking = await uow.bookings.get(booking_id)
        if booking is None:
            raise BookingNotFound("no such booking")
        await self._ensure_can_see(actor, booking)
        return booking

    async def cancel(self, actor: Principal, booking_id: UUID) -> Booking:
        booking = await self.get(actor, booking_id)
        if not booking.is_confirmed:
            return booking  # cancelling again changes nothing
        async with self._uow() as uow:
            repo = uow.bookings
            # Lock the inventory row first, like every other writer, then re-read the booking:
            # a concurrent cancel may have won, and its spots must not come back twice.
            available = await repo.lock_inventory(booking.event_id)
            current = await repo.get(booking_id)
            if available is None or current is None:
                raise BookingNotFound("no such booking")
            if not current.is_confirmed:
                return current
            cancelled = current.cancelled(self._clock.now())
            await repo.save_status(cancelled)
            await repo.set_available(booking.event_id, available + cancelled.quantity)
            await uow.commit()
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
