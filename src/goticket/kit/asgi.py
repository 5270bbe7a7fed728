"""ASGI plumbing: the outermost layer (request ids, the request log, the hook for plain ASGI
handlers on the hottest routes) and the few helpers such a handler needs. No rules live here:
a plain handler parses the raw request and calls the same function its Litestar route calls."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any, cast
from uuid import UUID

from litestar import Litestar

from goticket.kit.logging import get_logger
from goticket.kit.problems import (
    MAX_BODY_BYTES,
    REQUEST_ID_SCOPE_KEY,
    BadRequest,
    Reply,
    error_reply,
    safe_detail,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RequestObserver = Callable[[str, str, int, float], None]
"""Told of every answered request: route template, method, status, seconds."""

FastRouter = Callable[[Scope], ASGIApp | None]
"""Picks a plain ASGI handler for the few hot routes (setting ``path_template``), else None."""

log = get_logger("goticket.http")

_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_UUID = "([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def first_header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as Litestar's ``headers.get`` reads it."""
    for key, value in scope["headers"]:
        if key == name:
            return cast(bytes, value).decode("latin-1")
    return None


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole request body of a plain ASGI handler, refused past ``limit`` bytes (413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, safe_detail(413) or "payload too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_reply(send: Send, reply: Reply) -> None:
    raw = (
        # No content: no media type and no length (a 304's would describe the 200's body).
        []
        if reply.status in (204, 304)
        else [
            (b"content-type", reply.media_type.encode()),
            (b"content-length", str(len(reply.body)).encode()),
        ]
    )
    raw += [(k.lower().encode(), v.encode("latin-1")) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": raw})
    await send({"type": "http.response.body", "body": reply.body})


def plain_handler(answer: Callable[[Scope, Receive], Awaitable[Reply]]) -> ASGIApp:
    """A plain ASGI handler around ``answer``; what it raises is answered as the exception
    handlers of the framework answer it."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            reply = await answer(scope, receive)
        except ClientGone:
            raise
        except Exception as exc:  # noqa: BLE001 - answered like the exception handlers do
            reply = error_reply(exc, scope.get(REQUEST_ID_SCOPE_KEY), scope.get("path_template"))
        await send_reply(send, reply)

    return handle


def uuid_route(
    method: str, template: str, answer: Callable[[UUID, Scope, Receive], Awaitable[Reply]]
) -> FastRouter:
    """A plain ASGI route: ``method`` on ``template`` (one ``{name}`` segment, an id in its
    canonical spelling; every other spelling goes to the framework's route, which calls the
    same ``answer``). It records the template for the request log and the metrics."""
    prefix, _, rest = template.partition("{")
    pattern = re.compile(re.escape(prefix) + _UUID + re.escape(rest.partition("}")[2]))

    def route(scope: Scope) -> ASGIApp | None:
        if scope["method"] != method:
            return None
        match = pattern.fullmatch(scope["path"])
        if match is None:
            return None
        scope["path_template"] = template
        key = UUID(match.group(1))

        async def handle(scope: Scope, receive: Receive) -> Reply:
            return await answer(key, scope, receive)

        return plain_handler(handle)

    return route


def first_of(*routers: FastRouter) -> FastRouter:
    def route(scope: Scope) -> ASGIApp | None:
        for router in routers:
            handler = router(scope)
            if handler is not None:
                return handler
        return None

    return route


class RequestContext:
    """Outermost ASGI layer: gives every response an X-Request-ID and logs one line per request.

    It wraps the whole application so that even responses the router makes itself (404, 405, 413)
    carry the id and are logged.
    """

    def __init__(
        self,
        app: Litestar,
        observe: RequestObserver | None = None,
        fast: FastRouter | None = None,
    ) -> None:
        self.litestar = app
        self._app: ASGIApp = cast(ASGIApp, app)
        self._observe = observe
        self._fast = fast
        # Request ids: a random prefix per app and a counter (no system call per request).
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count()

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        return self.litestar.lifespan()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or f"{self._id_prefix}{next(self._ids):016x}"
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        encoded_id = request_id.encode()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", encoded_id))
                message["headers"] = headers
            await send(message)

        handler = self._fast(scope) if self._fast is not None else None
        try:
            await (handler or self._app)(scope, receive, send_with_id)
        except ClientGone:
            status = 499  # nobody to answer: "client closed request", as nginx logs it
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            if self._observe is not None:
                self._observe(route, scope["method"], status, seconds)
            log.info(
                "request",
                request_id=request_id,
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )


def _incoming_request_id(scope: Scope) -> str | None:
    candidate = first_header(scope, b"x-request-id")
    return candidate if candidate is not None and _REQUEST_ID.match(candidate) else None
