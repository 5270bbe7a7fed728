"""SQL for the events table (the catalog row; the hot inventory row belongs to booking)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Self
from uuid import UUID

import asyncpg

from goticket.events.domain import Checkout, Event, InventoryPort
from goticket.kit.db import Connection, Database, UnitOfWork
from goticket.kit.pagination import Position
from goticket.kit.rows import columns, from_row, placeholders, values

_COLUMNS = columns(Event)


def _event(row: asyncpg.Record) -> Event:
    return from_row(Event, row, checkout=Checkout(row["checkout"]))


class PgEventsRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def add(self, event: Event) -> None:
        await self._conn.execute(
            f"INSERT INTO events ({_COLUMNS}) VALUES ({placeholders(Event)})", *values(event)
        )

    async def get(self, event_id: UUID) -> Event | None:
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM events WHERE id = $1", event_id)
        return _event(row) if row else None

    async def get_many(self, event_ids: Sequence[UUID]) -> list[Event]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE id = ANY($1::uuid[])", list(event_ids)
        )
        return [_event(row) for row in rows]

    async def updated(self, event_ids: Sequence[UUID]) -> dict[UUID, datetime]:
        rows = await self._conn.fetch(
            "SELECT id, updated_at FROM events WHERE id = ANY($1::uuid[])", list(event_ids)
        )
        return {row["id"]: row["updated_at"] for row in rows}

    async def update(self, event: Event) -> bool:
        updated = await self._conn.fetchval(
            """UPDATE events SET name = $2, description = $3, venue = $4, start_at = $5,
                   end_at = $6, price = $7, currency = $8, max_per_user = $9, updated_at = $10,
                   sales_start_at = $11, checkout = $12, hold_seconds = $13
               WHERE id = $1 RETURNING true""",
            event.id,
            event.name,
            event.description,
            event.venue,
            event.start_at,
            event.end_at,
            event.price,
            event.currency,
            event.max_per_user,
            event.updated_at,
            event.sales_start_at,
            event.checkout,
            event.hold_seconds,
        )
        return bool(updated)

    async def delete(self, event_id: UUID) -> None:
        await self._conn.execute("DELETE FROM events WHERE id = $1", event_id)

    async def list(
        self,
        *,
        starts_after: datetime | None,
        starts_before: datetime | None,
        after: Position | None,
        limit: int,
    ) -> list[Event]:
        # Keyset pagination on (start_at, id): a page never repeats or skips an item, whatever
        # is inserted meanwhile, and every page costs one index range scan.
        rows = await self._conn.fetch(
            f"""SELECT {_COLUMNS} FROM events
                WHERE ($1::timestamptz IS NULL OR start_at >= $1)
                  AND ($2::timestamptz IS NULL OR start_at < $2)
                  AND ($3::timestamptz IS NULL OR (start_at, id) > ($3, $4::uuid))
                ORDER BY start_at, id
                LIMIT $5""",
            starts_after,
            starts_before,
            after.at if after else None,
            after.id if after else None,
            limit,
        )
        return [_event(row) for row in rows]


class PgEventsUnitOfWork(UnitOfWork):
    events: PgEventsRepository
    inventory: InventoryPort

    def __init__(
        self,
        database: Database,
        inventory: Callable[[Connection], InventoryPort],
        *,
        readonly: bool = False,
    ) -> None:
        super().__init__(database, readonly=readonly)
        self._inventory = inventory

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.events = PgEventsRepository(self.connection)
        self.inventory = self._inventory(self.connection)
        return self
