"""SQL for tickets, and the sales figures of an event (the door's read model: it reads the
bookings and the inventory too, in one query)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Self
from uuid import UUID

import asyncpg

from goticket.kit.db import Connection, Database, UnitOfWork
from goticket.kit.errors import Unavailable
from goticket.kit.rows import columns, from_row
from goticket.tickets.domain import Ticket, TicketState, TicketStatus
from goticket.tickets.ports import Sales

_COLUMNS = columns(Ticket)
# A row lock held past lock_timeout (a long batch), or a cycle with a booking's cancellation
# voiding its tickets: nothing was written, and the scanner may retry (503 + Retry-After).
_CONTENDED = (
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.DeadlockDetectedError,
)


def _ticket(row: asyncpg.Record) -> Ticket:
    return from_row(Ticket, row, status=TicketStatus(row["status"]))


class PgTicketsRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def of_booking(self, booking_id: UUID) -> list[Ticket]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM tickets WHERE booking_id = $1 ORDER BY seq", booking_id
        )
        return [_ticket(row) for row in rows]

    async def get(self, ticket_id: UUID) -> Ticket | None:
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM tickets WHERE id = $1", ticket_id)
        return _ticket(row) if row else None

    async def check_in(
        self, scans: Sequence[tuple[UUID, UUID]], at: datetime, *, wait: bool = False
    ) -> dict[UUID, Ticket]:
        # The condition decides: of concurrent scans of one ticket, the first to take the row
        # lock updates it; the others re-read it as used and update nothing. The rows are locked
        # in id order first, as every multi-row locker of tickets takes them. A row another
        # writer holds (a sync, a cancel) is skipped unless ``wait``: one busy ticket must not
        # hold up, or fail, the whole batch of scans.
        try:
            rows = await self._conn.fetch(
                f"""WITH scan AS (
                        SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS s(id, event_id)
                    ), locked AS (
                        SELECT t.id FROM tickets t JOIN scan s USING (id)
                        WHERE t.event_id = s.event_id AND t.status = 'valid'
                        ORDER BY t.id FOR UPDATE OF t{"" if wait else " SKIP LOCKED"}
                    )
                    UPDATE tickets SET status = 'used', checked_in_at = $3
                    WHERE id IN (SELECT id FROM locked) AND status = 'valid'
                    RETURNING {_COLUMNS}""",
                [ticket_id for ticket_id, _ in scans],
                [event_id for _, event_id in scans],
                at,
            )
        except _CONTENDED as exc:
            raise Unavailable("these tickets are being checked in right now; retry") from exc
        tickets = [_ticket(row) for row in rows]
        return {ticket.id: ticket for ticket in tickets}

    async def lock(self, event_id: UUID, ticket_ids: Sequence[UUID]) -> dict[UUID, TicketState]:
        # Locked in id order (every multi-row locker uses it): two batches never wait in a
        # cycle. FOR UPDATE reads the latest committed version, so an online check-in that
        # committed meanwhile is seen.
        try:
            rows = await self._conn.fetch(
                """SELECT id, status, checked_in_at FROM tickets
                   WHERE id = ANY($1::uuid[]) AND event_id = $2
                   ORDER BY id FOR UPDATE""",
                list(ticket_ids),
                event_id,
            )
        except _CONTENDED as exc:
            raise Unavailable("these tickets are being checked in right now; retry") from exc
        return {
            row["id"]: TicketState(TicketStatus(row["status"]), row["checked_in_at"])
            for row in rows
        }

    async def check_in_many(self, check_ins: Mapping[UUID, datetime]) -> None:
        if not check_ins:
            return
        await self._conn.execute(
            """UPDATE tickets AS t SET status = 'used', checked_in_at = c.at
               FROM unnest($1::uuid[], $2::timestamptz[]) AS c(id, at)
               WHERE t.id = c.id AND t.status <> 'void'""",
            list(check_ins),
            list(check_ins.values()),
        )

    async def sales(self, event_id: UUID) -> Sales | None:
        # Revenue counts the bookings in the event's currency: a booking made before the
        # currency was changed is in another one and cannot be summed with these.
        row = await self._conn.fetchrow(
            """SELECT i.capacity, i.available, e.currency,
                      coalesce(sum(b.quantity) FILTER (WHERE b.status = 'pending'), 0) AS pending,
                      coalesce(sum(b.quantity) FILTER (WHERE b.status = 'confirmed'), 0)
                          AS confirmed,
                      coalesce(sum(b.quantity) FILTER (WHERE b.status = 'cancelled'), 0)
                          AS cancelled,
                      coalesce(sum(b.quantity) FILTER (WHERE b.status = 'expired'), 0) AS expired,
                      coalesce(sum(b.total_price) FILTER (
                          WHERE b.status = 'confirmed' AND b.currency = e.currency), 0) AS revenue,
                      (SELECT count(*) FROM tickets t
                       WHERE t.event_id = i.event_id AND t.status = 'used') AS checked_in
               FROM event_inventory i
               JOIN events e ON e.id = i.event_id
               LEFT JOIN bookings b ON b.event_id = i.event_id
               WHERE i.event_id = $1
               GROUP BY i.event_id, i.capacity, i.available, e.currency""",
            event_id,
        )
        if row is None:
            return None
        return Sales(
            capacity=row["capacity"],
            available=row["available"],
            pending=int(row["pending"]),
            confirmed=int(row["confirmed"]),
            cancelled=int(row["cancelled"]),
            expired=int(row["expired"]),
            checked_in=int(row["checked_in"]),
            revenue=int(row["revenue"]),
            currency=row["currency"],
        )


class PgTicketsUnitOfWork(UnitOfWork):
    tickets: PgTicketsRepository

    def __init__(
        self, database: Database, *, readonly: bool = False, autocommit: bool = False
    ) -> None:
        super().__init__(database, readonly=readonly, autocommit=autocommit)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.tickets = PgTicketsRepository(self.connection)
        return self
