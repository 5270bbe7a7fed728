"""Who is calling: roles and the authenticated principal (pure: no I/O, no framework)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from uuid import UUID


class Role(enum.StrEnum):
    USER = "user"
    ORGANIZER = "organizer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
