"""Users and their roles. Pure: no I/O, no framework."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from goticket.kit.auth import Principal, Role
from goticket.kit.errors import (
    AuthenticationFailed,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)

# Deliberately simple: one @, no white space or control character, a dot in the domain.
# Deliverability is not our check. The OpenAPI document publishes this pattern, and JSON Schema
# reads it as ECMA-262, whose \s differs from Python's (U+001C..U+001F and U+0085 are white space
# only to Python, U+FEFF only to ECMA-262): the controls and U+FEFF are listed so both agree.
_NOT_IN_EMAIL = r"@\s\x00-\x1f\x7f-\x9f\ufeff"
EMAIL_PATTERN = rf"^[^{_NOT_IN_EMAIL}]{{1,64}}@[^{_NOT_IN_EMAIL}]+\.[^{_NOT_IN_EMAIL}]+$"
_EMAIL = re.compile(EMAIL_PATTERN)
PASSWORD_MIN = 8
PASSWORD_MAX = 128
NAME_MAX = 200
EMAIL_MAX = 254


class EmailTaken(Conflict):
    code = "email-taken"
    title = "Email already registered"


class UserNotFound(NotFound):
    code = "not-found"
    title = "User not found"


class InvalidCredentials(AuthenticationFailed):
    code = "invalid-credentials"
    title = "Invalid credentials"


class AdminOnly(PermissionDenied):
    code = "forbidden"
    title = "Admins only"


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    password_hash: str
    name: str | None
    role: Role
    created_at: datetime
    updated_at: datetime

    @property
    def principal(self) -> Principal:
        return Principal(self.id, self.role)

    def with_role(self, role: Role, now: datetime) -> User:
        return replace(self, role=role, updated_at=now)


def validate_registration(email: str, password: str, name: str | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if len(email) > EMAIL_MAX or not _EMAIL.fullmatch(email):
        errors.append(FieldError("email", "not a valid email address"))
    if len(password) < PASSWORD_MIN:
        errors.append(FieldError("password", f"must be at least {PASSWORD_MIN} characters"))
    elif len(password) > PASSWORD_MAX:
        errors.append(FieldError("password", f"must be at most {PASSWORD_MAX} characters"))
    if name is not None and len(name) > NAME_MAX:
        errors.append(FieldError("name", f"must be at most {NAME_MAX} characters"))
    return errors


def new_user(
    *, user_id: UUID, email: str, password_hash: str, name: str | None, role: Role, now: datetime
) -> User:
    return User(user_id, email.strip(), password_hash, name, role, now, now)


def ensure_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise AdminOnly("only an admin may change roles")


def check_registration(email: str, password: str, name: str | None) -> None:
    errors = validate_registration(email, password, name)
    if errors:
        raise InvalidInput(errors)
