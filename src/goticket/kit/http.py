"""HTTP plumbing shared by every context: problem+json errors, JSON bodies, the caller's identity,
request ids and the request log."""

from __future__ import annotations

import itertools
import os
import re
import time
import typing
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

import msgspec
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from goticket.kit.auth import Principal
from goticket.kit.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    FieldError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from goticket.kit.logging import get_logger
from goticket.kit.tokens import TokenCodec

PROBLEM_BASE = "https://goticket.dev/problems/"
PROBLEM_JSON = "application/problem+json"
MAX_BODY_BYTES = 64 * 1024
REQUEST_ID_SCOPE_KEY = "goticket.request_id"

log = get_logger("goticket.http")

# The one table from domain error categories to HTTP statuses.
STATUS_OF: tuple[tuple[type[DomainError], int], ...] = (
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (PermissionDenied, 403),
    (AuthenticationFailed, 401),
    (Unavailable, 503),
)

_GENERIC = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation", "Validation failed"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemFieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[ProblemFieldError] | None = None
    available: int | None = None


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    errors: Sequence[FieldError] = (),
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    return Response(
        problem_body(status, code, title, detail, errors=errors, extra=extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def generic_problem(status: int, detail: str | None = None, **kw: Any) -> Response[bytes]:
    code, title = _GENERIC.get(status, ("error", "Error"))
    return problem(status, code, title, detail, **kw)


def generic_problem_body(status: int, detail: str | None = None) -> bytes:
    code, title = _GENERIC.get(status, ("error", "Error"))
    return problem_body(status, code, title, detail)


def status_of(exc: DomainError) -> int:
    for category, status in STATUS_OF:
        if isinstance(exc, category):
            return status
    return 400


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    errors: Sequence[FieldError] = (),
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


def domain_problem(exc: DomainError) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and problem+json body for a domain error."""
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="goticket"'
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    errors = exc.errors if isinstance(exc, InvalidInput) else ()
    return (
        status,
        headers,
        problem_body(status, exc.code, exc.title, exc.detail, errors=errors, extra=exc.extra),
    )


def handle_domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    status, headers, body = domain_problem(exc)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, ValidationException):
        # Litestar validates path and query parameters: a bad one is a validation error (422).
        errors = [
            FieldError(str(item.get("key", "?")), str(item.get("message", "invalid")))
            for item in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(item, dict)
        ]
        return generic_problem(422, "invalid parameters", errors=errors)
    status = exc.status_code
    if status >= 500:
        return handle_internal_error(request, exc)
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
    return generic_problem(status, _safe_detail(status), headers=headers)


def _safe_detail(status: int) -> str | None:
    return {
        404: "no such resource",
        405: "method not allowed on this resource",
        413: f"the request body exceeds {MAX_BODY_BYTES} bytes",
    }.get(status)


def handle_internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, DomainError):
        return handle_domain_error(request, exc)
    log.error(
        "unhandled error",
        request_id=request.scope.get(REQUEST_ID_SCOPE_KEY),
        route=request.scope.get("path_template"),
        exc_info=exc,
    )
    return generic_problem(500, "an unexpected error occurred; it has been logged")


EXCEPTION_HANDLERS: Mapping[type[Exception] | int, Any] = {
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    Exception: handle_internal_error,
}


# ---------------------------------------------------------------------------- request bodies

S = TypeVar("S", bound=msgspec.Struct)

# A JSON string can carry U+0000 only escaped; PostgreSQL text cannot store it at all.
_NUL_ESCAPE = b"\\u0000"
_NOT_JSON = "the request body is not valid JSON (or it nests too deeply)"


class BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def handle_bad_request(_: Request[Any, Any, Any], exc: BadRequest) -> Response[bytes]:
    return generic_problem(exc.status, exc.detail)


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


async def read_json(
    request: Request[Any, Any, Any], struct: type[S], *, optional: bool = False
) -> S:
    """Decode and validate a JSON object body into ``struct``, reporting every offending field."""
    body = await request.body()
    return decode_json(body, request.headers.get("content-type"), struct, optional=optional)


def decode_json(
    body: bytes, content_type: str | None, struct: type[S], *, optional: bool = False
) -> S:
    if content_type is not None and not _is_json(content_type):
        raise BadRequest(415, "the request body must be application/json")
    if not body.strip():
        if optional:
            body = b"{}"
        else:
            raise BadRequest(400, "a JSON object body is required")
    elif content_type is None:
        raise BadRequest(415, "the request body must be application/json")
    data: S | None = None
    try:
        data = msgspec.json.decode(body, type=struct)
    except msgspec.ValidationError:
        pass  # fall through to the slower path that collects every error
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest(400, _NOT_JSON) from None
    if data is not None and _NUL_ESCAPE not in body:
        return data
    try:
        # Validation stops at the first bad field, so the JSON after it is still unread.
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest(400, _NOT_JSON) from None
    if not isinstance(raw, dict):
        raise BadRequest(400, "the request body must be a JSON object")
    errors = collect_errors(struct, raw) if data is None else []
    reported = {error.field for error in errors}
    errors += [error for error in nul_errors(raw) if error.field not in reported]
    if data is None or errors:
        raise InvalidInput(errors or [FieldError("body", "invalid")])
    return data


def nul_errors(value: Any, path: str = "") -> list[FieldError]:
    """Every string in ``value`` that holds U+0000, by field path."""
    if isinstance(value, str):
        return [FieldError(path or "body", "must not contain U+0000")] if "\x00" in value else []
    if isinstance(value, dict):
        return [
            error
            for key, item in value.items()
            for error in nul_errors(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        return [error for i, item in enumerate(value) for error in nul_errors(item, f"{path}[{i}]")]
    return []


def collect_errors(struct: type[msgspec.Struct], raw: dict[str, Any]) -> list[FieldError]:
    """Validate ``raw`` field by field so that the client learns of every mistake at once.

    A struct may define ``cross_field_errors(valid)``: the rules that span fields, given the
    fields that are valid on their own (by attribute name), so that those are listed too.
    """
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    hints = typing.get_type_hints(struct, include_extras=True)
    known = {field.encode_name for field in info.fields}
    errors = [FieldError(key, "unknown field") for key in raw if key not in known]
    valid: dict[str, Any] = {}
    for field in info.fields:
        if field.encode_name not in raw:
            if field.required:
                errors.append(FieldError(field.encode_name, "required"))
            continue
        try:
            valid[field.name] = msgspec.convert(raw[field.encode_name], hints[field.name])
        except msgspec.ValidationError as exc:
            message, _, path = str(exc).partition(" - at `$")
            errors.append(FieldError(field.encode_name + path.rstrip("`"), message))
    cross_field = getattr(struct, "cross_field_errors", None)
    if errors and cross_field is not None:
        reported = {error.field for error in errors}
        errors += [error for error in cross_field(valid) if error.field not in reported]
    if not errors:
        # Every field is fine on its own: what failed is a rule that spans fields.
        try:
            msgspec.convert(raw, struct)
        except msgspec.ValidationError as exc:
            errors.append(FieldError("body", str(exc)))
    return errors


# ---------------------------------------------------------------------------- the caller

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    return bearer_principal(request.headers.get("authorization"), request.app.state.tokens)


def bearer_principal(header: str | None, tokens: TokenCodec) -> Principal:
    match = _BEARER.match(header) if header else None
    if match is None:
        raise AuthenticationFailed("a bearer access token is required")
    return tokens.verify(match.group(1))


# ---------------------------------------------------------------------------- request ids and log

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


RequestObserver = Callable[[str, str, int, float], None]
"""Told of every answered request: route template, method, status, seconds."""

FastRouter = Callable[[Scope], ASGIApp | None]
"""Picks a plain ASGI handler for the few hot routes (setting ``path_template``), else None."""


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


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
            raise BadRequest(413, _safe_detail(413) or "payload too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def respond(
    send: Send, status: int, media_type: str, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    raw = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if headers:
        raw += [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, scope: Scope, exc: Exception) -> None:
    """What the exception handlers answer, for a plain ASGI handler."""
    if isinstance(exc, DomainError):
        status, headers, body = domain_problem(exc)
        await respond(send, status, PROBLEM_JSON, body, headers)
    elif isinstance(exc, BadRequest):
        await respond(send, exc.status, PROBLEM_JSON, generic_problem_body(exc.status, exc.detail))
    else:
        log.error(
            "unhandled error",
            request_id=scope.get(REQUEST_ID_SCOPE_KEY),
            route=scope.get("path_template"),
            exc_info=exc,
        )
        body = generic_problem_body(500, "an unexpected error occurred; it has been logged")
        await respond(send, 500, PROBLEM_JSON, body)


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
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.match(candidate) else None
    return None
