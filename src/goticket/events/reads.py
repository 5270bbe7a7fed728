"""The catalog's read path: ``GET /events/{id}`` and the ``GET /events`` pages answered from a
per-process cache of encoded responses (``kit.cache``), with ETags and 304s.

``availableSpots`` there may be up to ``max_age`` (1 s) old, as the API says; the booking answer
itself is always exact. Bookings send no notification (NOTIFY serialises commits, and bookings
run at thousands per second): they become visible through that bound. Catalog changes (create,
replace, delete) do notify (a trigger on ``events``), and the listener calls ``changed``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec

from goticket.events.domain import EventNotFound
from goticket.events.schemas import EventPage, EventResponse
from goticket.events.service import EventService
from goticket.kit.cache import Fresh, K, Monotonic, ResponseCache, conditional
from goticket.kit.pagination import CursorCodec, Position
from goticket.kit.problems import Reply, domain_reply

CHANNEL = "goticket_events"  # the trigger of migration 0002 notifies here, with the event id
CURSOR_KIND = "events"
JSON = "application/json"
_ENCODER = msgspec.json.Encoder()


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
            max_entries=max_events, max_age=max_age, clock=clock
        )
        self._pages: ResponseCache[PageQuery] = ResponseCache(
            max_entries=max_pages, max_age=max_age, clock=clock
        )

    async def event(self, event_id: UUID, if_none_match: str | None) -> Reply:
        """The one implementation of ``GET /events/{id}``: whoever serves the route calls this."""
        return await _answer(self._events, event_id, self._load_event, if_none_match)

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
        try:
            view = await self._service.get(event_id)
        except EventNotFound as exc:
            # Cached too: a crawler of made-up ids costs one query per id and bound, and the LRU
            # keeps its entries from growing the process.
            reply = domain_reply(exc)
            return Fresh(reply.status, reply.media_type, reply.body)
        return Fresh(200, JSON, _ENCODER.encode(EventResponse.of(view)))

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


async def _answer(
    cache: ResponseCache[K],
    key: K,
    load: Callable[[K], Awaitable[Fresh]],
    if_none_match: str | None,
) -> Reply:
    entry = await cache.get(key, lambda: load(key))
    status, body, headers = conditional(entry, if_none_match, cache.now())
    return Reply(status, body, entry.media_type, headers)
