"""Routes of the catalog: thin — parse, call one service function, render."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, QueryParameter

from goticket.events.domain import UNREPRESENTABLE, ensure_can_create, representable
from goticket.events.reads import CURSOR_KIND, EventReads, PageQuery
from goticket.events.schemas import EventPage, EventRequest, EventResponse
from goticket.events.service import EventService
from goticket.kit.asgi import FastRouter, Receive, Scope, first_header, uuid_route
from goticket.kit.bearer import principal_of
from goticket.kit.bodies import read_json
from goticket.kit.errors import InvalidInput
from goticket.kit.openapi import CURSOR, body, conditional, errors, links, timestamp_query
from goticket.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorCodec
from goticket.kit.problems import Reply
from goticket.kit.routes import with_options

AnyRequest = Request[Any, Any, Any]
IF_NONE_MATCH = b"if-none-match"
EVENT_TEMPLATE = "/events/{event_id}"
_AWARE = Annotated[datetime, msgspec.Meta(tz=True)]


def parse_timestamp(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        # A '+' left unencoded in a query string arrives as a space.
        instant = msgspec.convert(value.replace(" ", "+"), _AWARE)
    except msgspec.ValidationError:
        instant = None
    if instant is None:
        raise InvalidInput.single(field, "not an RFC 3339 timestamp with a UTC offset")
    if not representable(instant):
        raise InvalidInput.single(field, UNREPRESENTABLE)
    return instant


def event_fast_route(reads: EventReads) -> FastRouter:
    """``GET /events/{id}``, the page every fan reloads, on a plain ASGI handler (the canonical
    spelling of the id; any other goes to ``get_event`` below). Plumbing only: both call
    ``EventReads.event``, the one implementation."""

    async def read(event_id: UUID, scope: Scope, _: Receive) -> Reply:
        return await reads.event(event_id, first_header(scope, IF_NONE_MATCH))

    return uuid_route("GET", EVENT_TEMPLATE, read)


def events_router(service: EventService, reads: EventReads, cursors: CursorCodec) -> Router:
    auth: Any = [{"bearerAuth": []}]

    @post(
        "/events",
        status_code=201,
        tags=["events"],
        security=auth,
        opt=body(EventRequest)
        | links(
            201,
            "event_id",
            "$response.body#/id",
            "GET /events/{event_id}",
            "PUT /events/{event_id}",
            "DELETE /events/{event_id}",
            "POST /events/{event_id}/bookings",
            "GET /events/{event_id}/bookings",
        ),
        responses=errors(401, 403),
    )
    async def create_event(request: AnyRequest) -> Response[EventResponse]:
        """Create an event (organizers and admins).

        Besides the schema, rules JSON Schema cannot state, each a 422 naming the field: `endAt`
        must be after `startAt`, `maxPerUser` at most `capacity`, and `startAt` and `endAt` fall
        in the years 1..9999 in UTC (`0001-01-01T00:00:00+01:00` does not)."""
        actor = principal_of(request)
        ensure_can_create(actor)  # 403 before the body is read: a 422 would tell a stranger more
        data = await read_json(request, EventRequest)
        view = await service.create(actor, data.draft())
        # The notification follows within milliseconds; this worker's next read needs no wait.
        reads.forget(view.event.id)
        return Response(
            EventResponse.of(view),
            status_code=201,
            headers={"Location": f"/events/{view.event.id}"},
        )

    @get("/events", tags=["events"], responses=errors(422, with_body=False), opt=conditional())
    async def list_events(
        request: AnyRequest,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, CURSOR] = None,
        starts_after: Annotated[
            str | None,
            timestamp_query("startsAfter", "events with startAt >= this (inclusive)"),
        ] = None,
        starts_before: Annotated[
            str | None,
            timestamp_query("startsBefore", "events with startAt < this (exclusive)"),
        ] = None,
    ) -> Response[EventPage]:
        """Events, soonest first, cursor-paginated; `availableSpots` may be up to 1 s old. A
        `cursor` the server did not issue (for this list) is a 422: JSON Schema can give its
        shape, not its signature."""
        query = PageQuery(
            starts_after=parse_timestamp("startsAfter", starts_after),
            starts_before=parse_timestamp("startsBefore", starts_before),
            after=cursors.decode(CURSOR_KIND, cursor) if cursor is not None else None,
            limit=limit,
        )
        reply = await reads.page(query, first_header(cast(Scope, request.scope), IF_NONE_MATCH))
        return cast(Response[EventPage], reply.response())

    @get(
        "/events/{event_id:uuid}",
        tags=["events"],
        responses=errors(404, with_body=False),
        opt=conditional(),
    )
    async def get_event(request: AnyRequest, event_id: FromPath[UUID]) -> Response[EventResponse]:
        """One event, with the spots still available (up to 1 s old)."""
        reply = await reads.event(event_id, first_header(cast(Scope, request.scope), IF_NONE_MATCH))
        return cast(Response[EventResponse], reply.response())

    @put(
        "/events/{event_id:uuid}",
        tags=["events"],
        security=auth,
        opt=body(EventRequest),
        responses=errors(401, 403, 404, 409, 503),
    )
    async def replace_event(request: AnyRequest, event_id: FromPath[UUID]) -> EventResponse:
        """Replace an event's mutable fields (its organizer or an admin). An optional field
        left out is cleared. As on create, `endAt` must be after `startAt`, `maxPerUser` at most
        `capacity`, and `startAt` and `endAt` in the years 1..9999 in UTC (422).

        409 problems: `capacity-below-booked` for a `capacity` below the spots already booked
        (held spots included; the problem carries `booked`); `checkout-change-with-holds` for a
        `checkout` other than the event's while it has pending bookings (holds awaiting
        payment): leaving `checkout` out asks for `"instant"`. Keeping the checkout, with any
        `holdSeconds`, is allowed then; a new `holdSeconds` applies to holds made after it."""
        actor = principal_of(request)
        data = await read_json(request, EventRequest)
        view = await service.replace(actor, event_id, data.draft())
        reads.forget(event_id)
        return EventResponse.of(view)

    @delete(
        "/events/{event_id:uuid}",
        tags=["events"],
        security=auth,
        responses=errors(401, 403, 404, 409, 503, with_body=False),
    )
    async def delete_event(request: AnyRequest, event_id: FromPath[UUID]) -> None:
        """Delete an event that has no active bookings (its organizer or an admin): 409
        `event-has-bookings` while any booking is confirmed or pending (a hold)."""
        await service.delete(principal_of(request), event_id)
        reads.forget(event_id)

    return Router(
        "/",
        route_handlers=with_options(
            [create_event, list_events, get_event, replace_event, delete_event]
        ),
    )
