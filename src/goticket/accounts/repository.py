"""SQL for the users table."""

from __future__ import annotations

from typing import Self
from uuid import UUID

import asyncpg

from goticket.accounts.domain import User
from goticket.kit.auth import Role
from goticket.kit.db import Connection, UnitOfWork
from goticket.kit.rows import columns, from_row, placeholders, values

_COLUMNS = columns(User)


def _user(row: asyncpg.Record) -> User:
    return from_row(User, row, role=Role(row["role"]))


class PgUsersRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def add(self, user: User) -> bool:
        inserted = await self._conn.fetchval(
            f"""INSERT INTO users ({_COLUMNS}) VALUES ({placeholders(User)})
                ON CONFLICT ((lower(email))) DO NOTHING RETURNING true""",
            *values(user),
        )
        return bool(inserted)

    async def get(self, user_id: UUID) -> User | None:
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower($1)", email
        )
        return _user(row) if row else None

    async def save_role(self, user: User) -> None:
        await self._conn.execute(
            "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1",
            user.id,
            user.role.value,
            user.updated_at,
        )


class PgAccountsUnitOfWork(UnitOfWork):
    users: PgUsersRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.users = PgUsersRepository(self.connection)
        return self
