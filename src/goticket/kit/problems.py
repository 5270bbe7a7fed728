"""RFC 9457 problem details: ONE model (``Problem``) renders every error body and feeds the
OpenAPI schema, so the published schema lists every field the API sends."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from msgspec import UNSET, UnsetType

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


def _said(description: str) -> msgspec.Meta:
    return msgspec.Meta(description=description)


class ProblemFieldError(msgspec.Struct):
    field: Annotated[str, _said("The offending field: a body member, a parameter or a header")]
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details. Extension members are fields here, never ad-hoc dict keys: a
    domain error whose ``extra`` names a member this struct lacks fails its unit test. A member
    without a value is left out (never ``null``), and the OpenAPI schema says so."""

    type: Annotated[str, _said("A stable URI under https://goticket.dev/problems/")]
    title: str
    status: int
    detail: str | UnsetType = UNSET
    errors: Annotated[list[ProblemFieldError], _said("422: every offending field")] | UnsetType = (
        UNSET
    )
    available: Annotated[int, _said("sold-out: the spots left")] | UnsetType = UNSET
    limit: Annotated[int, _said("per-user-limit: the event's maxPerUser")] | UnsetType = UNSET
    booked: (
        Annotated[int, _said("capacity-below-booked, event-has-bookings: the spots booked")]
        | UnsetType
    ) = UNSET
    # Multi-word members are camelCase on the wire, like the bodies (no struct-wide rename:
    # the RFC's own members and the one-word ones keep their names as they are).
    sales_start_at: (
        Annotated[datetime, _said("sales-not-started: when bookings open (RFC 3339)")] | UnsetType
    ) = msgspec.field(default=UNSET, name="salesStartAt")
    checked_in_at: (
        Annotated[
            datetime, _said("already-checked-in: when the ticket was first checked in (RFC 3339)")
        ]
        | UnsetType
    ) = msgspec.field(default=UNSET, name="checkedInAt")


_ENCODER = msgspec.json.Encoder()


@dataclass(slots=True)
class Reply:
    """An HTTP answer as plain data: what both Litestar handlers and plain ASGI handlers send."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: MutableMapping[str, str] = field(default_factory=dict)

    def response(self) -> Response[bytes]:
        return Response(
            self.body, status_code=self.status, media_type=self.media_type, headers=self.headers
        )


class BadRequest(Exception):
    """A request the HTTP layer refuses before any use case sees it (400, 413, 415)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    errors: Sequence[FieldError] = (),
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    problem = Problem(
        type=PROBLEM_BASE + code,
        title=title,
        status=status,
        detail=detail or UNSET,
        errors=[ProblemFieldError(e.field, e.message) for e in errors] or UNSET,
        **{member: value for member, value in (extra or {}).items() if value is not None},
    )
    return _ENCODER.encode(problem)


def problem_reply(
    status: int,
    detail: str | None = None,
    *,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A problem of a generic type (``bad-request``, ``not-found``, ...) for ``status``."""
    code, title = _GENERIC.get(status, ("error", "Error"))
    body = problem_body(status, code, title, detail, errors=errors)
    return Reply(status, body, PROBLEM_JSON, dict(headers or {}))


def status_of(exc: DomainError) -> int:
    for category, status in STATUS_OF:
        if isinstance(exc, category):
            return status
    return 400


def domain_reply(exc: DomainError) -> Reply:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = exc.challenge
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    errors = exc.errors if isinstance(exc, InvalidInput) else ()
    body = problem_body(status, exc.code, exc.title, exc.detail, errors=errors, extra=exc.extra)
    return Reply(status, body, PROBLEM_JSON, headers)


def error_reply(exc: Exception, request_id: object = None, route: object = None) -> Reply:
    """The answer to any exception a handler raised; an unexpected one is logged, never shown."""
    if isinstance(exc, DomainError):
        return domain_reply(exc)
    if isinstance(exc, BadRequest):
        return problem_reply(exc.status, exc.detail)
    if isinstance(exc, ValidationException):
        # Litestar validates path and query parameters: a bad one is a validation error (422).
        errors = [
            FieldError(str(item.get("key", "?")), str(item.get("message", "invalid")))
            for item in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(item, dict)
        ]
        return problem_reply(422, "invalid parameters", errors=errors)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        status = exc.status_code
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
        return problem_reply(status, safe_detail(status), headers=headers)
    log.error("unhandled error", request_id=request_id, route=route, exc_info=exc)
    return problem_reply(500, "an unexpected error occurred; it has been logged")


def safe_detail(status: int) -> str | None:
    return {
        404: "no such resource",
        405: "method not allowed on this resource",
        413: f"the request body exceeds {MAX_BODY_BYTES} bytes",
    }.get(status)


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar's one exception handler: every error is answered by ``error_reply``."""
    scope = request.scope
    return error_reply(exc, scope.get(REQUEST_ID_SCOPE_KEY), scope.get("path_template")).response()


EXCEPTION_HANDLERS: Mapping[type[Exception] | int, Any] = {Exception: handle_exception}
