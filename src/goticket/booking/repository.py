"""SQL for bookings and the hot inventory row."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Self
from uuid import UUID

import asyncpg

from goticket.booking.domain import Booking, BookingStatus, PaymentStatus, TermsReader
from goticket.kit.db import Connection, Database, UnitOfWork
from goticket.kit.errors import Unavailable
from goticket.kit.pagination import Position
from goticket.kit.rows import columns, from_row

_COLUMNS = columns(Booking)
# pg_try_advisory_xact_lock key of the hold sweeper: one sweep at a time across processes.
SWEEPER_LOCK_KEY = 0x60_71C4_E7_5EE9


def _booking(row: asyncpg.Record) -> Booking:
    payment = row["payment_status"]
    return from_row(
        Booking,
        row,
        status=BookingStatus(row["status"]),
        payment_status=PaymentStatus(payment) if payment is not None else None,
    )


async def _lock_row(conn: Connection, event_id: UUID) -> asyncpg.Record | None:
    try:
        return await conn.fetchrow(
            "SELECT capacity, available FROM event_inventory WHERE event_id = $1 FOR UPDATE",
            event_id,
        )
    except asyncpg.exceptions.LockNotAvailableError as exc:
        # lock_timeout expired: the event is too busy right now. Shed instead of queueing.
        raise Unavailable("this event is very busy right now; retry shortly") from exc


class PgBookingsRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def lock_inventory(self, event_id: UUID) -> int | None:
        row = await _lock_row(self._conn, event_id)
        return row["available"] if row else None

    async def lock_inventories(
        self, event_ids: Sequence[UUID], *, skip_locked: bool = False
    ) -> dict[UUID, int]:
        # ORDER BY runs before the row locks are taken: every multi-row locker takes them in
        # event id order, and single-row lockers hold one, so no two transactions wait in a cycle.
        try:
            rows = await self._conn.fetch(
                """SELECT event_id, available FROM event_inventory
                   WHERE event_id = ANY($1::uuid[]) ORDER BY event_id FOR UPDATE"""
                + (" SKIP LOCKED" if skip_locked else ""),
                list(event_ids),
            )
        except (
            asyncpg.exceptions.LockNotAvailableError,
            asyncpg.exceptions.DeadlockDetectedError,
        ) as exc:
            raise Unavailable("these events are very busy right now; retry shortly") from exc
        return {row["event_id"]: row["available"] for row in rows}

    async def set_available(self, event_id: UUID, available: int) -> None:
        await self._conn.execute(
            "UPDATE event_inventory SET available = $2 WHERE event_id = $1", event_id, available
        )

    async def by_key(self, user_id: UUID, key: str) -> Booking | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM bookings WHERE user_id = $1 AND idempotency_key = $2",
            user_id,
            key,
        )
        return _booking(row) if row else None

    async def by_keys(self, slots: Sequence[tuple[UUID, str]]) -> dict[tuple[UUID, str], Booking]:
        rows = await self._conn.fetch(
            f"""SELECT {_COLUMNS} FROM bookings
                WHERE (user_id, idempotency_key) IN (
                    SELECT * FROM unnest($1::uuid[], $2::text[]))""",
            [user_id for user_id, _ in slots],
            [key for _, key in slots],
        )
        bookings = [_booking(row) for row in rows]
        return {(b.user_id, b.idempotency_key): b for b in bookings if b.idempotency_key}

    async def active_quantities(
        self, pairs: Sequence[tuple[UUID, UUID]]
    ) -> dict[tuple[UUID, UUID], int]:
        rows = await self._conn.fetch(
            """SELECT event_id, user_id, sum(quantity) AS held FROM bookings
               WHERE (event_id, user_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
                 AND status IN ('pending', 'confirmed')
               GROUP BY event_id, user_id""",
            [event_id for event_id, _ in pairs],
            [user_id for _, user_id in pairs],
        )
        return {(row["event_id"], row["user_id"]): int(row["held"]) for row in rows}

    async def add_many(
        self, bookings: Sequence[Booking], *, stock: Mapping[UUID, int] | None = None
    ) -> int:
        """Insert in one statement (a taken idempotency key is skipped) and set each event's
        available spots in ``stock`` in the same statement; how many rows went in."""
        try:
            return await self._insert(bookings, stock or {})
        except (
            asyncpg.exceptions.LockNotAvailableError,
            asyncpg.exceptions.DeadlockDetectedError,
        ) as exc:
            # Waiting on another transaction's insert of the same user's key (on another
            # event) took too long, or two batches crossed: nothing was written.
            raise Unavailable("bookings are contended right now; retry shortly") from exc

    async def _insert(self, bookings: Sequence[Booking], stock: Mapping[UUID, int]) -> int:
        # unnest() turns parallel arrays into rows; the UPDATE rides in the same round trip.
        inserted: int = await self._conn.fetchval(
            f"""WITH inserted AS (
                    INSERT INTO bookings ({_COLUMNS})
                    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[],
                                         $5::text[], $6::bigint[], $7::text[], $8::text[],
                                         $9::text[], $10::timestamptz[], $11::timestamptz[],
                                         $12::timestamptz[], $13::timestamptz[], $14::uuid[],
                                         $15::text[], $16::text[])
                    ON CONFLICT (user_id, idempotency_key) DO NOTHING
                    RETURNING 1
                ), stock AS (
                    UPDATE event_inventory AS i SET available = s.available
                    FROM unnest($17::uuid[], $18::int[]) AS s(event_id, available)
                    WHERE i.event_id = s.event_id
                )
                SELECT count(*) FROM inserted""",
            [b.id for b in bookings],
            [b.event_id for b in bookings],
            [b.user_id for b in bookings],
            [b.quantity for b in bookings],
            [b.status.value for b in bookings],
            [b.total_price for b in bookings],
            [b.currency for b in bookings],
            [b.idempotency_key for b in bookings],
            [b.request_hash for b in bookings],
            [b.created_at for b in bookings],
            [b.updated_at for b in bookings],
            [b.expires_at for b in bookings],
            [b.confirmed_at for b in bookings],
            [b.payment_id for b in bookings],
            [b.payment_provider for b in bookings],
            [b.payment_status for b in bookings],
            list(stock),
            list(stock.values()),
        )
        return inserted

    async def get(self, booking_id: UUID) -> Booking | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM bookings WHERE id = $1", booking_id
        )
        return _booking(row) if row else None

    async def save_status(self, booking: Booking) -> None:
        """Store a decided booking's status, its payment's and its confirmation time."""
        await self._conn.execute(
            """UPDATE bookings SET status = $2, payment_status = $3, confirmed_at = $4,
                   updated_at = $5
               WHERE id = $1""",
            booking.id,
            booking.status.value,
            booking.payment_status,
            booking.confirmed_at,
            booking.updated_at,
        )

    async def try_sweeper_lock(self) -> bool:
        locked: bool = await self._conn.fetchval(
            "SELECT pg_try_advisory_xact_lock($1)", SWEEPER_LOCK_KEY
        )
        return locked

    async def due_holds(self, now: datetime, limit: int) -> list[tuple[UUID, UUID]]:
        rows = await self._conn.fetch(
            """SELECT event_id, id FROM bookings
               WHERE status = 'pending' AND expires_at <= $1
               ORDER BY expires_at LIMIT $2""",
            now,
            limit,
        )
        return [(row["event_id"], row["id"]) for row in rows]

    async def expire(
        self, booking_ids: Sequence[UUID], now: datetime
    ) -> dict[UUID, tuple[int, int]]:
        # Re-checked in the statement: a payment may have confirmed one since it was found.
        rows = await self._conn.fetch(
            """WITH expired AS (
                   UPDATE bookings SET status = 'expired', updated_at = $2
                   WHERE id = ANY($1::uuid[]) AND status = 'pending' AND expires_at <= $2
                   RETURNING event_id, quantity
               ), returned AS (
                   SELECT event_id, count(*)::int AS holds, sum(quantity)::int AS spots
                   FROM expired GROUP BY event_id
               )
               UPDATE event_inventory AS i SET available = i.available + r.spots
               FROM returned AS r WHERE i.event_id = r.event_id
               RETURNING i.event_id, r.holds, r.spots""",
            list(booking_ids),
            now,
        )
        return {row["event_id"]: (row["holds"], row["spots"]) for row in rows}

    async def by_payment(self, payment_id: UUID) -> Booking | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM bookings WHERE payment_id = $1", payment_id
        )
        return _booking(row) if row else None

    async def list_for_user(
        self, user_id: UUID, after: Position | None, limit: int
    ) -> list[Booking]:
        return await self._newest_first("user_id", user_id, after, limit)

    async def list_for_event(
        self, event_id: UUID, after: Position | None, limit: int
    ) -> list[Booking]:
        return await self._newest_first("event_id", event_id, after, limit)

    async def _newest_first(
        self, column: str, value: UUID, after: Position | None, limit: int
    ) -> list[Booking]:
        assert column in ("user_id", "event_id")
        rows = await self._conn.fetch(
            f"""SELECT {_COLUMNS} FROM bookings
                WHERE {column} = $1
                  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
                ORDER BY created_at DESC, id DESC
                LIMIT $4""",
            value,
            after.at if after else None,
            after.id if after else None,
            limit,
        )
        return [_booking(row) for row in rows]


class PgInventoryRepository:
    """The inventory as the catalog sees it: created, resized and read with the event."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def create(self, event_id: UUID, capacity: int) -> None:
        await self._conn.execute(
            "INSERT INTO event_inventory (event_id, capacity, available) VALUES ($1, $2, $2)",
            event_id,
            capacity,
        )

    async def lock(self, event_id: UUID) -> tuple[int, int] | None:
        row = await _lock_row(self._conn, event_id)
        return (row["capacity"], row["available"]) if row else None

    async def store(self, event_id: UUID, capacity: int, available: int) -> None:
        await self._conn.execute(
            "UPDATE event_inventory SET capacity = $2, available = $3 WHERE event_id = $1",
            event_id,
            capacity,
            available,
        )

    async def pending(self, event_id: UUID) -> int:
        """How many holds of the event await payment (a checkout change waits for none)."""
        count = await self._conn.fetchval(
            "SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'pending'", event_id
        )
        return int(count)

    async def counts(self, event_ids: list[UUID]) -> dict[UUID, tuple[int, int]]:
        if not event_ids:
            return {}
        rows = await self._conn.fetch(
            "SELECT event_id, capacity, available FROM event_inventory WHERE event_id = ANY($1)",
            event_ids,
        )
        return {row["event_id"]: (row["capacity"], row["available"]) for row in rows}

    async def on_sale(self, limit: int) -> list[tuple[UUID, int, int]]:
        """(event, capacity, available) of up to ``limit`` events not yet ended, soonest first."""
        rows = await self._conn.fetch(
            "SELECT i.event_id, i.capacity, i.available FROM event_inventory i"
            " JOIN events e ON e.id = i.event_id WHERE e.end_at > now()"
            " ORDER BY e.start_at, e.id LIMIT $1",
            limit,
        )
        return [(row["event_id"], row["capacity"], row["available"]) for row in rows]


class PgBookingUnitOfWork(UnitOfWork):
    bookings: PgBookingsRepository

    def __init__(
        self,
        database: Database,
        terms: Callable[[Connection], TermsReader] | None = None,
        *,
        readonly: bool = False,
    ) -> None:
        super().__init__(database, readonly=readonly)
        self._terms = terms

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.bookings = PgBookingsRepository(self.connection)
        return self

    @property
    def events(self) -> TermsReader:
        if self._terms is None:
            raise RuntimeError("this unit of work was built without a reader of event terms")
        return self._terms(self.connection)
