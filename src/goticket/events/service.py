"""Catalog use cases: create, read, list, replace and delete events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol
from uuid import UUID

from goticket.events.domain import (
    Event,
    EventDraft,
    EventNotFound,
    EventView,
    InventoryPort,
    Stock,
    ensure_can_create,
    ensure_can_delete,
    ensure_can_manage,
    ensure_checkout_can_change,
)
from goticket.kit.auth import Principal
from goticket.kit.clock import Clock
from goticket.kit.pagination import Page, Position


class EventsRepository(Protocol):
    async def add(self, event: Event) -> None: ...
    async def get(self, event_id: UUID) -> Event | None: ...
    async def get_many(self, event_ids: Sequence[UUID]) -> list[Event]: ...
    async def updated(self, event_ids: Sequence[UUID]) -> dict[UUID, datetime]: ...
    async def update(self, event: Event) -> bool: ...
    async def delete(self, event_id: UUID) -> None: ...
    async def list(
        self,
        *,
        starts_after: datetime | None,
        starts_before: datetime | None,
        after: Position | None,
        limit: int,
    ) -> list[Event]: ...


class EventsUnitOfWork(Protocol):
    @property
    def events(self) -> EventsRepository: ...

    @property
    def inventory(self) -> InventoryPort: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[..., AbstractAsyncContextManager[EventsUnitOfWork]]


class EventService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, actor: Principal, draft: EventDraft) -> EventView:
        ensure_can_create(actor)
        event = Event.create(uuid.uuid4(), actor.user_id, draft, self._clock.now())
        async with self._uow() as uow:
            await uow.events.add(event)
            await uow.inventory.create(event.id, draft.capacity)
            await uow.commit()
        return EventView(event, Stock(draft.capacity, draft.capacity))

    async def get(self, event_id: UUID) -> EventView:
        view = (await self.get_many([event_id])).get(event_id)
        if view is None:
            raise EventNotFound("no such event")
        return view

    async def get_many(self, event_ids: list[UUID]) -> dict[UUID, EventView]:
        """The events that exist among ``event_ids``, with their stock, in two queries."""
        async with self._uow(readonly=True) as uow:
            events = await uow.events.get_many(event_ids)
            counts = await uow.inventory.counts(event_ids)
        return {e.id: EventView(e, Stock(*counts[e.id])) for e in events if e.id in counts}

    async def versions(self, event_ids: list[UUID]) -> dict[UUID, tuple[datetime, Stock]]:
        """Each existing event's last change and stock: what a cached copy is checked against."""
        async with self._uow(readonly=True) as uow:
            updated = await uow.events.updated(event_ids)
            counts = await uow.inventory.counts(event_ids)
        return {i: (at, Stock(*counts[i])) for i, at in updated.items() if i in counts}

    async def find(self, event_id: UUID) -> Event | None:
        async with self._uow(readonly=True) as uow:
            return await uow.events.get(event_id)

    async def list(
        self,
        *,
        starts_after: datetime | None = None,
        starts_before: datetime | None = None,
        after: Position | None = None,
        limit: int = 20,
    ) -> Page[EventView]:
        async with self._uow(readonly=True) as uow:
            events = await uow.events.list(
                starts_after=starts_after, starts_before=starts_before, after=after, limit=limit + 1
            )
            counts = await uow.inventory.counts([e.id for e in events[:limit]])
        views = [EventView(e, Stock(*counts[e.id])) for e in events[:limit] if e.id in counts]
        last = events[limit - 1] if len(events) > limit else None
        return Page(views, Position(last.start_at, last.id) if last else None)

    async def replace(self, actor: Principal, event_id: UUID, draft: EventDraft) -> EventView:
        async with self._uow() as uow:
            event = await uow.events.get(event_id)
            if event is None:
                raise EventNotFound("no such event")
            ensure_can_manage(actor, event)
            draft.check()  # a 422 before any lock is taken
            # Every writer locks the inventory row first (bookings do too): one lock order, no
            # deadlocks, and neither the booked count nor the pending holds can move while
            # capacity or checkout changes.
            counts = await uow.inventory.lock(event_id)
            if counts is None:
                raise EventNotFound("no such event")
            # Read again under the lock: a replace that committed since the read above may have
            # changed checkout, and holds made since under it must be seen.
            event = await uow.events.get(event_id)
            if event is None:
                raise EventNotFound("no such event")
            if draft.checkout is not event.checkout:
                ensure_checkout_can_change(event, draft, await uow.inventory.pending(event_id))
            updated = event.replaced(draft, self._clock.now())
            stock = Stock(*counts).resized(draft.capacity)
            if not await uow.events.update(updated):
                raise EventNotFound("no such event")
            await uow.inventory.store(event_id, stock.capacity, stock.available)
            await uow.commit()
        return EventView(updated, stock)

    async def delete(self, actor: Principal, event_id: UUID) -> None:
        async with self._uow() as uow:
            event = await uow.events.get(event_id)
            if event is None:
                raise EventNotFound("no such event")
            ensure_can_manage(actor, event)
            counts = await uow.inventory.lock(event_id)
            if counts is None:
                raise EventNotFound("no such event")
            ensure_can_delete(Stock(*counts))
            await uow.events.delete(event_id)
            await uow.commit()
