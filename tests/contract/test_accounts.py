"""The users repository's contract, on the fakes and on PostgreSQL alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from goticket.kit.auth import Role
from tests.contract.worlds import World, add_user, make_user
from tests.unit.fakes import NOW


async def test_a_user_round_trips_and_an_unknown_one_is_none(world: World) -> None:
    user = await add_user(world, email="Ada@Example.com", name=None, role=Role.ORGANIZER)
    async with world.accounts(readonly=True) as uow:
        assert await uow.users.get(user.id) == user
        assert await uow.users.get_by_email("ada@example.COM") == user
        assert await uow.users.get(uuid.uuid4()) is None
        assert await uow.users.get_by_email("nobody@example.com") is None


@pytest.mark.parametrize(
    ("first", "second"),
    [("dup@example.com", "DUP@example.com"), ("MiXeD@Example.org", "mixed@example.ORG")],
)
async def test_a_taken_email_in_any_case_is_refused_and_the_first_user_kept(
    world: World, first: str, second: str
) -> None:
    original = await add_user(world, email=first)
    clash = make_user(email=second)
    async with world.accounts() as uow:
        assert await uow.users.add(clash) is False
        await uow.commit()
    async with world.accounts(readonly=True) as uow:
        assert await uow.users.get(clash.id) is None
        assert await uow.users.get_by_email(second) == original


async def test_a_saved_role_is_kept(world: World) -> None:
    user, untouched = await add_user(world), await add_user(world)
    promoted = user.with_role(Role.ADMIN, NOW + timedelta(minutes=1))
    async with world.accounts() as uow:
        await uow.users.save_role(promoted)
        await uow.commit()
    async with world.accounts(readonly=True) as uow:
        found = [await uow.users.get_by_email(u.email) for u in (user, untouched)]
    assert found == [promoted, untouched]


async def test_leaving_without_commit_keeps_nothing(world: World) -> None:
    user = make_user()
    async with world.accounts() as uow:
        assert await uow.users.add(user)
        assert await uow.users.get(user.id) == user  # visible inside its own unit of work
    with pytest.raises(RuntimeError, match="boom"):
        async with world.accounts() as uow:
            assert await uow.users.add(user)
            raise RuntimeError("boom")
    async with world.accounts(readonly=True) as uow:
        assert await uow.users.get(user.id) is None
        assert await uow.users.get_by_email(user.email) is None
