"""The booking repositories against real PostgreSQL: locks, constraints, lost connections.

What every implementation of the ports must do (the fakes too) is in tests/contract/."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from goticket.booking.domain import Booking
from goticket.booking.repository import (
    PgBookingsRepository,
    PgBookingUnitOfWork,
    PgInventoryRepository,
)
from goticket.kit.db import Database
from goticket.kit.errors import Unavailable
from tests.bookings_support import DB
from tests.contract.worlds import make_booking

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def add_one(repo: PgBookingsRepository, booking: Booking) -> bool:
    """Insert one booking through the batch insert; False when its key is already taken."""
    return await repo.add_many([booking]) == 1


async def held(repo: PgBookingsRepository, event_id: uuid.UUID, user_id: uuid.UUID) -> int:
    return (await repo.active_quantities([(event_id, user_id)])).get((event_id, user_id), 0)


async def add_user(db: DB) -> UUID:
    user_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at)
           VALUES ($1, $2, 'hash', 'Ada', 'user', $3, $3)""",
        user_id,
        f"u{user_id.hex[:12]}@example.com",
        NOW,
    )
    return user_id


async def add_event(db: DB, database: Database, capacity: int = 10) -> UUID:
    """An event row by SQL and its inventory row through the inventory repository."""
    organizer = await add_user(db)
    event_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO events (id, organizer_id, name, start_at, end_at, price, currency,
                               created_at, updated_at)
           VALUES ($1, $2, 'Gig', $3, $4, 1000, 'EUR', $5, $5)""",
        event_id,
        organizer,
        NOW + timedelta(days=1),
        NOW + timedelta(days=1, hours=2),
        NOW,
    )
    async with PgBookingUnitOfWork(database) as uow:
        await PgInventoryRepository(uow.connection).create(event_id, capacity)
        await uow.commit()
    return event_id


async def insert(database: Database, *bookings: Booking) -> None:
    async with PgBookingUnitOfWork(database) as uow:
        for booking in bookings:
            assert await add_one(uow.bookings, booking)
        await uow.commit()


async def inventory(db: DB, event_id: UUID) -> tuple[int, int]:
    row = await db.fetchrow(
        "SELECT capacity, available FROM event_inventory WHERE event_id = $1", event_id
    )
    assert row is not None
    return row["capacity"], row["available"]


# --------------------------------------------------------------------- the inventory row


async def test_lock_inventory_reads_available_and_none_for_an_unknown_event(
    database: Database, db: DB
) -> None:
    event_id = await add_event(db, database, capacity=7)
    async with PgBookingUnitOfWork(database) as uow:
        assert await uow.bookings.lock_inventory(event_id) == 7
        assert await uow.bookings.lock_inventory(uuid.uuid4()) is None


async def test_set_available_is_kept_on_commit(database: Database, db: DB) -> None:
    event_id = await add_event(db, database, capacity=7)
    async with PgBookingUnitOfWork(database) as uow:
        assert await uow.bookings.lock_inventory(event_id) == 7
        await uow.bookings.set_available(event_id, 3)
        assert await uow.bookings.lock_inventory(event_id) == 3  # its own write, same transaction
        await uow.commit()
    assert await inventory(db, event_id) == (7, 3)
    async with PgBookingUnitOfWork(database, readonly=True) as uow:
        assert await PgInventoryRepository(uow.connection).counts([event_id]) == {event_id: (7, 3)}


async def test_lock_inventory_holds_the_row_until_the_transaction_ends(
    database_url: str, database: Database, db: DB
) -> None:
    event_id = await add_event(db, database)
    impatient = Database(database_url, min_size=1, max_size=1, lock_timeout_ms=200)
    await impatient.open()
    try:
        async with PgBookingUnitOfWork(database) as holder:
            assert await holder.bookings.lock_inventory(event_id) == 10
            # While the row is locked, another writer gives up after lock_timeout: 503, not a hang.
            with pytest.raises(Unavailable):
                async with PgBookingUnitOfWork(impatient) as uow:
                    await uow.bookings.lock_inventory(event_id)
            # A reader is not blocked by the lock.
            async with PgBookingUnitOfWork(impatient, readonly=True) as uow:
                counts = await PgInventoryRepository(uow.connection).counts([event_id])
                assert counts == {event_id: (10, 10)}
            await holder.bookings.set_available(event_id, 9)
            await holder.commit()
        async with PgBookingUnitOfWork(impatient) as uow:
            assert await uow.bookings.lock_inventory(event_id) == 9
    finally:
        await impatient.close()


async def test_a_waiting_locker_sees_the_committed_value(database: Database, db: DB) -> None:
    event_id = await add_event(db, database)
    first_locked = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with PgBookingUnitOfWork(database) as uow:
            assert await uow.bookings.lock_inventory(event_id) == 10
            first_locked.set()
            await release.wait()
            await uow.bookings.set_available(event_id, 4)
            await uow.commit()

    async def second() -> int | None:
        await first_locked.wait()
        async with PgBookingUnitOfWork(database) as uow:
            return await uow.bookings.lock_inventory(event_id)

    task_first = asyncio.create_task(first())
    task_second = asyncio.create_task(second())
    await first_locked.wait()
    await asyncio.sleep(0.1)
    assert not task_second.done()  # it waits behind the lock
    release.set()
    await task_first
    assert await task_second == 4  # and then reads the committed value, not a stale one


@pytest.mark.parametrize(("capacity", "available"), [(5, -1), (5, 6), (1, -100)])
async def test_check_constraint_refuses_overselling_on_set_available(
    database: Database, db: DB, capacity: int, available: int
) -> None:
    event_id = await add_event(db, database, capacity=capacity)
    with pytest.raises(asyncpg.exceptions.CheckViolationError):
        async with PgBookingUnitOfWork(database) as uow:
            await uow.bookings.lock_inventory(event_id)
            await uow.bookings.set_available(event_id, available)
            await uow.commit()
    assert await inventory(db, event_id) == (capacity, capacity)


@pytest.mark.parametrize(
    ("capacity", "available"), [(5, -1), (5, 6), (0, 0), (10_000_001, 1), (4, 5)]
)
async def test_check_constraint_refuses_bad_stock_on_store(
    database: Database, db: DB, capacity: int, available: int
) -> None:
    event_id = await add_event(db, database, capacity=5)
    with pytest.raises(asyncpg.exceptions.CheckViolationError):
        async with PgBookingUnitOfWork(database) as uow:
            await PgInventoryRepository(uow.connection).store(event_id, capacity, available)
            await uow.commit()
    assert await inventory(db, event_id) == (5, 5)


async def test_available_may_reach_both_bounds(database: Database, db: DB) -> None:
    event_id = await add_event(db, database, capacity=5)
    for available in (0, 5):
        async with PgBookingUnitOfWork(database) as uow:
            await uow.bookings.set_available(event_id, available)
            await uow.commit()
        assert await inventory(db, event_id) == (5, available)


async def test_inventory_create_lock_store_and_counts(database: Database, db: DB) -> None:
    event_id = await add_event(db, database, capacity=8)
    other = await add_event(db, database, capacity=3)
    async with PgBookingUnitOfWork(database) as uow:
        inv = PgInventoryRepository(uow.connection)
        assert await inv.lock(event_id) == (8, 8)
        assert await inv.lock(uuid.uuid4()) is None
        await inv.store(event_id, 12, 9)
        await uow.commit()
    async with PgBookingUnitOfWork(database, readonly=True) as uow:
        inv = PgInventoryRepository(uow.connection)
        assert await inv.counts([event_id, other, uuid.uuid4()]) == {
            event_id: (12, 9),
            other: (3, 3),
        }
        assert await inv.counts([]) == {}
    with pytest.raises(asyncpg.exceptions.UniqueViolationError):
        async with PgBookingUnitOfWork(database) as uow:
            await PgInventoryRepository(uow.connection).create(event_id, 4)


# ----------------------------------------------------------------------------- bookings


# ------------------------------------------------------------------------ unit of work


async def test_an_error_inside_rolls_back_and_propagates(database: Database, db: DB) -> None:
    event_id, user_id = await add_event(db, database, capacity=5), await add_user(db)
    booking = make_booking(event_id, user_id)
    with pytest.raises(RuntimeError, match="boom"):
        async with PgBookingUnitOfWork(database) as uow:
            assert await add_one(uow.bookings, booking)
            await uow.bookings.set_available(event_id, 4)
            raise RuntimeError("boom")
    assert await db.fetchval("SELECT count(*) FROM bookings") == 0
    assert await inventory(db, event_id) == (5, 5)


async def test_a_failed_statement_rolls_back_the_whole_unit(database: Database, db: DB) -> None:
    event_id, user_id = await add_event(db, database, capacity=5), await add_user(db)
    with pytest.raises(asyncpg.exceptions.CheckViolationError):
        async with PgBookingUnitOfWork(database) as uow:
            assert await add_one(uow.bookings, make_booking(event_id, user_id))
            await uow.bookings.set_available(event_id, 6)
    assert await db.fetchval("SELECT count(*) FROM bookings") == 0
    # The connection went back to the pool clean: the next unit of work works.
    await insert(database, make_booking(event_id, user_id))
    assert await db.fetchval("SELECT count(*) FROM bookings") == 1


async def test_connections_go_back_to_the_pool(database: Database, db: DB) -> None:
    event_id, user_id = await add_event(db, database), await add_user(db)
    for _ in range(12):  # more rounds than the pool has connections
        async with PgBookingUnitOfWork(database) as uow:
            await uow.bookings.lock_inventory(event_id)
        async with PgBookingUnitOfWork(database, readonly=True) as uow:
            await held(uow.bookings, event_id, user_id)
    assert database.pool.get_size() <= 4
    assert database.pool.get_idle_size() == database.pool.get_size()


async def test_bookings_table_refuses_rows_the_domain_never_makes(
    database: Database, db: DB
) -> None:
    event_id, user_id = await add_event(db, database), await add_user(db)
    bad = [
        make_booking(event_id, user_id, quantity=0),
        make_booking(event_id, user_id, quantity=11),
        make_booking(event_id, user_id, total_price=-1),
        make_booking(event_id, user_id, idempotency_key="x" * 256),
        make_booking(event_id, user_id, idempotency_key=""),
    ]
    for booking in bad:
        with pytest.raises(asyncpg.exceptions.CheckViolationError):
            async with PgBookingUnitOfWork(database) as uow:
                await add_one(uow.bookings, booking)
    with pytest.raises(asyncpg.exceptions.ForeignKeyViolationError):
        async with PgBookingUnitOfWork(database) as uow:
            await add_one(uow.bookings, make_booking(uuid.uuid4(), user_id))
    assert await db.fetchval("SELECT count(*) FROM bookings") == 0


@pytest.mark.parametrize("lost_before", ["a statement", "the commit"])
async def test_a_connection_lost_inside_the_unit_of_work_is_unavailable(
    database: Database, db: DB, lost_before: str
) -> None:
    """Whether the server drops the connection before a statement or before COMMIT, the caller
    gets Unavailable (503, retry with the key), nothing is half-written, and the pool recovers."""
    event_id, user_id = await add_event(db, database, capacity=5), await add_user(db)
    with pytest.raises(Unavailable):
        async with PgBookingUnitOfWork(database) as uow:
            assert await uow.bookings.lock_inventory(event_id) == 5
            assert await add_one(uow.bookings, make_booking(event_id, user_id))
            await uow.bookings.set_available(event_id, 4)
            pid = await uow.connection.fetchval("SELECT pg_backend_pid()")
            assert await db.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
            if lost_before == "a statement":
                await held(uow.bookings, event_id, user_id)
            await uow.commit()
    assert await db.fetchval("SELECT count(*) FROM bookings") == 0
    assert await inventory(db, event_id) == (5, 5)
    async with PgBookingUnitOfWork(database) as uow:
        assert await uow.bookings.lock_inventory(event_id) == 5


# ----------------------------------------------------------------------------- batches


async def test_lock_inventories_locks_every_row_asked_for_and_skips_unknown_events(
    database: Database, db: DB
) -> None:
    first, second = await add_event(db, database, capacity=3), await add_event(db, database)
    unknown = uuid.uuid4()
    async with PgBookingUnitOfWork(database) as uow:
        stock = await uow.bookings.lock_inventories(sorted([first, second, unknown]))
        assert stock == {first: 3, second: 10}
        # Held: another transaction cannot take either row until this one ends.
        for event_id in (first, second):
            async with PgBookingUnitOfWork(database) as other:
                await other.connection.execute("SET LOCAL lock_timeout = '100ms'")
                with pytest.raises(Unavailable):
                    await other.bookings.lock_inventories([event_id])
