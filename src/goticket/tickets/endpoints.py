"""Routes of the tickets context: thin — parse, call one service function, render."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast
from uuid import UUID

import msgspec
import segno
from litestar import Request, Response, Router, get, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from goticket.kit.asgi import FastRouter, Receive, Scope, first_header, read_body, uuid_route
from goticket.kit.bearer import bearer_principal, principal_of
from goticket.kit.bodies import decode_json, read_json
from goticket.kit.openapi import body, errors
from goticket.kit.problems import PROBLEM_JSON, Problem, Reply
from goticket.kit.routes import with_options
from goticket.kit.tokens import TokenCodec
from goticket.tickets.domain import MAX_CODE_LENGTH
from goticket.tickets.schemas import (
    MAX_SCANS,
    CheckInRequest,
    CheckInResponse,
    Jwks,
    SalesResponse,
    ScanResultResponse,
    SyncRequest,
    SyncResponse,
    TicketList,
    TicketResponse,
)
from goticket.tickets.service import TicketService, TicketSigning

AnyRequest = Request[Any, Any, Any]
CHECK_IN_TEMPLATE = "/events/{event_id}/checkins"
_ENCODER = msgspec.json.Encoder()
# Scanners may keep the keys this long; one that meets a code of an unknown kid fetches again.
CACHE_CONTROL = "public, max-age=300"
SVG = "image/svg+xml"
# A sync batch of MAX_SCANS codes of the longest accepted length, with their times: the one
# body allowed past the 64 KiB every other route keeps.
SYNC_MAX_BODY_BYTES = MAX_SCANS * (MAX_CODE_LENGTH + 128)
SYNC_DESCRIPTION = f"""The scans of an offline scanner, 1..{MAX_SCANS} (the event's organizer or
an admin), decided in one transaction: one result per scan, in order. A ticket's `checkedInAt` is
the earliest time seen for it, a `scannedAt` or an online check-in, even when the earlier scan
arrives later; a `scannedAt` ahead of the server's clock counts as the server's time. A ticket not
used before the request is `checked-in` on its earliest scan of the batch; every other scan of a
used ticket is `already-checked-in`; a void ticket's scan is `void`; a code that does not verify
is `invalid`, one of another event `wrong-event` (their `checkedInAt` is null). Sending the same
batch again changes nothing. The body may be up to {SYNC_MAX_BODY_BYTES} bytes (every other
route: 64 KiB)."""


def qr_svg(code: str) -> bytes:
    """The code as a QR code (error correction M, the standard 4-module quiet zone)."""
    out = io.BytesIO()
    segno.make(code, error="m", micro=False).save(out, kind="svg", scale=4, border=4)
    return out.getvalue()


class CheckInAnswer:
    """The whole of ``POST /events/{id}/checkins`` after routing: the caller, the body, the
    scan and the answer. A stadium's gates send thousands of scans a second: like the booking
    route, a plain ASGI route serves the canonical path with it (no framework routing or
    response building), and the Litestar route (every other spelling, and the OpenAPI
    document) calls it too. What it raises, both render with ``error_reply``."""

    def __init__(self, service: TicketService, tokens: TokenCodec) -> None:
        self._service = service
        self._tokens = tokens

    async def answer(
        self, scope: Scope, event_id: UUID, read: Callable[[], Awaitable[bytes]]
    ) -> Reply:
        actor = bearer_principal(first_header(scope, b"authorization"), self._tokens)
        data = decode_json(await read(), first_header(scope, b"content-type"), CheckInRequest)
        shown = await self._service.check_in(actor, event_id, data.code)
        answer = CheckInResponse(TicketResponse.of(shown), first_check_in=True)
        return Reply(200, _ENCODER.encode(answer))

    def fast_route(self) -> FastRouter:
        async def scan(event_id: UUID, scope: Scope, receive: Receive) -> Reply:
            return await self.answer(scope, event_id, partial(read_body, receive))

        return uuid_route("POST", CHECK_IN_TEMPLATE, scan)


def tickets_router(
    signing: TicketSigning, service: TicketService, check_in: CheckInAnswer
) -> Router:
    keys = msgspec.convert({"keys": signing.public_jwks()}, Jwks)
    auth: Any = [{"bearerAuth": []}]

    @get(
        "/.well-known/goticket-keys.json",
        tags=["tickets"],
        response_headers=[
            ResponseHeader(name="Cache-Control", value=CACHE_CONTROL, description="cacheable")
        ],
        sync_to_thread=False,
    )
    def ticket_keys() -> Jwks:
        """The public keys that sign ticket codes, as a JWK Set: anyone may verify a code
        offline. A code's payload names its key by `kid`; keys rotate by `kid`, and old keys
        stay published while their tickets may be used."""
        return keys

    handlers = _ticket_handlers(service, check_in, auth)
    return Router("", route_handlers=with_options([ticket_keys, *handlers]))


def _ticket_handlers(service: TicketService, scan: CheckInAnswer, auth: Any) -> list[Any]:
    @get(
        "/bookings/{booking_id:uuid}/tickets",
        tags=["tickets"],
        security=auth,
        responses=errors(401, 404, with_body=False),
    )
    async def booking_tickets(request: AnyRequest, booking_id: FromPath[UUID]) -> TicketList:
        """A booking's tickets, for whoever may see the booking (its owner, the event's
        organizer, an admin); 404 for anyone else. A confirmed booking of quantity N has N
        tickets; a pending or expired one none; a cancelled one's are `void`. Each `code` is
        signed with the current key when shown."""
        shown = await service.of_booking(principal_of(request), booking_id)
        return TicketList([TicketResponse.of(ticket) for ticket in shown])

    @get(
        "/tickets/{ticket_id:uuid}/qr.svg",
        tags=["tickets"],
        security=auth,
        media_type=SVG,
        responses=errors(401, 404, with_body=False),
        response_description="The ticket's code as a QR code (SVG)",
    )
    async def ticket_qr(request: AnyRequest, ticket_id: FromPath[UUID]) -> Response[bytes]:
        """A ticket's code as a QR code, for whoever may see its booking; 404 for anyone else."""
        code = await service.code(principal_of(request), ticket_id)
        return Response(qr_svg(code), media_type=SVG)

    @post(
        CHECK_IN_TEMPLATE.replace("{event_id}", "{event_id:uuid}"),
        status_code=200,
        tags=["tickets"],
        security=auth,
        opt=body(CheckInRequest),
        responses=errors(401, 403, 404, 409, 503),
    )
    async def check_in(request: AnyRequest, event_id: FromPath[UUID]) -> Response[CheckInResponse]:
        """Check a ticket in at the door (the event's organizer or an admin): the first scan of
        a valid ticket uses it. Concurrent scans of one `code`: exactly one 200.

        409 problems: `already-checked-in` (with `checkedInAt`, the first time) and
        `ticket-void` (its booking was cancelled). 422 problems: `invalid-ticket` when the
        `code` does not parse or its signature fails (a signature, not a shape: JSON Schema
        cannot tell a signed code), checked before anything else; `wrong-event` for a valid
        ticket of another event."""
        # The plain ASGI route (``CheckInAnswer.fast_route``) answers the canonical path; this
        # one takes the other spellings and describes the route. Both call ``scan.answer``.
        reply = await scan.answer(cast(Scope, request.scope), event_id, request.body)
        return cast(Response[CheckInResponse], reply.response())

    @post(
        "/events/{event_id:uuid}/checkins/sync",
        status_code=200,
        tags=["tickets"],
        security=auth,
        opt=body(SyncRequest),
        request_max_body_size=SYNC_MAX_BODY_BYTES,
        description=SYNC_DESCRIPTION,
        responses=errors(401, 403, 404, 503)
        | {
            413: ResponseSpec(
                data_container=Problem,
                description=f"Body over {SYNC_MAX_BODY_BYTES} bytes",
                media_type=PROBLEM_JSON,
                generate_examples=False,
            )
        },
    )
    async def sync(request: AnyRequest, event_id: FromPath[UUID]) -> SyncResponse:
        data = await read_json(request, SyncRequest)
        scans = [(scan.code, scan.scanned_at) for scan in data.scans]
        results = await service.sync(principal_of(request), event_id, scans)
        return SyncResponse([ScanResultResponse.of(result) for result in results])

    @get(
        "/events/{event_id:uuid}/sales",
        tags=["tickets"],
        security=auth,
        responses=errors(401, 403, 404, with_body=False),
    )
    async def sales(request: AnyRequest, event_id: FromPath[UUID]) -> SalesResponse:
        """An event's sales at a glance (its organizer or an admin). Each count is a number of
        spots: Σ quantity of the bookings in that status; `checkedIn` counts used tickets;
        `revenue.amount` is Σ `totalPrice` of confirmed bookings, instant or paid, in the
        event's currency."""
        return SalesResponse.of(await service.sales(principal_of(request), event_id))

    return [booking_tickets, ticket_qr, check_in, sync, sales]
