"""Domain error categories. They carry no HTTP codes: the API layer maps each category once.

Each concrete error names a stable ``code`` (the last segment of its problem type URI).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    code: ClassVar[str] = "error"
    title: ClassVar[str] = "Request failed"
    retry_after: int | None = None  # seconds, when retrying later may succeed

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: Mapping[str, Any] = extra


class NotFound(DomainError):
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class PermissionDenied(DomainError):
    code = "forbidden"
    title = "Forbidden"


class AuthenticationFailed(DomainError):
    code = "unauthorized"
    title = "Unauthorized"
    # The WWW-Authenticate challenge of the 401 (RFC 9110 15.5.2): how to authenticate. A
    # credential that is not a bearer token (a webhook signature) names its own scheme.
    challenge: ClassVar[str] = 'Bearer realm="goticket"'


class Unavailable(DomainError):
    """The outcome is unknown or the service is overloaded: the client should retry later."""

    code = "unavailable"
    title = "Service unavailable"
    retry_after: int

    def __init__(self, detail: str, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class InvalidInput(DomainError):
    code = "validation"
    title = "Validation failed"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> InvalidInput:
        return cls([FieldError(field, message)])
