"""HTTP bodies of the accounts context."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from goticket.accounts.domain import (
    EMAIL_MAX,
    EMAIL_PATTERN,
    NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    User,
)
from goticket.kit.auth import Role

Email = Annotated[
    str,
    msgspec.Meta(
        max_length=EMAIL_MAX, pattern=EMAIL_PATTERN, description="Compared case-insensitively"
    ),
]


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: Email
    password: Annotated[str, msgspec.Meta(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
    name: Annotated[str, msgspec.Meta(max_length=NAME_MAX)] | None = None


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: Annotated[str, msgspec.Meta(max_length=1024)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class RoleChangeRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    role: Role


class TokenResponse(msgspec.Struct, rename="camel"):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class UserResponse(msgspec.Struct, rename="camel"):
    id: UUID
    email: str
    name: str | None
    role: Role
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserResponse:
        return cls(user.id, user.email, user.name, user.role, user.created_at)
