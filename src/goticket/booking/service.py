"""Booking use cases. ``book`` hands the allocation to a ``Reserver``: the seam where the
one-transaction-per-request path and the batching reservation engine plug in."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID

from goticket.booking.domain import (
    BatchPlan,
    Booking,
    BookingNotFound,
    BookingTerms,
    BookRequest,
    EventNotFound,
    Outcome,
    RequestInProgress,
    TermsReader,
    can_see,
    check_idempotency_key,
    check_quantity,
    ensure_can_list,
    plan_batch,
)
from goticket.kit.auth import Principal
from goticket.kit.clock import Clock
from goticket.kit.errors import DomainError, Unavailable
from goticket.kit.logging import get_logger
from goticket.kit.pagination import Page, Position

log = get_logger("goticket.booking")


class BookingsRepository(Protocol):
    async def lock_inventory(self, event_id: UUID) -> int | None:
        """Lock the event's inventory row for this transaction; its available spots."""

    async def lock_inventories(
        self, event_ids: Sequence[UUID], *, skip_locked: bool = False
    ) -> dict[UUID, int]:
        """Lock these events' inventory rows in event id order; their available spots."""

    async def set_available(self, event_id: UUID, available: int) -> None: ...
    async def by_key(self, user_id: UUID, key: str) -> Booking | None: ...
    async def by_keys(
        self, slots: Sequence[tuple[UUID, str]]
    ) -> dict[tuple[UUID, str], Booking]: ...
    async def confirmed_quantities(
        self, pairs: Sequence[tuple[UUID, UUID]]
    ) -> dict[tuple[UUID, UUID], int]:
        """Spots held by confirmed bookings, per (event, user) pair asked for (none: absent)."""

    async def add_many(
        self, bookings: Sequence[Booking], *, stock: Mapping[UUID, int] | None = None
    ) -> int:
        """Insert in one statement (a taken key is skipped), setting each event's available
        spots in ``stock`` with it; how many rows went in."""

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

    @property
    def events(self) -> TermsReader: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[..., AbstractAsyncContextManager[BookingUnitOfWork]]
EventCatalog = Callable[[UUID], Awaitable[BookingTerms | None]]


class BookingMetrics(Protocol):
    """What the booking path reports (Prometheus in the app, nothing in unit tests)."""

    def committed(self, bookings: int, spots: int) -> None: ...
    def rejected(self, reason: str) -> None: ...
    def batch(self, size: int, seconds: float) -> None: ...
    def refused_from_memory(self) -> None: ...
    def shedding(self, reason: str, count: int = 1) -> None: ...


class NoMetrics:
    def committed(self, bookings: int, spots: int) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass

    def batch(self, size: int, seconds: float) -> None:
        pass

    def refused_from_memory(self) -> None:
        pass

    def shedding(self, reason: str, count: int = 1) -> None:
        pass


class Reserver(Protocol):
    async def reserve(self, request: BookRequest) -> Booking:
        """Commit a booking for ``request`` (or return the one its key already made)."""

    def released(self, event_id: UUID) -> None:
        """Spots of ``event_id`` went back on sale (a cancellation)."""

    def queued(self) -> int:
        """Requests waiting for a transaction."""

    async def close(self) -> None:
        """Finish the work in flight before shutdown."""


class BatchWriter:
    """ONE transaction for a batch of requests on one or many events: lock the events' inventory
    rows (in event id order, so that two batches never wait on each other in a cycle), read the
    terms and the per-user totals the batch needs, decide every event's requests in arrival
    order, insert all new bookings and set every ``available`` with one statement, commit.

    The row locks serialise every writer of an event (across processes too), which is what makes
    the per-user limit and the idempotency check race-free: the reads happen after they are
    granted. Many events in one transaction share its round trips and its commit: a thousand
    quiet events cost what one hot event costs.
    """

    _ATTEMPTS = 4  # the first one does not read idempotency keys

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, metrics: BookingMetrics | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.metrics: BookingMetrics = metrics or NoMetrics()

    async def commit(self, event_id: UUID, requests: Sequence[BookRequest]) -> list[Outcome]:
        return (await self.commit_many({event_id: requests}))[event_id]

    async def commit_many(
        self, groups: Mapping[UUID, Sequence[BookRequest]]
    ) -> dict[UUID, list[Outcome]]:
        outcomes, _ = await self._commit(groups, skip_locked=False)
        return outcomes

    async def commit_free(
        self, groups: Mapping[UUID, Sequence[BookRequest]]
    ) -> tuple[dict[UUID, list[Outcome]], list[UUID]]:
        """Decide the events whose inventory rows are free now (SKIP LOCKED); the others are
        returned undecided, for a transaction of their own that waits for their rows: a hot
        event locked by another process neither holds up nor fails the quiet ones."""
        return await self._commit(groups, skip_locked=True)

    async def _commit(
        self, groups: Mapping[UUID, Sequence[BookRequest]], *, skip_locked: bool
    ) -> tuple[dict[UUID, list[Outcome]], list[UUID]]:
        size = sum(len(requests) for requests in groups.values())
        started = time.perf_counter()
        deferred: list[UUID] = []
        # An Unavailable goes to the caller, which counts the 503s it actually answers (the
        # engine's callers may already have had theirs, at their deadline).
        for attempt in range(self._ATTEMPTS):
            outcomes, deferred = await self._attempt(
                groups, read_keys=attempt > 0, skip_locked=skip_locked
            )
            if outcomes is not None:
                break
        else:
            raise Unavailable("idempotency keys kept colliding; retry shortly")
        report(self.metrics.batch, size, time.perf_counter() - started)
        for decided in outcomes.values():
            for outcome in decided:
                if isinstance(outcome, DomainError):
                    report(self.metrics.rejected, outcome.code)
        return outcomes, deferred

    async def _attempt(
        self,
        groups: Mapping[UUID, Sequence[BookRequest]],
        *,
        read_keys: bool,
        skip_locked: bool = False,
    ) -> tuple[dict[UUID, list[Outcome]] | None, list[UUID]]:
        """One transaction. Idempotency keys are almost always new, so the first attempt does
        not read them before deciding (one round trip less while holding the locks): a key
        that was taken makes the insert come up short, and the next attempt reads them all.
        A keyed request the plan refuses is never answered unread: it may be the retry of a
        booking that was made, and it must get that booking."""
        async with self._uow() as uow:
            repo = uow.bookings
            stock = await repo.lock_inventories(sorted(groups), skip_locked=skip_locked)
            deferred: list[UUID] = []
            if skip_locked:
                # A row not returned is held elsewhere or does not exist: decided by the second
                # (waiting) transaction either way.
                deferred = [event_id for event_id in groups if event_id not in stock]
                groups = {e: r for e, r in groups.items() if e in stock}
            # The terms (end time, price, limit) are read in this transaction, after the locks:
            # an edit takes the same lock, so none can slip in before the commit.
            terms = await uow.events.terms(list(stock)) if stock else {}
            outcomes: dict[UUID, list[Outcome]] = {}
            live: dict[UUID, BookingTerms] = {}
            for event_id, requests in groups.items():
                if event_id in stock and event_id in terms:
                    live[event_id] = terms[event_id]
                else:
                    outcomes[event_id] = [EventNotFound("no such event") for _ in requests]
            limited = list(
                {
                    (event_id, r.user_id)
                    for event_id, event_terms in live.items()
                    if event_terms.max_per_user is not None
                    for r in groups[event_id]
                }
            )
            held = await repo.confirmed_quantities(limited) if limited else {}
            confirmed: dict[UUID, dict[UUID, int]] = {}
            for (event_id, user_id), quantity in held.items():
                confirmed.setdefault(event_id, {})[user_id] = quantity
            slots = list(
                {
                    (r.user_id, r.idempotency_key)
                    for event_id in live
                    for r in groups[event_id]
                    if r.idempotency_key
                }
            )
            existing = await repo.by_keys(slots) if slots and read_keys else {}
            now = self._clock.now()

            def plan_all() -> dict[UUID, BatchPlan]:
                decided: dict[tuple[UUID, str], Outcome] = {}  # one key, one decision per batch
                return {
                    event_id: plan_batch(
                        event_terms,
                        groups[event_id],
                        available=stock[event_id],
                        user_confirmed=confirmed.get(event_id, {}),
                        existing=existing,
                        now=now,
                        new_id=uuid.uuid4,
                        decided=decided,
                    )
                    for event_id, event_terms in live.items()
                }

            plans = plan_all()
            if (
                slots
                and not read_keys
                and any(
                    _refuses_a_keyed_request(groups[event_id], plan.outcomes)
                    for event_id, plan in plans.items()
                )
            ):
                existing = await repo.by_keys(slots)
                plans = plan_all()
            created = [booking for plan in plans.values() for booking in plan.created]
            if created:
                after = {
                    event_id: plan.available for event_id, plan in plans.items() if plan.created
                }
                if await repo.add_many(created, stock=after) < len(created):
                    # A key was just used by the same user on another event whose lock we do
                    # not hold: the unique constraint caught it, and the insert waited for that
                    # transaction to commit. Roll back and decide again: it is visible now.
                    return None, deferred
                await uow.commit()
                # Decided and durable: from here on nothing may turn the outcome into an error
                # (the engine would decide these requests again: a second booking, or 409).
                report(self.metrics.committed, len(created), sum(b.quantity for b in created))
        for event_id, plan in plans.items():
            outcomes[event_id] = plan.outcomes
        return outcomes, deferred


def report(record: Callable[..., None], *args: object) -> None:
    """Record a metric; a failing metric never fails the booking path."""
    try:
        record(*args)
    except Exception:
        log.warning("a booking metric could not be recorded", exc_info=True)


def _refuses_a_keyed_request(requests: Sequence[BookRequest], outcomes: Sequence[Outcome]) -> bool:
    return any(
        r.idempotency_key is not None and not isinstance(o, Booking)
        for r, o in zip(requests, outcomes, strict=True)
    )


class DirectReserver:
    """One transaction per request (``GOTICKET_ENGINE=off``): a batch of one, every time."""

    def __init__(self, writer: BatchWriter) -> None:
        self._writer = writer

    async def reserve(self, request: BookRequest) -> Booking:
        try:
            (outcome,) = await self._writer.commit(request.event_id, [request])
        except Unavailable:
            report(self._writer.metrics.shedding, "database-unavailable")
            raise
        if isinstance(outcome, Booking):
            return outcome
        raise outcome

    def released(self, event_id: UUID) -> None:
        pass  # nothing cached

    def queued(self) -> int:
        return 0  # every request runs in its caller's task

    async def close(self) -> None:
        pass  # every request runs in its caller's task


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
            return await self._reserver.reserve(request)
        slot = (actor.user_id, idempotency_key)
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
        self._reserver.released(booking.event_id)
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
