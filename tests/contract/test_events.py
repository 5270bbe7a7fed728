"""The events and inventory repositories' contract: soonest first, keyset pages, not-found."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from goticket.events.domain import Event
from goticket.kit.pagination import Position
from tests.contract.worlds import World, add_event, add_user, walk
from tests.unit.fakes import NOW


async def test_an_event_round_trips_and_an_unknown_one_is_none(world: World) -> None:
    event = await add_event(world, capacity=50, max_per_user=4, description="Loud")
    async with world.events(readonly=True) as uow:
        assert await uow.events.get(event.id) == event
        assert await uow.events.get(uuid.uuid4()) is None
        assert await uow.inventory.counts([event.id, uuid.uuid4()]) == {event.id: (50, 50)}
        assert await uow.inventory.counts([]) == {}


async def test_many_events_and_their_versions_are_read_at_once_and_unknown_ones_left_out(
    world: World,
) -> None:
    first, second = await add_event(world), await add_event(world)
    unknown = uuid.uuid4()
    async with world.events(readonly=True) as uow:
        found = await uow.events.get_many([first.id, unknown, second.id])
        assert sorted(found, key=lambda e: e.name + str(e.id)) == sorted(
            [first, second], key=lambda e: e.name + str(e.id)
        )
        assert await uow.events.updated([first.id, unknown]) == {first.id: first.updated_at}
        assert await uow.events.get_many([]) == []
        assert await uow.events.updated([]) == {}


async def test_update_and_store_are_kept_and_an_unknown_event_is_not_updated(
    world: World,
) -> None:
    event = await add_event(world, capacity=50)
    renamed = replace(event, name="Renamed", updated_at=NOW + timedelta(hours=1))
    async with world.events() as uow:
        assert await uow.inventory.lock(event.id) == (50, 50)
        assert await uow.inventory.lock(uuid.uuid4()) is None
        assert await uow.events.update(renamed) is True
        assert await uow.events.update(replace(renamed, id=uuid.uuid4())) is False
        await uow.inventory.store(event.id, 60, 55)
        await uow.commit()
    async with world.events(readonly=True) as uow:
        assert await uow.events.get(event.id) == renamed
        assert await uow.inventory.counts([event.id]) == {event.id: (60, 55)}


async def test_a_deleted_event_takes_its_inventory_with_it(world: World) -> None:
    event = await add_event(world)
    kept = await add_event(world)
    async with world.events() as uow:
        await uow.events.delete(event.id)
        await uow.events.delete(uuid.uuid4())  # deleting nothing is no error
        await uow.commit()
    async with world.events() as uow:
        assert await uow.events.get(event.id) is None
        assert await uow.inventory.lock(event.id) is None
        assert await uow.inventory.counts([event.id, kept.id]) == {kept.id: (10, 10)}
        assert await uow.events.update(event) is False


async def test_leaving_without_commit_keeps_no_event(world: World) -> None:
    event = await add_event(world, capacity=5)
    async with world.events() as uow:
        await uow.events.update(replace(event, name="Never"))
        await uow.inventory.store(event.id, 5, 1)
    async with world.events(readonly=True) as uow:
        assert await uow.events.get(event.id) == event
        assert await uow.inventory.counts([event.id]) == {event.id: (5, 5)}


async def _walk(
    world: World,
    limit: int,
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
) -> tuple[list[Event], int]:
    async with world.events(readonly=True) as uow:
        return await walk(
            lambda after: uow.events.list(
                starts_after=starts_after, starts_before=starts_before, after=after, limit=limit
            ),
            limit,
            lambda event: Position(event.start_at, event.id),
        )


async def _calendar(world: World) -> list[Event]:
    """Seven events: four on distinct days and three starting at the same instant."""
    organizer = (await add_user(world)).id
    events = [
        await add_event(world, organizer=organizer, start_at=NOW + timedelta(days=days))
        for days in (5, 1, 2, 4)
    ]
    tie = NOW + timedelta(days=3)
    events += [await add_event(world, organizer=organizer, start_at=tie) for _ in range(3)]
    return events


@pytest.mark.parametrize("limit", [1, 2, 3, 50])
async def test_events_page_soonest_first_and_a_walk_never_repeats_or_skips(
    world: World, limit: int
) -> None:
    events = await _calendar(world)
    expected = sorted(events, key=lambda e: (e.start_at, e.id))

    seen, pages = await _walk(world, limit)

    assert seen == expected
    assert pages == -(-len(expected) // limit)


async def test_events_filter_on_start_from_inclusive_to_exclusive(world: World) -> None:
    events = await _calendar(world)
    window = (NOW + timedelta(days=2), NOW + timedelta(days=4))
    expected = sorted(
        (e for e in events if window[0] <= e.start_at < window[1]), key=lambda e: (e.start_at, e.id)
    )
    assert len(expected) == 4  # the day-2 event and the three tied on day 3, not day 4's

    seen, _ = await _walk(world, 2, *window)

    assert seen == expected


async def test_after_the_last_event_the_list_is_empty(world: World) -> None:
    only = await add_event(world)
    end = Position(only.start_at, only.id)
    earlier = Position(only.start_at - timedelta(seconds=1), only.id)
    async with world.events(readonly=True) as uow:
        for after, expected in ((None, [only]), (end, []), (earlier, [only])):
            page = await uow.events.list(
                starts_after=None, starts_before=None, after=after, limit=10
            )
            assert page == expected
