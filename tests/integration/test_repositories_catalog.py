"""The accounts and events repositories against real PostgreSQL, migrated by the real migrations."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from goticket.accounts.domain import User
from goticket.accounts.repository import PgAccountsUnitOfWork
from goticket.booking.repository import PgInventoryRepository
from goticket.events.domain import Event
from goticket.events.repository import PgEventsUnitOfWork
from goticket.kit.auth import Role
from goticket.kit.db import Database
from goticket.kit.pagination import Position

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def make_user(**overrides: Any) -> User:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "email": f"u{uuid.uuid4().hex[:8]}@example.com",
        "password_hash": "hash",
        "name": "Ada",
        "role": Role.USER,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return User(**values)


def make_event(organizer_id: uuid.UUID, **overrides: Any) -> Event:
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


async def add_user(database: Database, **overrides: Any) -> User:
    user = make_user(**overrides)
    async with PgAccountsUnitOfWork(database) as uow:
        assert await uow.users.add(user)
        await uow.commit()
    return user


def events_uow(database: Database, *, readonly: bool = False) -> PgEventsUnitOfWork:
    return PgEventsUnitOfWork(database, PgInventoryRepository, readonly=readonly)


async def test_users_round_trip_and_case_insensitive_email(database: Database) -> None:
    user = await add_user(database, email="Ada@Example.com")
    async with PgAccountsUnitOfWork(database, readonly=True) as uow:
        assert await uow.users.get(user.id) == user
        assert await uow.users.get_by_email("ada@example.COM") == user
        assert await uow.users.get(uuid.uuid4()) is None
        assert await uow.users.get_by_email("nobody@example.com") is None


async def test_users_add_refuses_an_email_taken_in_another_case(database: Database) -> None:
    await add_user(database, email="dup@example.com")
    async with PgAccountsUnitOfWork(database) as uow:
        assert await uow.users.add(make_user(email="DUP@example.com")) is False
        await uow.commit()


async def test_users_save_role(database: Database) -> None:
    user = await add_user(database)
    promoted = user.with_role(Role.ORGANIZER, NOW + timedelta(minutes=1))
    async with PgAccountsUnitOfWork(database) as uow:
        await uow.users.save_role(promoted)
        await uow.commit()
    async with PgAccountsUnitOfWork(database, readonly=True) as uow:
        assert await uow.users.get(user.id) == promoted


async def test_unit_of_work_rolls_back_without_commit(database: Database) -> None:
    user = make_user()
    async with PgAccountsUnitOfWork(database) as uow:
        assert await uow.users.add(user)
    async with PgAccountsUnitOfWork(database, readonly=True) as uow:
        assert await uow.users.get(user.id) is None


async def test_unit_of_work_rolls_back_on_error(database: Database) -> None:
    user = make_user()
    with pytest.raises(RuntimeError):
        async with PgAccountsUnitOfWork(database) as uow:
            await uow.users.add(user)
            raise RuntimeError("boom")
    async with PgAccountsUnitOfWork(database, readonly=True) as uow:
        assert await uow.users.get(user.id) is None


async def test_events_add_get_update_delete_with_inventory(database: Database) -> None:
    organizer = await add_user(database, role=Role.ORGANIZER)
    event = make_event(organizer.id, max_per_user=4, description="Loud")
    async with events_uow(database) as uow:
        await uow.events.add(event)
        await uow.inventory.create(event.id, 50)
        await uow.commit()
    async with events_uow(database, readonly=True) as uow:
        assert await uow.events.get(event.id) == event
        assert await uow.inventory.counts([event.id, uuid.uuid4()]) == {event.id: (50, 50)}
        assert await uow.inventory.counts([]) == {}

    renamed = replace(event, name="Renamed", updated_at=NOW + timedelta(hours=1))
    async with events_uow(database) as uow:
        assert await uow.inventory.lock(event.id) == (50, 50)
        assert await uow.events.update(renamed)
        await uow.inventory.store(event.id, 60, 55)
        await uow.commit()
    async with events_uow(database, readonly=True) as uow:
        assert await uow.events.get(event.id) == renamed
        assert await uow.inventory.counts([event.id]) == {event.id: (60, 55)}

    async with events_uow(database) as uow:
        await uow.events.delete(event.id)
        await uow.commit()
    async with events_uow(database, readonly=True) as uow:
        assert await uow.events.get(event.id) is None
        assert await uow.inventory.lock(event.id) is None  # cascaded with the event
        assert await uow.events.update(renamed) is False


async def test_events_list_filters_and_keyset_pages(database: Database) -> None:
    organizer = await add_user(database, role=Role.ORGANIZER)
    same_start = NOW + timedelta(days=3)
    events = [make_event(organizer.id, start_at=NOW + timedelta(days=d)) for d in (5, 1, 2, 4)]
    events += [make_event(organizer.id, start_at=same_start) for _ in range(3)]
    async with events_uow(database) as uow:
        for event in events:
            await uow.events.add(event)
            await uow.inventory.create(event.id, 1)
        await uow.commit()
    expected = sorted(events, key=lambda e: (e.start_at, e.id))

    seen: list[Event] = []
    after: Position | None = None
    async with events_uow(database, readonly=True) as uow:
        while True:
            page = await uow.events.list(
                starts_after=None, starts_before=None, after=after, limit=2
            )
            if not page:
                break
            seen += page
            after = Position(page[-1].start_at, page[-1].id)
        assert [e.id for e in seen] == [e.id for e in expected]

        window = await uow.events.list(
            starts_after=NOW + timedelta(days=2),
            starts_before=NOW + timedelta(days=4),
            after=None,
            limit=100,
        )
    # startsAfter is inclusive, startsBefore exclusive.
    assert [e.start_at for e in window] == [NOW + timedelta(days=2)] + [same_start] * 3


async def test_inventory_check_constraint_refuses_overselling(database: Database) -> None:
    organizer = await add_user(database, role=Role.ORGANIZER)
    event = make_event(organizer.id)
    async with events_uow(database) as uow:
        await uow.events.add(event)
        await uow.inventory.create(event.id, 5)
        await uow.commit()
    for capacity, available in ((5, -1), (5, 6)):
        with pytest.raises(asyncpg.exceptions.CheckViolationError):
            async with events_uow(database) as uow:
                await uow.inventory.store(event.id, capacity, available)
