"""The reservation engine's drains on the fake writer: no request stranded when a drain ends,
cancelled callers book nothing, idle lanes are forgotten, no lane starves another."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from goticket.booking.domain import Booking, BookRequest, SoldOut
from goticket.kit.errors import Unavailable
from tests.unit.test_engine import (
    EVENT,
    OTHER_EVENT,
    FakeWriter,
    assert_booked,
    hold_first_batch,
    make_engine,
    req,
    settle,
    start,
    within,
)


async def test_a_request_arriving_as_the_last_drain_ends_is_not_stranded() -> None:
    """A drain leaves the count of drains in the same step in which it found nothing to take: a
    request arriving just after starts a drain of its own instead of waiting for the deadline."""
    writer = FakeWriter()
    engine = make_engine(writer, max_drains=1, deadline=0.5)
    late = BookRequest(OTHER_EVENT, uuid.uuid4(), 1)
    late_task: list[asyncio.Task[Booking]] = []
    original = writer.commit

    async def commit_then_a_request_arrives(event_id, requests):  # type: ignore[no-untyped-def]
        outcomes = await original(event_id, requests)
        if not late_task:
            # An HTTP request whose handler step is already queued when the drain ends.
            late_task.append(asyncio.get_running_loop().create_task(engine.reserve(late)))
        return outcomes

    writer.commit = commit_then_a_request_arrives  # type: ignore[method-assign]
    await within(engine.reserve(req()))
    assert_booked(await within(late_task[0], 2.0), late)


async def test_a_cancelled_caller_whose_request_is_still_queued_books_nothing() -> None:
    """The deadline marks a queued ticket abandoned (it never commits). A caller cancelled while
    its ticket is queued (no shield any more: the ticket's future itself is cancelled) is not
    marked: the next batch books it, and nobody is ever told (keyless: a booking the client
    does not know of; keyed: the in-flight slot is already released, see the writer review)."""
    writer = FakeWriter()
    engine = make_engine(writer)
    gate, held, _ = await hold_first_batch(engine, writer)
    cancelled = req()
    task = start(engine, cancelled)
    await settle()
    task.cancel()
    await settle()
    gate.set()
    await within(held)
    await settle()
    assert all(b.user_id != cancelled.user_id for b in writer.committed)


async def test_lanes_are_forgotten_once_idle() -> None:
    """``_take`` pops a lane's abandoned tickets but only lanes it hands to a batch are ever
    deleted: a lane whose every ticket expired stays in ``_lanes`` (and every later ``_take``
    walks it). Same for a lane left with ``sold_out_until`` set once that time has passed."""
    writer = FakeWriter()
    engine = make_engine(writer, deadline=0.05, max_drains=1)
    gate, held, _ = await hold_first_batch(engine, writer, EVENT)
    # The only drain is held: these wait in lanes of their own and expire there.
    doomed = [start(engine, BookRequest(uuid.UUID(int=n), uuid.uuid4(), 1)) for n in range(3)]
    results = await asyncio.gather(*doomed, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results), results
    gate.set()
    await asyncio.gather(held, return_exceptions=True)
    await settle()
    assert engine._lanes == {}, list(engine._lanes)


async def test_queued_counter_matches_the_lanes() -> None:
    """Sanity (passes): ``queued()`` stays equal to the tickets in the lanes."""
    writer = FakeWriter()
    engine = make_engine(writer, deadline=0.05)
    gate, held, _ = await hold_first_batch(engine, writer)
    tasks = [start(engine, req()) for _ in range(5)]
    await settle()
    assert engine.queued() == sum(len(lane.pending) for lane in engine._lanes.values()) == 5
    await asyncio.gather(*tasks, return_exceptions=True)
    gate.set()
    await asyncio.gather(held, return_exceptions=True)
    await settle()
    assert engine.queued() == sum(len(lane.pending) for lane in engine._lanes.values()) == 0


async def test_a_quiet_event_is_not_starved_by_a_backlogged_hot_event() -> None:
    """``_take`` walks lanes oldest first and the oldest (hot) lane fills ``max_batch`` by
    itself: while every drain is busy with hot lanes that keep a backlog of ``max_batch``, a
    quiet lane is never taken and its request expires (503). Here: one drain, max_batch=2,
    the hot lane refilled by 2 per commit for 50 commits."""
    writer = FakeWriter(available=10_000)
    engine = make_engine(writer, max_drains=1, max_batch=2, deadline=0.5)
    original = writer.commit
    feeders: list[asyncio.Task[object]] = []

    async def commit_and_refill(event_id, requests):  # type: ignore[no-untyped-def]
        outcomes = await original(event_id, requests)
        if len(writer.batches) < 50:
            feeders.extend(start(engine, req()) for _ in range(2))
        await asyncio.sleep(0.01)
        return outcomes

    writer.commit = commit_and_refill  # type: ignore[method-assign]
    feeders.extend(start(engine, req()) for _ in range(4))
    await settle()
    quiet = BookRequest(OTHER_EVENT, uuid.uuid4(), 1)
    result = await asyncio.gather(engine.reserve(quiet), return_exceptions=True)
    while not all(feeder.done() for feeder in feeders):  # commits keep adding feeders
        await asyncio.gather(*feeders, return_exceptions=True)
    assert not isinstance(result[0], Exception), result[0]
    assert_booked(result[0], quiet)  # type: ignore[arg-type]


async def test_a_sold_out_lane_is_forgotten_once_its_flag_expired() -> None:
    """A batch that sells an event out keeps its lane (for the flag); once the TTL has passed
    and nothing else comes for the event, the lane should go, but nothing ever deletes it:
    every sold-out event of the process's lifetime stays in ``_lanes``, walked by each
    ``_take`` (about 10 ms per take at 100,000 lanes)."""
    from tests.unit.test_engine import FakeMonotonic

    clock = FakeMonotonic()
    writer = FakeWriter(available=1)
    engine = make_engine(writer, sold_out_ttl=1.0, monotonic=clock)
    await within(engine.reserve(req()))
    with pytest.raises(SoldOut):  # decided by the (fake) database
        await within(engine.reserve(req()))
    clock.now += 10
    # Traffic on other events keeps the engine busy; nothing comes for EVENT again.
    for n in range(3):
        await within(engine.reserve(BookRequest(uuid.UUID(int=500 + n), uuid.uuid4(), 1)))
    await settle()
    assert EVENT not in engine._lanes
