"""Routes of the booking context: thin — parse, call one service function, render.

``POST /events/{id}/bookings`` is the stampede's route. ``BookingAnswer`` is its ONE
implementation (auth, body, rules, rendering); the Litestar route (documented in the OpenAPI
document) and a plain ASGI route (which skips the framework's routing, dependency resolution and
response building: about half the CPU of a request) are both plumbing around it. Litestar cannot
host the plain route itself: its ``asgi`` handlers must own their path alone ("ASGI handlers must
have a unique path not shared by other route handlers"), and this path also lists bookings (GET),
and they are left out of the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any, cast
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, HeaderParameter, QueryParameter

from goticket.booking.schemas import BookingPage, BookingRequest, BookingResponse, CheckoutUrl
from goticket.booking.service import BookingService
from goticket.kit.asgi import (
    FastRouter,
    Receive,
    Scope,
    first_header,
    read_body,
    uuid_route,
)
from goticket.kit.bearer import bearer_principal, principal_of
from goticket.kit.bodies import decode_json
from goticket.kit.openapi import CURSOR, body, errors, links
from goticket.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorCodec, Page
from goticket.kit.problems import Reply
from goticket.kit.routes import with_options
from goticket.kit.tokens import TokenCodec

AnyRequest = Request[Any, Any, Any]
BOOK_TEMPLATE = "/events/{event_id}/bookings"
_ENCODER = msgspec.json.Encoder()
MINE = "my-bookings"
OF_EVENT = "event-bookings"


class BookingAnswer:
    """The whole of ``POST /events/{id}/bookings`` after routing: the caller, the body, the
    use case and the answer. What it raises, both routes render with ``error_reply``."""

    def __init__(
        self, service: BookingService, tokens: TokenCodec, checkout_url: CheckoutUrl
    ) -> None:
        self._service = service
        self._tokens = tokens
        self.checkout_url = checkout_url

    async def answer(
        self, scope: Scope, event_id: UUID, read: Callable[[], Awaitable[bytes]]
    ) -> Reply:
        actor = bearer_principal(first_header(scope, b"authorization"), self._tokens)
        content_type = first_header(scope, b"content-type")
        data = decode_json(await read(), content_type, BookingRequest, optional=True)
        key = first_header(scope, b"idempotency-key")
        booking = await self._service.book(actor, event_id, data.quantity, key)
        return Reply(
            201,
            _ENCODER.encode(BookingResponse.of(booking, self.checkout_url)),
            headers={"location": f"/bookings/{booking.id}"},
        )

    def fast_route(self) -> FastRouter:
        """The canonical form of the path on a plain ASGI handler; any other spelling goes
        through the framework's route (which answers the same, by calling ``answer`` too)."""

        async def book(event_id: UUID, scope: Scope, receive: Receive) -> Reply:
            return await self.answer(scope, event_id, partial(read_body, receive))

        return uuid_route("POST", BOOK_TEMPLATE, book)


def booking_router(service: BookingService, booking: BookingAnswer, cursors: CursorCodec) -> Router:
    auth: Any = [{"bearerAuth": []}]
    render = partial(BookingResponse.of, checkout_url=booking.checkout_url)

    def page(result: Page[Any], kind: str) -> BookingPage:
        return BookingPage(
            [render(b) for b in result.items],
            cursors.encode(kind, result.next) if result.next else None,
        )

    @post(
        BOOK_TEMPLATE.replace("{event_id}", "{event_id:uuid}"),
        status_code=201,
        tags=["bookings"],
        security=auth,
        opt=body(BookingRequest, required=False)
        | links(
            201,
            "booking_id",
            "$response.body#/id",
            "GET /bookings/{booking_id}",
            "POST /bookings/{booking_id}/cancel",
        ),
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
                # Not starting or ending with a space: HTTP strips those before we see the key.
                # In the schema only: the booking rules check the key on both routes alike.
                schema_extra={"pattern": "^[!-~]([ -~]{0,253}[!-~])?$"},
            ),
        ] = None,
    ) -> Response[BookingResponse]:
        """Book spots for an event. 201 only once the booking is durably committed.

        On an event with `checkout: "payment"` the booking is a hold: `status: "pending"`,
        `expiresAt` (now + the event's `holdSeconds`) and a `payment` to make at its
        `checkoutUrl`; its spots leave `availableSpots` at once and come back if it expires
        unpaid. On an instant event it is `confirmed` at once, with its tickets.

        A retry with the same `Idempotency-Key` answers the first booking again; the key used
        before for another event or quantity is a 422 (a rule of state, not of shape).

        409 problems: `event-ended`; `sales-not-started` before the event's `salesStartAt`
        (the problem carries `salesStartAt`); `per-user-limit` (with `limit`); `sold-out`
        (with `available`), in that order."""
        # The plain ASGI route (``BookingAnswer.fast_route``, dispatched in front of Litestar)
        # answers almost every booking; this one takes what its pattern does not match (e.g. an
        # id without hyphens) and describes the route in the OpenAPI document (the header
        # parameter is documentation: ``answer`` reads it from the scope, as the fast route does).
        # Both call ``booking.answer``: one path.
        reply = await booking.answer(cast(Scope, request.scope), event_id, request.body)
        return cast(Response[BookingResponse], reply.response())

    @get(
        "/bookings/{booking_id:uuid}",
        tags=["bookings"],
        security=auth,
        responses=errors(401, 404, with_body=False),
    )
    async def get_booking(request: AnyRequest, booking_id: FromPath[UUID]) -> BookingResponse:
        """One booking: its owner, the event's organizer or an admin; 404 for anyone else."""
        return render(await service.get(principal_of(request), booking_id))

    @post(
        "/bookings/{booking_id:uuid}/cancel",
        status_code=200,
        tags=["bookings"],
        security=auth,
        responses=errors(401, 404, 503, with_body=False),
    )
    async def cancel_booking(request: AnyRequest, booking_id: FromPath[UUID]) -> BookingResponse:
        """Cancel a hold or a confirmed booking; its spots go back on sale. A paid booking is
        refunded (`payment.status: "refunded"`) and its tickets are void. Cancelling a booking
        that is no longer pending or confirmed (cancelled, expired) changes nothing."""
        return render(await service.cancel(principal_of(request), booking_id))

    @get(
        "/me/bookings",
        tags=["bookings"],
        security=auth,
        responses=errors(401, 422, with_body=False),
    )
    async def my_bookings(
        request: AnyRequest,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, CURSOR] = None,
    ) -> BookingPage:
        """The caller's bookings, newest first. A `cursor` the server did not issue (for this
        list) is a 422: JSON Schema can give its shape, not its signature."""
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
        cursor: Annotated[str | None, CURSOR] = None,
    ) -> BookingPage:
        """An event's bookings, newest first (its organizer or an admin). A `cursor` the server
        did not issue (for this list) is a 422."""
        actor = principal_of(request)
        after = cursors.decode(OF_EVENT, cursor) if cursor is not None else None
        return page(await service.list_for_event(actor, event_id, after, limit), OF_EVENT)

    return Router(
        "/",
        route_handlers=with_options(
            [book, get_booking, cancel_booking, my_bookings, event_bookings]
        ),
    )
