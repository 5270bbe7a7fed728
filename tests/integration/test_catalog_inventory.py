"""``PgInventoryRepository.pending`` on real PostgreSQL: the count the catalog decides a checkout
change on (the fake's ``FakeInventory.holds`` stands for it in the service tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from goticket.booking.repository import PgInventoryRepository
from goticket.events.domain import Checkout
from goticket.events.repository import PgEventsUnitOfWork
from goticket.kit.db import Database
from tests.bookings_support import DB
from tests.contract.worlds import add_event, add_user, postgres_world


async def add_row(db: DB, event_id: UUID, user_id: UUID, status: str, quantity: int = 1) -> None:
    now = datetime.now(UTC)
    held = status in ("pending", "expired")
    await db.execute(
        """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price, currency,
               created_at, updated_at, expires_at, payment_id, payment_provider, payment_status)
           VALUES ($1, $2, $3, $4, $5, 0, 'EUR', $6, $6, $7, $8, $9, $10)""",
        uuid.uuid4(),
        event_id,
        user_id,
        quantity,
        status,
        now,
        now + timedelta(minutes=10) if held else None,
        uuid.uuid4() if held else None,
        "fake" if held else None,
        "requires_payment" if held else None,
    )


async def test_pending_counts_the_events_pending_bookings_only(database: Database, db: DB) -> None:
    world = postgres_world(database)
    event = await add_event(world, capacity=50, checkout=Checkout.PAYMENT, hold_seconds=120)
    other = await add_event(world, capacity=50)
    user = (await add_user(world)).id
    for status in ("pending", "pending", "confirmed", "cancelled", "expired"):
        await add_row(db, event.id, user, status, quantity=3)
    await add_row(db, other.id, user, "pending")
    async with PgEventsUnitOfWork(database, PgInventoryRepository, readonly=True) as uow:
        assert await uow.inventory.pending(event.id) == 2  # bookings, not spots
        assert await uow.inventory.pending(other.id) == 1
        assert await uow.inventory.pending(uuid.uuid4()) == 0
        # The catalog row round-trips the two fields.
        assert await uow.events.get(event.id) == event
        stored = await uow.events.get(event.id)
        assert stored is not None
        assert (stored.checkout, stored.hold_seconds) == (Checkout.PAYMENT, 120)
