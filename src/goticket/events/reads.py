"""The catalog's read path: ``GET /events/{id}`` and the ``GET /events`` pages answered from a
per-process cache of encoded responses (``kit.cache``), with ETags and 304s.

``availableSpots`` there may be up to ``max_age`` (1 s) old, as the API says; the booking answer
itself is always exact. Bookings send no notification (NOTIFY serialises commits, and bookings
run at thousands per second): they become visible through that bound. Catalog changes (create,
replace, delete) do notify (a trigger on ``events``), and the listener calls ``changed``.

Events in demand stay fresh through one batched check, several times per bound, of all the
events read lately (``refresh``), rather than a load per event and bound; pages (few, hot) are
reloaded one by one. The database is never read per request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec

from goticket.events.domain import EventNotFound, EventView
from goticket.events.schemas import EventPage, EventResponse
from goticket.events.service import EventService
from goticket.kit.cache import Fresh, K, Monotonic, ResponseCache, conditional
from goticket.kit.logging import get_logger
from goticket.kit.pagination import CursorCodec, Position
from goticket.kit.problems import Reply, domain_reply

CHANNEL = "goticket_events"  # the trigger of migration 0002 notifies here, with the event id
CURSOR_KIND = "events"
# Checks per bound: one may run late (a busy event loop) and the entries still hold.
CHECKS_PER_BOUND = 4
JSON = "application/json"
_ENCODER = msgspec.json.Encoder()
log = get_logger("goticket.events.reads")


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A validated ``GET /events`` query: the key of its cached page (bad input never gets here)."""

    limit: int
    after: Position | None
    starts_after: datetime | None
    starts_before: datetime | None


class EventReads:
    def __init__(
        self,
        service: EventService,
        cursors: CursorCodec,
        *,
        max_events: int,
        max_pages: int,
        max_age: float,
        clock: Monotonic = time.monotonic,
    ) -> None:
        self._service = service
        self._cursors = cursors
        self._events: ResponseCache[UUID] = ResponseCache(
            max_entries=max_events, max_age=max_age, clock=clock, refresh_ahead=False
        )
        self._pages: ResponseCache[PageQuery] = ResponseCache(
            max_entries=max_pages, max_age=max_age, clock=clock
        )
        self._max_age = max_age
        self._read: set[UUID] = set()  # events read since the last refresh
        self._read_before: deque[set[UUID]] = deque(maxlen=CHECKS_PER_BOUND - 1)  # and before
        self._batch: dict[UUID, asyncio.Future[Fresh]] = {}  # loads of this turn of the loop
        self._batches: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references

    async def event(self, event_id: UUID, if_none_match: str | None) -> Reply:
        """The one implementation of ``GET /events/{id}``: whoever serves the route calls this."""
        self._read.add(event_id)
        return await _answer(self._events, event_id, self._load_event, if_none_match)

    def held(self, event_id: UUID) -> EventView | None:
        """The event as this process holds it, if younger than the bound (no load, no use):
        what the booking path checks the sale window against without a query. An edit drops it
        (the notification), so it is that fresh; ``None`` when not held or not found."""
        entry = self._events.fresh(event_id)
        return entry.source if entry is not None and isinstance(entry.source, EventView) else None

    async def refresh(self) -> None:
        """Check every event read lately against the database in one snapshot (two queries for
        any number of events): a changed stock is re-encoded, an edited or deleted event is
        dropped, and every entry checked counts as read from the database now. It is also the
        safety net under the notifications: an edit whose notification was lost is found here."""
        # The events read during the last bound: one read a second keeps an event fresh. With
        # the last period only, an event read a little less often than each period (most of a
        # thousand events in demand) would miss checks and load again.
        read = self._read.union(*self._read_before)
        self._read_before.append(self._read)
        self._read = set()
        views = {
            event_id: entry.source
            for event_id in read
            if (entry := self._events.peek(event_id)) is not None
            and isinstance(entry.source, EventView)
        }
        if not views:
            return
        checked_at = self._events.now()
        versions = await self._service.versions(list(views))
        for event_id, view in views.items():
            version = versions.get(event_id)
            if version is None or version[0] != view.event.updated_at:
                self.forget(event_id)  # deleted or edited: the next read loads it
                continue
            if version[1] == view.stock:  # the same bytes: renewed, not encoded again
                self._events.renew(event_id, checked_at)
            else:
                self._events.put(
                    event_id, _event_fresh(EventView(view.event, version[1])), checked_at
                )

    async def refresh_every_period(self) -> None:
        if self._max_age <= 0:
            return  # nothing is reused: nothing to keep fresh
        while True:
            await asyncio.sleep(self._max_age / CHECKS_PER_BOUND)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 -- entries then age out and load themselves
                log.warning("read cache refresh failed", error=repr(exc))

    async def page(self, query: PageQuery, if_none_match: str | None) -> Reply:
        return await _answer(self._pages, query, self._load_page, if_none_match)

    def changed(self, payload: str) -> None:
        """The notification of a catalog change: ``payload`` is the event id."""
        try:
            event_id = UUID(payload)
        except ValueError:
            self.reset()
            return
        self.forget(event_id)

    def forget(self, event_id: UUID) -> None:
        """An event was created, replaced or deleted: its entry goes, and every page (any page
        may list it, or should now)."""
        self._events.invalidate(event_id)
        self._pages.clear()

    def reset(self) -> None:
        """Forget everything: notifications may have been missed (the listener reconnected)."""
        self._events.clear()
        self._pages.clear()

    async def _load_event(self, event_id: UUID) -> Fresh:
        # Loads that start in the same turn of the event loop share one query: after a start or
        # a clear, a thousand events in demand cost a few dozen queries, not two thousand.
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._load_batch)
        waiter = self._batch.get(event_id)
        if waiter is None:
            waiter = self._batch[event_id] = asyncio.get_running_loop().create_future()
        return await waiter

    def _load_batch(self) -> None:
        batch, self._batch = self._batch, {}
        task = asyncio.create_task(self._answer_batch(batch))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _answer_batch(self, batch: dict[UUID, asyncio.Future[Fresh]]) -> None:
        try:
            views = await self._service.get_many(list(batch))
        except Exception as exc:  # noqa: BLE001 -- each waiter's request answers it (a 503)
            for waiter in batch.values():
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for event_id, waiter in batch.items():
            view = views.get(event_id)
            if not waiter.done():
                waiter.set_result(_event_fresh(view) if view is not None else _not_found())

    async def _load_page(self, query: PageQuery) -> Fresh:
        page = await self._service.list(
            starts_after=query.starts_after,
            starts_before=query.starts_before,
            after=query.after,
            limit=query.limit,
        )
        body = EventPage(
            [EventResponse.of(view) for view in page.items],
            self._cursors.encode(CURSOR_KIND, page.next) if page.next else None,
        )
        return Fresh(200, JSON, _ENCODER.encode(body))


def _not_found() -> Fresh:
    # Cached too: a crawler of made-up ids costs a share of a query per id and bound, and the
    # LRU keeps its entries from growing the process.
    reply = domain_reply(EventNotFound("no such event"))
    return Fresh(reply.status, reply.media_type, reply.body)


def _event_fresh(view: EventView) -> Fresh:
    return Fresh(200, JSON, _ENCODER.encode(EventResponse.of(view)), view)


async def _answer(
    cache: ResponseCache[K],
    key: K,
    load: Callable[[K], Awaitable[Fresh]],
    if_none_match: str | None,
) -> Reply:
    entry = await cache.get(key, lambda: load(key))
    status, body, headers = conditional(entry, if_none_match, cache.now())
    return Reply(status, body, entry.media_type, headers)
