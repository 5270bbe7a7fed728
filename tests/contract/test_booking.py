"""The bookings repository's contract: newest first, keyset pages, taken keys, the stock row."""

from __future__ import annotations

import uuid
from datetime import timedelta
from uuid import UUID

import pytest

from goticket.booking.domain import Booking, BookingStatus
from goticket.kit.pagination import Position
from tests.contract.worlds import (
    World,
    add_bookings,
    add_event,
    add_user,
    make_booking,
    walk,
)
from tests.unit.fakes import NOW


async def test_a_booking_round_trips_and_an_unknown_one_is_none(world: World) -> None:
    event, user = await add_event(world), await add_user(world)
    booking = make_booking(event.id, user.id, quantity=3, idempotency_key="k1")
    await add_bookings(world, booking)
    async with world.booking(readonly=True) as uow:
        assert await uow.bookings.get(booking.id) == booking
        assert await uow.bookings.get(uuid.uuid4()) is None


async def test_a_taken_idempotency_key_is_skipped_and_the_first_booking_kept(
    world: World,
) -> None:
    event, elsewhere = await add_event(world, capacity=50), await add_event(world)
    ada, bob = await add_user(world), await add_user(world)
    original = make_booking(event.id, ada.id, idempotency_key="same")
    await add_bookings(world, original)
    batch = [
        make_booking(elsewhere.id, ada.id, quantity=2, idempotency_key="same"),  # taken: skipped
        make_booking(event.id, bob.id, idempotency_key="same"),  # another user's own key
        make_booking(event.id, ada.id),  # bookings without a key never clash
        make_booking(event.id, ada.id),
    ]
    async with world.booking() as uow:
        assert await uow.bookings.add_many(batch) == 3
        await uow.commit()
    async with world.booking(readonly=True) as uow:
        assert await uow.bookings.get(batch[0].id) is None
        for booking in batch[1:]:
            assert await uow.bookings.get(booking.id) == booking
        assert await uow.bookings.by_key(ada.id, "same") == original


async def test_keys_are_found_per_user_and_case_sensitively(world: World) -> None:
    event = await add_event(world)
    ada, bob, cy = await add_user(world), await add_user(world), await add_user(world)
    a1 = make_booking(event.id, ada.id, idempotency_key="order-1")
    b1 = make_booking(event.id, bob.id, idempotency_key="order-1")
    await add_bookings(world, a1, b1)
    async with world.booking(readonly=True) as uow:
        assert await uow.bookings.by_key(ada.id, "order-1") == a1
        assert await uow.bookings.by_key(cy.id, "order-1") is None
        assert await uow.bookings.by_key(ada.id, "ORDER-1") is None
        slots = [(ada.id, "order-1"), (bob.id, "order-1"), (cy.id, "order-1"), (ada.id, "x")]
        assert await uow.bookings.by_keys(slots) == {
            (ada.id, "order-1"): a1,
            (bob.id, "order-1"): b1,
        }


async def test_active_quantities_count_only_confirmed_bookings(world: World) -> None:
    event, elsewhere = await add_event(world), await add_event(world)
    ada, bob, cy = await add_user(world), await add_user(world), await add_user(world)
    await add_bookings(
        world,
        make_booking(event.id, ada.id, quantity=2),
        make_booking(event.id, ada.id, quantity=3),
        make_booking(event.id, ada.id, quantity=4, status=BookingStatus.CANCELLED),
        make_booking(elsewhere.id, ada.id, quantity=5),
        make_booking(event.id, bob.id, quantity=6, status=BookingStatus.CANCELLED),
    )
    pairs = [(event.id, ada.id), (elsewhere.id, ada.id), (event.id, bob.id), (event.id, cy.id)]
    async with world.booking(readonly=True) as uow:
        assert await uow.bookings.active_quantities(pairs) == {
            (event.id, ada.id): 5,
            (elsewhere.id, ada.id): 5,
        }


async def test_a_saved_status_is_kept(world: World) -> None:
    event, user = await add_event(world), await add_user(world)
    booking, untouched = make_booking(event.id, user.id), make_booking(event.id, user.id)
    await add_bookings(world, booking, untouched)
    cancelled = booking.cancelled(NOW + timedelta(hours=1))
    async with world.booking() as uow:
        await uow.bookings.save_status(cancelled)
        await uow.commit()
    async with world.booking(readonly=True) as uow:
        assert await uow.bookings.get(booking.id) == cancelled
        assert await uow.bookings.get(untouched.id) == untouched


async def test_the_stock_row_is_locked_read_and_set(world: World) -> None:
    first, second = await add_event(world, capacity=3), await add_event(world, capacity=10)
    unknown = uuid.uuid4()
    user = await add_user(world)
    async with world.booking() as uow:
        assert await uow.bookings.lock_inventory(first.id) == 3
        assert await uow.bookings.lock_inventory(unknown) is None
        ids = sorted([first.id, second.id, unknown])
        assert await uow.bookings.lock_inventories(ids) == {first.id: 3, second.id: 10}
        await uow.bookings.set_available(first.id, 1)
        added = await uow.bookings.add_many(
            [make_booking(second.id, user.id, quantity=4)], stock={second.id: 6}
        )
        assert added == 1
        await uow.commit()
    async with world.booking() as uow:
        assert await uow.bookings.lock_inventory(first.id) == 1
        assert await uow.bookings.lock_inventory(second.id) == 6


async def test_leaving_without_commit_keeps_no_booking_and_no_stock(world: World) -> None:
    event, user = await add_event(world, capacity=5), await add_user(world)
    booking = make_booking(event.id, user.id, quantity=2, idempotency_key="k")
    with pytest.raises(RuntimeError, match="boom"):
        async with world.booking() as uow:
            assert await uow.bookings.lock_inventory(event.id) == 5
            assert await uow.bookings.add_many([booking], stock={event.id: 3}) == 1
            assert await uow.bookings.get(booking.id) == booking  # visible inside
            raise RuntimeError("boom")
    async with world.booking() as uow:
        assert await uow.bookings.lock_inventory(event.id) == 5
        assert await uow.bookings.get(booking.id) is None
        assert await uow.bookings.by_key(user.id, "k") is None


async def _walk(world: World, which: str, owner: UUID, limit: int) -> tuple[list[Booking], int]:
    async with world.booking(readonly=True) as uow:
        lister = uow.bookings.list_for_user if which == "user" else uow.bookings.list_for_event
        return await walk(
            lambda after: lister(owner, after, limit),
            limit,
            lambda booking: Position(booking.created_at, booking.id),
        )


@pytest.mark.parametrize("which", ["user", "event"])
@pytest.mark.parametrize("limit", [1, 2, 3, 50])
async def test_bookings_page_newest_first_and_a_walk_never_repeats_or_skips(
    world: World, which: str, limit: int
) -> None:
    event, other_event = await add_event(world), await add_event(world)
    user, other_user = await add_user(world), await add_user(world)
    tie = NOW + timedelta(minutes=30)
    mine = [
        make_booking(event.id, user.id, created_at=NOW + timedelta(minutes=m))
        for m in (10, 50, 20, 40)
    ]
    mine += [make_booking(event.id, user.id, created_at=tie) for _ in range(3)]
    mine.append(make_booking(event.id, user.id, created_at=tie, status=BookingStatus.CANCELLED))
    noise = [make_booking(other_event.id, other_user.id, created_at=tie)]
    if which == "user":  # someone else on the same event; this user on another event
        noise.append(make_booking(event.id, other_user.id, created_at=tie))
        mine.append(make_booking(other_event.id, user.id, created_at=NOW + timedelta(minutes=15)))
    else:
        noise.append(make_booking(other_event.id, user.id, created_at=tie))
        mine.append(make_booking(event.id, other_user.id, created_at=NOW + timedelta(minutes=15)))
    await add_bookings(world, *mine, *noise)
    expected = sorted(mine, key=lambda b: (b.created_at, b.id), reverse=True)

    owner = user.id if which == "user" else event.id
    seen, pages = await _walk(world, which, owner, limit)

    assert seen == expected
    assert pages == -(-len(expected) // limit)


async def test_after_the_oldest_booking_the_list_is_empty(world: World) -> None:
    event, user = await add_event(world), await add_user(world)
    only = make_booking(event.id, user.id)
    await add_bookings(world, only)
    end = Position(only.created_at, only.id)
    later = Position(only.created_at + timedelta(seconds=1), only.id)
    async with world.booking(readonly=True) as uow:
        assert await uow.bookings.list_for_user(user.id, None, 10) == [only]
        assert await uow.bookings.list_for_user(user.id, end, 10) == []
        assert await uow.bookings.list_for_event(event.id, end, 10) == []
        assert await uow.bookings.list_for_event(event.id, later, 10) == [only]
        assert await uow.bookings.list_for_user(uuid.uuid4(), None, 10) == []
