"""In-memory fakes for the service ports: no database, no HTTP. tests/contract/ runs the same
assertions on these and on the PostgreSQL repositories: change both, or that suite fails.

Each fake unit of work behaves like the real one where it matters to a use case: it snapshots its
tables on entry and restores them on exit unless ``commit()`` was called (so "nothing committed"
also means "nothing written"), and it fails the test when a ``readonly=True`` unit of work writes.
Tables hold frozen dataclasses, so a shallow copy of each dict is a full snapshot. Two units of work
that overlap in time would restore over each other: the tests never overlap writers.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from goticket.accounts.domain import User
from goticket.booking.domain import Booking, BookingTerms
from goticket.events.domain import Event
from goticket.kit.auth import Principal
from goticket.kit.pagination import Position
from goticket.kit.tokens import IssuedToken

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


@dataclass
class UowLog:
    """What the units of work of one factory did."""

    opened: list[bool] = field(default_factory=list)  # the readonly flag of each one opened
    commits: int = 0
    rollbacks: int = 0
    # Called with the readonly flag as each unit of work begins, before its snapshot: a test
    # uses it to play another process's committed transaction in between two of ours.
    before_enter: Callable[[bool], None] | None = None


class FakeUnitOfWork:
    def __init__(
        self, tables: Sequence[MutableMapping[Any, Any]], log: UowLog, *, readonly: bool
    ) -> None:
        self._tables = tables
        self._log = log
        self.readonly = readonly
        self._committed = False
        self._snapshot: list[dict[Any, Any]] = []

    async def __aenter__(self) -> Self:
        if self._log.before_enter is not None:
            self._log.before_enter(self.readonly)
        self._snapshot = [dict(table) for table in self._tables]
        self._log.opened.append(self.readonly)
        return self

    async def commit(self) -> None:
        assert not self.readonly, "commit() in a read-only unit of work"
        self._committed = True
        self._log.commits += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        changed = any(dict(t) != s for t, s in zip(self._tables, self._snapshot, strict=True))
        if changed and (self.readonly or not self._committed):
            for table, snapshot in zip(self._tables, self._snapshot, strict=True):
                table.clear()
                table.update(snapshot)
            self._log.rollbacks += 1
            assert not self.readonly, "a read-only unit of work wrote"


# ------------------------------------------------------------------------------------ accounts


class FakeUsersRepository:
    def __init__(self) -> None:
        self.rows: dict[UUID, User] = {}

    async def add(self, user: User) -> bool:
        # The real table's email is unique case-insensitively.
        if await self.get_by_email(user.email) is not None:
            return False
        self.rows[user.id] = user
        return True

    async def get(self, user_id: UUID) -> User | None:
        return self.rows.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        return next((u for u in self.rows.values() if u.email.lower() == email.lower()), None)

    async def save_role(self, user: User) -> None:
        assert user.id in self.rows
        self.rows[user.id] = user


class FakeAccountsUnitOfWork(FakeUnitOfWork):
    def __init__(self, users: FakeUsersRepository, log: UowLog, *, readonly: bool) -> None:
        super().__init__([users.rows], log, readonly=readonly)
        self.users = users


class FakeAccountsUow:
    """The factory: ``uow()`` or ``uow(readonly=True)``."""

    def __init__(self) -> None:
        self.users = FakeUsersRepository()
        self.log = UowLog()

    def __call__(self, *, readonly: bool = False) -> FakeAccountsUnitOfWork:
        return FakeAccountsUnitOfWork(self.users, self.log, readonly=readonly)


class FakeHasher:
    """``hash:<password>``; records every call so timing-equalising paths can be checked."""

    def __init__(self) -> None:
        self.hashed: list[str] = []
        self.verified: list[tuple[str, str]] = []

    async def hash(self, password: str) -> str:
        self.hashed.append(password)
        return "hash:" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append((password_hash, password))
        return password_hash == "hash:" + password


class FakeTokenIssuer:
    def __init__(self) -> None:
        self.issued: list[tuple[Principal, datetime]] = []

    def issue(self, principal: Principal, now: datetime) -> IssuedToken:
        self.issued.append((principal, now))
        return IssuedToken(f"token-for-{principal.user_id}", 900)


# -------------------------------------------------------------------------------------- events


class FakeEventsRepository:
    def __init__(self, inventory: MutableMapping[UUID, Any] | None = None) -> None:
        self.rows: dict[UUID, Event] = {}
        self.list_calls: builtins.list[dict[str, Any]] = []
        # The inventory rows a deletion takes along (the real foreign key cascades).
        self._inventory = inventory if inventory is not None else {}

    async def add(self, event: Event) -> None:
        assert event.id not in self.rows
        self.rows[event.id] = event

    async def get(self, event_id: UUID) -> Event | None:
        return self.rows.get(event_id)

    async def get_many(self, event_ids: Sequence[UUID]) -> builtins.list[Event]:
        return [self.rows[i] for i in event_ids if i in self.rows]

    async def updated(self, event_ids: Sequence[UUID]) -> dict[UUID, datetime]:
        return {i: self.rows[i].updated_at for i in event_ids if i in self.rows}

    async def update(self, event: Event) -> bool:
        if event.id not in self.rows:
            return False
        self.rows[event.id] = event
        return True

    async def delete(self, event_id: UUID) -> None:
        self.rows.pop(event_id, None)
        self._inventory.pop(event_id, None)

    async def list(
        self,
        *,
        starts_after: datetime | None,
        starts_before: datetime | None,
        after: Position | None,
        limit: int,
    ) -> builtins.list[Event]:
        self.list_calls.append(
            {"starts_after": starts_after, "starts_before": starts_before, "after": after}
            | {"limit": limit}
        )
        rows = sorted(self.rows.values(), key=lambda e: (e.start_at, e.id))
        rows = [
            e
            for e in rows
            if (starts_after is None or e.start_at >= starts_after)
            and (starts_before is None or e.start_at < starts_before)
            and (after is None or (e.start_at, e.id) > (after.at, after.id))
        ]
        return rows[:limit]


class FakeInventory:
    """The booking context's inventory as the catalog sees it: ``(capacity, available)``."""

    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[int, int]] = {}
        self.locked: list[UUID] = []
        self.holds: dict[UUID, int] = {}  # pending bookings per event, as a test sets them

    async def create(self, event_id: UUID, capacity: int) -> None:
        assert event_id not in self.rows
        self.rows[event_id] = (capacity, capacity)

    async def lock(self, event_id: UUID) -> tuple[int, int] | None:
        self.locked.append(event_id)
        return self.rows.get(event_id)

    async def store(self, event_id: UUID, capacity: int, available: int) -> None:
        assert 0 <= available <= capacity, "the CHECK constraint would refuse this"
        self.rows[event_id] = (capacity, available)

    async def counts(self, event_ids: list[UUID]) -> dict[UUID, tuple[int, int]]:
        return {i: self.rows[i] for i in event_ids if i in self.rows}

    async def pending(self, event_id: UUID) -> int:
        return self.holds.get(event_id, 0)


class FakeEventsUnitOfWork(FakeUnitOfWork):
    def __init__(
        self,
        events: FakeEventsRepository,
        inventory: FakeInventory,
        log: UowLog,
        *,
        readonly: bool,
    ) -> None:
        super().__init__([events.rows, inventory.rows], log, readonly=readonly)
        self.events = events
        self.inventory = inventory


class FakeEventsUow:
    def __init__(self) -> None:
        self.inventory = FakeInventory()
        self.events = FakeEventsRepository(self.inventory.rows)
        self.log = UowLog()

    def __call__(self, *, readonly: bool = False) -> FakeEventsUnitOfWork:
        return FakeEventsUnitOfWork(self.events, self.inventory, self.log, readonly=readonly)


# ------------------------------------------------------------------------------------- booking


class FakeBookingsRepository:
    def __init__(self) -> None:
        self.write_lock = asyncio.Lock()
        self.available: dict[UUID, int] = {}
        self.rows: dict[UUID, Booking] = {}
        self.insert_attempts = 0

    async def lock_inventory(self, event_id: UUID) -> int | None:
        await asyncio.sleep(0)  # a real lock is a round trip: let other tasks run
        return self.available.get(event_id)

    async def lock_inventories(
        self, event_ids: Sequence[UUID], *, skip_locked: bool = False
    ) -> dict[UUID, int]:
        assert list(event_ids) == sorted(event_ids), "rows are locked in event id order"
        await asyncio.sleep(0)
        return {e: self.available[e] for e in event_ids if e in self.available}

    async def set_available(self, event_id: UUID, available: int) -> None:
        assert event_id in self.available
        assert available >= 0, "the CHECK constraint would refuse this"
        self.available[event_id] = available

    async def by_key(self, user_id: UUID, key: str) -> Booking | None:
        return next(
            (b for b in self.rows.values() if b.user_id == user_id and b.idempotency_key == key),
            None,
        )

    async def confirmed_quantity(self, event_id: UUID, user_id: UUID) -> int:
        return sum(
            b.quantity
            for b in self.rows.values()
            if b.event_id == event_id and b.user_id == user_id and b.is_active
        )

    async def by_keys(self, slots: Sequence[tuple[UUID, str]]) -> dict[tuple[UUID, str], Booking]:
        found = {slot: await self.by_key(*slot) for slot in slots}
        return {slot: booking for slot, booking in found.items() if booking is not None}

    async def active_quantities(
        self, pairs: Sequence[tuple[UUID, UUID]]
    ) -> dict[tuple[UUID, UUID], int]:
        held = {pair: await self.confirmed_quantity(*pair) for pair in pairs}
        return {pair: quantity for pair, quantity in held.items() if quantity}

    async def add_many(
        self, bookings: Sequence[Booking], *, stock: Mapping[UUID, int] | None = None
    ) -> int:
        added = [await self.add(booking) for booking in bookings]
        for event_id, available in (stock or {}).items():
            await self.set_available(event_id, available)
        return sum(added)

    async def add(self, booking: Booking) -> bool:
        self.insert_attempts += 1
        key = booking.idempotency_key
        if key is not None and await self.by_key(booking.user_id, key) is not None:
            return False
        self.rows[booking.id] = booking
        return True

    async def get(self, booking_id: UUID) -> Booking | None:
        return self.rows.get(booking_id)

    async def save_status(self, booking: Booking) -> None:
        assert booking.id in self.rows
        self.rows[booking.id] = booking

    async def by_payment(self, payment_id: UUID) -> Booking | None:
        return next((b for b in self.rows.values() if b.payment_id == payment_id), None)

    async def try_sweeper_lock(self) -> bool:
        return True  # writing units of work run one at a time already

    async def due_holds(self, now: datetime, limit: int) -> list[tuple[UUID, UUID]]:
        due = sorted((b for b in self.rows.values() if b.is_due(now)), key=_deadline)
        return [(b.event_id, b.id) for b in due[:limit]]

    async def expire(
        self, booking_ids: Sequence[UUID], now: datetime
    ) -> dict[UUID, tuple[int, int]]:
        returned: dict[UUID, tuple[int, int]] = {}
        for booking_id in booking_ids:
            booking = self.rows.get(booking_id)
            if booking is None or not booking.is_due(now):
                continue
            self.rows[booking_id] = booking.expired(now)
            self.available[booking.event_id] += booking.quantity
            holds, spots = returned.get(booking.event_id, (0, 0))
            returned[booking.event_id] = (holds + 1, spots + booking.quantity)
        return returned

    async def list_for_user(
        self, user_id: UUID, after: Position | None, limit: int
    ) -> list[Booking]:
        return self._page([b for b in self.rows.values() if b.user_id == user_id], after, limit)

    async def list_for_event(
        self, event_id: UUID, after: Position | None, limit: int
    ) -> list[Booking]:
        return self._page([b for b in self.rows.values() if b.event_id == event_id], after, limit)

    @staticmethod
    def _page(rows: list[Booking], after: Position | None, limit: int) -> list[Booking]:
        # Newest first, as the SQL pages (keyset on created_at DESC, id DESC).
        rows = sorted(rows, key=lambda b: (b.created_at, b.id), reverse=True)
        if after is not None:
            rows = [b for b in rows if (b.created_at, b.id) < (after.at, after.id)]
        return rows[:limit]


def _deadline(booking: Booking) -> datetime:
    assert booking.expires_at is not None
    return booking.expires_at


class FakeTermsReader:
    """Event terms as the booking transaction reads them: from the fake catalog."""

    def __init__(self, catalog: FakeCatalog | None) -> None:
        self._catalog = catalog

    async def terms(self, event_ids: Sequence[UUID]) -> dict[UUID, BookingTerms]:
        assert self._catalog is not None, "give FakeBookingUow a catalog to book against"
        found = {event_id: await self._catalog(event_id) for event_id in event_ids}
        return {event_id: terms for event_id, terms in found.items() if terms is not None}


class FakeBookingUnitOfWork(FakeUnitOfWork):
    def __init__(
        self,
        bookings: FakeBookingsRepository,
        log: UowLog,
        *,
        readonly: bool,
        catalog: FakeCatalog | None = None,
    ) -> None:
        super().__init__([bookings.available, bookings.rows], log, readonly=readonly)
        self.bookings = bookings
        self.events = FakeTermsReader(catalog)

    async def __aenter__(self) -> Self:
        if not self.readonly:
            # Writing units of work run one at a time, as the inventory row lock makes them.
            await self.bookings.write_lock.acquire()
        return await super().__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, tb)
        finally:
            if not self.readonly:
                self.bookings.write_lock.release()


class FakeBookingUow:
    def __init__(self, catalog: FakeCatalog | None = None) -> None:
        self.bookings = FakeBookingsRepository()
        self.log = UowLog()
        self.catalog = catalog

    def __call__(self, *, readonly: bool = False) -> FakeBookingUnitOfWork:
        return FakeBookingUnitOfWork(
            self.bookings, self.log, readonly=readonly, catalog=self.catalog
        )


class FakeCatalog:
    """The event catalog as booking sees it. ``gate``, when set, holds every lookup until opened,
    so a test can keep a first request in flight while a second one arrives."""

    def __init__(self) -> None:
        self.terms: dict[UUID, BookingTerms] = {}
        self.gate: asyncio.Event | None = None
        self.calls = 0
        self.active = 0
        self.max_active = 0

    async def __call__(self, event_id: UUID) -> BookingTerms | None:
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            return self.terms.get(event_id)
        finally:
            self.active -= 1
