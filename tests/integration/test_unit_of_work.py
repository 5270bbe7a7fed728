"""The read-only unit of work on real PostgreSQL: one snapshot for every statement of a read."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest

from goticket.booking.repository import PgInventoryRepository
from goticket.events.repository import PgEventsUnitOfWork
from goticket.kit.db import Database, UnitOfWork
from goticket.kit.errors import Unavailable
from tests.bookings_support import DB
from tests.contract.worlds import add_event, postgres_world


async def seed_event(database: Database, capacity: int = 10) -> UUID:
    return (await add_event(postgres_world(database), capacity=capacity)).id


def reader(database: Database) -> PgEventsUnitOfWork:
    return PgEventsUnitOfWork(database, PgInventoryRepository, readonly=True)


async def test_a_read_only_unit_of_work_reads_one_snapshot(database: Database, db: DB) -> None:
    event_id = await seed_event(database, capacity=10)
    async with reader(database) as uow:
        event = await uow.events.get(event_id)
        assert event is not None
        # Another transaction renames the event, books spots and commits between our two
        # statements: the second statement still sees the world of the first.
        await db.execute("UPDATE events SET name = 'Renamed' WHERE id = $1", event_id)
        await db.execute("UPDATE event_inventory SET available = 3 WHERE event_id = $1", event_id)
        assert await uow.inventory.counts([event_id]) == {event_id: (10, 10)}
        again = await uow.events.get(event_id)
        assert again is not None
        assert again.name == "Gig"
    async with reader(database) as uow:  # the next read sees the committed change
        assert await uow.inventory.counts([event_id]) == {event_id: (10, 3)}
        renamed = await uow.events.get(event_id)
        assert renamed is not None
        assert renamed.name == "Renamed"


async def test_a_read_only_unit_of_work_is_a_repeatable_read_read_only_transaction(
    database: Database,
) -> None:
    async with UnitOfWork(database, readonly=True) as uow:
        assert uow.connection.is_in_transaction()
        assert await uow.connection.fetchval("SHOW transaction_isolation") == "repeatable read"
        assert await uow.connection.fetchval("SHOW transaction_read_only") == "on"
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()  # a bug, as the fakes say too
    async with UnitOfWork(database) as uow:  # a writer stays at the server's default
        assert await uow.connection.fetchval("SHOW transaction_isolation") == "read committed"
        assert await uow.connection.fetchval("SHOW transaction_read_only") == "off"


async def test_a_read_only_unit_of_work_cannot_write(database: Database, db: DB) -> None:
    event_id = await seed_event(database, capacity=10)
    # The server refuses the statement itself; the bug surfaces as itself (a 500), never as a
    # write, nor as the 503 a failover to a standby would be.
    with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
        async with reader(database) as uow:
            await uow.inventory.store(event_id, 10, 1)
    with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
        async with reader(database) as uow:
            await uow.inventory.lock(event_id)  # a row lock is a write too
    available = "SELECT available FROM event_inventory WHERE event_id = $1"
    assert await db.fetchval(available, event_id) == 10


async def test_read_only_units_of_work_give_their_connections_back_idle(
    database: Database, db: DB
) -> None:
    event_id = await seed_event(database)
    for _ in range(6):  # more rounds than the pool has connections
        async with reader(database) as uow:
            assert await uow.events.get(event_id) is not None
    with pytest.raises(RuntimeError, match="boom"):
        async with reader(database) as uow:
            await uow.events.get(event_id)
            raise RuntimeError("boom")
    assert database.pool.get_idle_size() == database.pool.get_size()
    connection = await database.acquire()
    try:
        assert not connection.is_in_transaction()
    finally:
        await database.release(connection)


async def test_a_lock_wait_past_the_timeout_is_a_503_not_a_500(database: Database, db: DB) -> None:
    """A transaction that loses to another one (lock_timeout, deadlock) rolled back: the client
    gets Unavailable (503 + Retry-After) and may retry."""
    event_id = await seed_event(database)
    async with db.transaction():
        await db.execute("SELECT 1 FROM event_inventory WHERE event_id = $1 FOR UPDATE", event_id)
        with pytest.raises(Unavailable) as caught:
            async with UnitOfWork(database) as uow:
                await uow.connection.execute("SET LOCAL lock_timeout = '50ms'")
                await uow.connection.execute(
                    "UPDATE event_inventory SET available = 0 WHERE event_id = $1", event_id
                )
    assert isinstance(caught.value.__cause__, asyncpg.exceptions.LockNotAvailableError)
    assert (
        await db.fetchval("SELECT available FROM event_inventory WHERE event_id = $1", event_id)
        == 10
    )
