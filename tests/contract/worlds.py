"""The two implementations of every repository port, behind one face: the contract tests run the
same assertions against the in-memory fakes and against PostgreSQL, so the fakes cannot drift."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from goticket.accounts.domain import User
from goticket.accounts.repository import PgAccountsUnitOfWork
from goticket.accounts.service import UnitOfWorkFactory as AccountsUowFactory
from goticket.app import CatalogInventory
from goticket.booking.domain import Booking, BookingStatus, BookRequest
from goticket.booking.ports import UnitOfWorkFactory as BookingUowFactory
from goticket.booking.repository import PgBookingUnitOfWork
from goticket.events.domain import Event
from goticket.events.repository import PgEventsUnitOfWork
from goticket.events.service import UnitOfWorkFactory as EventsUowFactory
from goticket.kit.auth import Role
from goticket.kit.db import Database
from goticket.kit.pagination import Position
from tests.unit.fakes import NOW, FakeAccountsUow, FakeBookingUow, FakeEventsUow

Row = TypeVar("Row")


@dataclass
class World:
    """The three contexts' unit-of-work factories over one store."""

    name: str
    accounts: AccountsUowFactory
    events: EventsUowFactory
    booking: BookingUowFactory

    def stocked(self, event_id: UUID, capacity: int) -> None:
        """An event's inventory row was created (PostgreSQL shares it between the contexts)."""


class FakeWorld(World):
    def __init__(self) -> None:
        self._booking = FakeBookingUow()
        super().__init__("fake", FakeAccountsUow(), FakeEventsUow(), self._booking)

    def stocked(self, event_id: UUID, capacity: int) -> None:
        # The fakes keep each context's view apart: the booking one learns of the row here.
        self._booking.bookings.available[event_id] = capacity


def postgres_world(database: Database) -> World:
    return World(
        "postgres",
        partial(PgAccountsUnitOfWork, database),
        partial(PgEventsUnitOfWork, database, CatalogInventory),
        partial(PgBookingUnitOfWork, database),
    )


def make_user(**overrides: Any) -> User:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "email": f"u{uuid.uuid4().hex[:10]}@example.com",
        "password_hash": "hash",
        "name": "Ada",
        "role": Role.USER,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return User(**values)


def make_event(organizer_id: UUID, **overrides: Any) -> Event:
    start = overrides.pop("start_at", NOW + timedelta(days=1))
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "organizer_id": organizer_id,
        "name": "Gig",
        "description": None,
        "venue": "Hall",
        "start_at": start,
        "end_at": start + timedelta(hours=2),
        "price": 1000,
        "currency": "EUR",
        "max_per_user": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return Event(**values)


def make_booking(event_id: UUID, user_id: UUID, **overrides: Any) -> Booking:
    quantity = overrides.pop("quantity", 1)
    key = overrides.pop("idempotency_key", None)
    at = overrides.pop("created_at", NOW)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "event_id": event_id,
        "user_id": user_id,
        "quantity": quantity,
        "status": BookingStatus.CONFIRMED,
        "total_price": 1000 * quantity,
        "currency": "EUR",
        "idempotency_key": key,
        "request_hash": BookRequest(event_id, user_id, quantity, key).request_hash,
        "created_at": at,
        "updated_at": at,
    }
    values.update(overrides)
    return Booking(**values)


async def add_user(world: World, **overrides: Any) -> User:
    user = make_user(**overrides)
    async with world.accounts() as uow:
        assert await uow.users.add(user)
        await uow.commit()
    return user


async def add_event(
    world: World, capacity: int = 10, organizer: UUID | None = None, **overrides: Any
) -> Event:
    if organizer is None:
        organizer = (await add_user(world, role=Role.ORGANIZER)).id
    event = make_event(organizer, **overrides)
    async with world.events() as uow:
        await uow.events.add(event)
        await uow.inventory.create(event.id, capacity)
        await uow.commit()
    world.stocked(event.id, capacity)
    return event


async def add_bookings(world: World, *bookings: Booking) -> None:
    async with world.booking() as uow:
        assert await uow.bookings.add_many(bookings) == len(bookings)
        await uow.commit()


async def walk(
    page: Callable[[Position | None], Awaitable[list[Row]]],
    limit: int,
    position: Callable[[Row], Position],
) -> tuple[list[Row], int]:
    """Every row, following the cursor from page to page; and how many pages that took."""
    seen: list[Row] = []
    after: Position | None = None
    pages = 0
    while rows := await page(after):
        assert len(rows) <= limit
        pages += 1
        seen += rows
        after = position(rows[-1])
    return seen, pages
