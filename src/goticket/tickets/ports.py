"""The tickets context's ports: its storage, and what it needs from the other contexts (wired by
the composition root, ``app.py``: tickets never imports booking or events)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from goticket.kit.auth import Principal
from goticket.tickets.domain import Ticket, TicketState

# Raises the booking context's own 404 when ``actor`` may not see the booking (or there is none):
# the booking's visibility rule stays in one place.
BookingAccess = Callable[[Principal, UUID], Awaitable[None]]
# The organizer of an event, None when there is no such event.
EventOrganizers = Callable[[UUID], Awaitable[UUID | None]]


@dataclass(frozen=True, slots=True)
class Sales:
    """An event's figures in spots (Σ quantity per booking status), its used tickets, and the
    revenue of its confirmed bookings in the event's currency."""

    capacity: int
    available: int
    pending: int
    confirmed: int
    cancelled: int
    expired: int
    checked_in: int
    revenue: int
    currency: str


class TicketsRepository(Protocol):
    async def of_booking(self, booking_id: UUID) -> list[Ticket]: ...
    async def get(self, ticket_id: UUID) -> Ticket | None: ...

    async def check_in(
        self, scans: Sequence[tuple[UUID, UUID]], at: datetime, *, wait: bool = False
    ) -> dict[UUID, Ticket]:
        """Mark the valid ones of these (ticket, event) tickets used at ``at``, in one
        conditional statement; the tickets it used, by id (a ticket not valid is left out, and
        unless ``wait`` so is one whose row another transaction holds)."""

    async def lock(self, event_id: UUID, ticket_ids: Sequence[UUID]) -> dict[UUID, TicketState]:
        """The event's tickets among ``ticket_ids``, locked for this transaction (id order)."""

    async def check_in_many(self, check_ins: Mapping[UUID, datetime]) -> None:
        """Store these tickets as used at these times, in one statement."""

    async def sales(self, event_id: UUID) -> Sales | None: ...


class TicketsUnitOfWork(Protocol):
    @property
    def tickets(self) -> TicketsRepository: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[..., AbstractAsyncContextManager[TicketsUnitOfWork]]


class CheckInMetrics(Protocol):
    def checked_in(self, outcome: str, via: str, count: int = 1) -> None:
        """Scans decided, by outcome, ``via`` "scan" (online) or "sync" (an offline batch)."""


class NoMetrics:
    def checked_in(self, outcome: str, via: str, count: int = 1) -> None:
        return None
