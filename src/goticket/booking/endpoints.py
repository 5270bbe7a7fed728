"""Routes of the booking context: thin — parse, call one service function, render."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, HeaderParameter, QueryParameter

from goticket.booking.schemas import BookingPage, BookingRequest, BookingResponse
from goticket.booking.service import BookingService
from goticket.kit.http import (
    ASGIApp,
    ClientGone,
    Receive,
    Scope,
    Send,
    bearer_principal,
    decode_json,
    principal_of,
    read_body,
    read_json,
    respond,
    respond_error,
)
from goticket.kit.openapi import body, errors
from goticket.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorCodec, Page
from goticket.kit.tokens import TokenCodec

AnyRequest = Request[Any, Any, Any]
BOOK_TEMPLATE = "/events/{event_id}/bookings"
_BOOK_PATH = re.compile(
    r"/events/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/bookings"
)
_ENCODER = msgspec.json.Encoder()
MINE = "my-bookings"
OF_EVENT = "event-bookings"


def booking_router(service: BookingService, cursors: CursorCodec) -> Router:
    auth: Any = [{"bearerAuth": []}]

    def page(result: Page[Any], kind: str) -> BookingPage:
        return BookingPage(
            [BookingResponse.of(b) for b in result.items],
            cursors.encode(kind, result.next) if result.next else None,
        )

    @post(
        "/events/{event_id:uuid}/bookings",
        status_code=201,
        tags=["bookings"],
        security=auth,
        opt=body(BookingRequest, required=False),
        responses=errors(401, 404, 409, 503),
    )
    async def book(
        request: AnyRequest,
        event_id: FromPath[UUID],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                description="1..255 printable ASCII characters; a retry with it books nothing more",
            ),
        ] = None,
    ) -> Response[BookingResponse]:
        """Book spots for an event. 201 only once the booking is durably committed."""
        actor = principal_of(request)
        data = await read_json(request, BookingRequest, optional=True)
        booking = await service.book(actor, event_id, data.quantity, idempotency_key)
        return Response(
            BookingResponse.of(booking),
            status_code=201,
            headers={"Location": f"/bookings/{booking.id}"},
        )

    @get(
        "/bookings/{booking_id:uuid}",
        tags=["bookings"],
        security=auth,
        responses=errors(401, 404, with_body=False),
    )
    async def get_booking(request: AnyRequest, booking_id: FromPath[UUID]) -> BookingResponse:
        """One booking: its owner, the event's organizer or an admin; 404 for anyone else."""
        return BookingResponse.of(await service.get(principal_of(request), booking_id))

    @post(
        "/bookings/{booking_id:uuid}/cancel",
        status_code=200,
        tags=["bookings"],
        security=auth,
        responses=errors(401, 404, 503, with_body=False),
    )
    async def cancel_booking(request: AnyRequest, booking_id: FromPath[UUID]) -> BookingResponse:
        """Cancel a booking; its spots go back on sale. Cancelling again changes nothing."""
        return BookingResponse.of(await service.cancel(principal_of(request), booking_id))

    @get(
        "/me/bookings",
        tags=["bookings"],
        security=auth,
        responses=errors(401, 422, with_body=False),
    )
    async def my_bookings(
        request: AnyRequest,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None, QueryParameter(description="nextCursor of the previous page")
        ] = None,
    ) -> BookingPage:
        """The caller's bookings, newest first."""
        actor = principal_of(request)
        after = cursors.decode(MINE, cursor) if cursor is not None else None
        return page(await service.list_mine(actor, after, limit), MINE)

    @get(
        "/events/{event_id:uuid}/bookings",
        tags=["bookings"],
        security=auth,
        responses=errors(401, 403, 404, 422, with_body=False),
    )
    async def event_bookings(
        request: AnyRequest,
        event_id: FromPath[UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None, QueryParameter(description="nextCursor of the previous page")
        ] = None,
    ) -> BookingPage:
        """An event's bookings, newest first (its organizer or an admin)."""
        actor = principal_of(request)
        after = cursors.decode(OF_EVENT, cursor) if cursor is not None else None
        return page(await service.list_for_event(actor, event_id, after, limit), OF_EVENT)

    return Router(
        "/",
        route_handlers=[book, get_booking, cancel_booking, my_bookings, event_bookings],
    )


def booking_fast_route(
    service: BookingService, tokens: TokenCodec
) -> Callable[[Scope], ASGIApp | None]:
    """``POST /events/{id}/bookings`` as a plain ASGI handler: the stampede's one route skips the
    framework's routing, dependency resolution and response building (about half the CPU of a
    request). It answers exactly what the route above answers; any other request goes there."""

    def route(scope: Scope) -> ASGIApp | None:
        if scope["method"] != "POST":
            return None
        match = _BOOK_PATH.fullmatch(scope["path"])
        if match is None:
            return None
        scope["path_template"] = BOOK_TEMPLATE
        event_id = UUID(match.group(1))

        async def book(scope: Scope, receive: Receive, send: Send) -> None:
            authorization = content_type = key = None
            for name, value in scope["headers"]:
                if name == b"authorization" and authorization is None:
                    authorization = value.decode("latin-1")
                elif name == b"content-type" and content_type is None:
                    content_type = value.decode("latin-1")
                elif name == b"idempotency-key" and key is None:
                    key = value.decode("latin-1")
            try:
                actor = bearer_principal(authorization, tokens)
                body = await read_body(receive)
                data = decode_json(body, content_type, BookingRequest, optional=True)
                booking = await service.book(actor, event_id, data.quantity, key)
            except ClientGone:
                raise
            except Exception as exc:  # noqa: BLE001 - answered like the exception handlers do
                await respond_error(send, scope, exc)
                return
            payload = _ENCODER.encode(BookingResponse.of(booking))
            await respond(
                send, 201, "application/json", payload, {"location": f"/bookings/{booking.id}"}
            )

        return book

    return route
