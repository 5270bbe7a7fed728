"""Account use cases: register, log in, look up, change a role."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol
from uuid import UUID

from goticket.accounts.domain import (
    EmailTaken,
    InvalidCredentials,
    User,
    UserNotFound,
    check_registration,
    ensure_admin,
    new_user,
)
from goticket.kit.auth import Principal, Role
from goticket.kit.clock import Clock


class UsersRepository(Protocol):
    async def add(self, user: User) -> bool:
        """Insert; False when the email is taken."""

    async def get(self, user_id: UUID) -> User | None: ...
    async def get_by_email(self, email: str) -> User | None: ...
    async def save_role(self, user: User) -> None: ...


class AccountsUnitOfWork(Protocol):
    @property
    def users(self) -> UsersRepository: ...

    async def commit(self) -> None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...


class Token(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def expires_in(self) -> int: ...


class TokenIssuer(Protocol):
    def issue(self, principal: Principal, now: datetime) -> Token: ...


UnitOfWorkFactory = Callable[..., AbstractAsyncContextManager[AccountsUnitOfWork]]


class AccountService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._dummy_hash: str | None = None

    async def register(
        self, email: str, password: str, name: str | None = None, role: Role = Role.USER
    ) -> User:
        check_registration(email, password, name)
        password_hash = await self._hasher.hash(password)
        user = new_user(
            user_id=uuid.uuid4(),
            email=email,
            password_hash=password_hash,
            name=name,
            role=role,
            now=self._clock.now(),
        )
        async with self._uow() as uow:
            if not await uow.users.add(user):
                raise EmailTaken(f"an account with the email {email!r} already exists")
            await uow.commit()
        return user

    async def login(self, email: str, password: str) -> Token:
        async with self._uow(readonly=True) as uow:
            user = await uow.users.get_by_email(email.strip())
        if user is None:
            # Verify against a throwaway hash so an unknown email costs what a wrong password does.
            await self._hasher.verify(await self._dummy(), password)
            raise InvalidCredentials("the email or the password is wrong")
        if not await self._hasher.verify(user.password_hash, password):
            raise InvalidCredentials("the email or the password is wrong")
        return self._tokens.issue(user.principal, self._clock.now())

    async def get(self, user_id: UUID) -> User:
        async with self._uow(readonly=True) as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFound("no such user")
        return user

    async def change_role(self, actor: Principal, user_id: UUID, role: Role) -> User:
        ensure_admin(actor)
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFound("no such user")
            user = user.with_role(role, self._clock.now())
            await uow.users.save_role(user)
            await uow.commit()
        return user

    async def prepare(self) -> None:
        """Hash the throwaway password up front, so that even the first login for an unknown
        email costs exactly what a wrong password does."""
        await self._dummy()

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(uuid.uuid4().hex)
        return self._dummy_hash
