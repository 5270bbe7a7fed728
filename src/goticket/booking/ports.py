"""The booking context's ports: what its use cases need from storage, metrics and the
reservation strategy. The service, the writer and the engine depend on these, never on each
other's concrete classes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol
from uuid import UUID

from goticket.booking.domain import Booking, BookingTerms, BookRequest, Outcome, TermsReader
from goticket.kit.logging import get_logger
from goticket.kit.pagination import Position

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
    async def active_quantities(
        self, pairs: Sequence[tuple[UUID, UUID]]
    ) -> dict[tuple[UUID, UUID], int]:
        """Spots held by confirmed bookings, per (event, user) pair asked for (none: absent)."""

    async def add_many(
        self, bookings: Sequence[Booking], *, stock: Mapping[UUID, int] | None = None
    ) -> int:
        """Insert in one statement (a taken key is skipped), setting each event's available
        spots in ``stock`` with it; how many rows went in."""

    async def get(self, booking_id: UUID) -> Booking | None: ...
    async def by_payment(self, payment_id: UUID) -> Booking | None: ...
    async def save_status(self, booking: Booking) -> None: ...
    async def try_sweeper_lock(self) -> bool:
        """Whether this transaction is the one sweeper across all processes (until it ends)."""

    async def due_holds(self, now: datetime, limit: int) -> list[tuple[UUID, UUID]]:
        """(event, booking) of up to ``limit`` pending holds due at ``now``, oldest first."""

    async def expire(
        self, booking_ids: Sequence[UUID], now: datetime
    ) -> dict[UUID, tuple[int, int]]:
        """Expire those of these bookings still pending and due (their events' inventory rows
        locked by the caller) and put their spots back; (holds, spots) expired per event."""

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
# The terms this process already holds, if fresh (the read cache's copy of the event): no I/O,
# ``None`` when not held. Only good for refusing early: the locked transaction decides.
CachedTerms = Callable[[UUID], BookingTerms | None]


class BookingMetrics(Protocol):
    """What the booking path reports (Prometheus in the app, nothing in unit tests)."""

    def committed(self, bookings: int, spots: int) -> None: ...
    def rejected(self, reason: str) -> None: ...
    def batch(self, size: int, seconds: float) -> None: ...
    def refused_from_memory(self) -> None: ...
    def shedding(self, reason: str, count: int = 1) -> None: ...
    def holds(self, outcome: str, count: int = 1) -> None:
        """Holds by what happened: created, converted (paid), expired, cancelled."""

    def refunded(self, reason: str) -> None:
        """A payment given back: late (its hold expired, no spots), cancelled, mismatch."""


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

    def holds(self, outcome: str, count: int = 1) -> None:
        pass

    def refunded(self, reason: str) -> None:
        pass


class Refunds(Protocol):
    """Gives a payment back through its provider (the payments context, wired by app.py).
    Called inside the transaction that decides the refund: if it fails, nothing is decided and
    the caller (a webhook, a cancellation) fails, to be retried."""

    async def refund(self, payment_id: UUID, provider: str, amount: int, currency: str) -> None: ...


class Reserver(Protocol):
    async def reserve(self, request: BookRequest) -> Booking:
        """Commit a booking for ``request`` (or return the one its key already made)."""

    def released(self, event_id: UUID) -> None:
        """Spots of ``event_id`` went back on sale (a cancellation)."""

    def queued(self) -> int:
        """Requests waiting for a transaction."""

    async def close(self) -> None:
        """Finish the work in flight before shutdown."""


class BatchCommitter(Protocol):
    """Decides batches of requests in one transaction each (``BatchWriter``)."""

    async def commit(self, event_id: UUID, requests: Sequence[BookRequest]) -> list[Outcome]: ...

    async def commit_many(
        self, groups: Mapping[UUID, Sequence[BookRequest]]
    ) -> dict[UUID, list[Outcome]]: ...

    async def commit_free(
        self, groups: Mapping[UUID, Sequence[BookRequest]]
    ) -> tuple[dict[UUID, list[Outcome]], list[UUID]]:
        """Decide the events whose inventory rows are free now; the others come back undecided."""


def report(record: Callable[..., None], *args: object) -> None:
    """Record a metric; a failing metric never fails the booking path."""
    try:
        record(*args)
    except Exception:
        log.warning("a booking metric could not be recorded", exc_info=True)
