"""The read cache's invalidation on real PostgreSQL: the catalog trigger notifies in the writer's
transaction, bookings do not, and a LISTEN connection that is killed comes back and resets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from goticket.app import CatalogInventory
from goticket.events.domain import EventView
from goticket.events.reads import CHANNEL, EventReads, PageQuery
from goticket.events.repository import PgEventsUnitOfWork
from goticket.events.service import EventService
from goticket.kit.clock import SystemClock
from goticket.kit.db import Database
from goticket.kit.listen import Listener
from goticket.kit.pagination import CursorCodec
from tests.integration.test_repositories_booking import NOW, add_event

ALL = PageQuery(limit=20, after=None, starts_after=None, starts_before=None)
LONG = 3600.0  # an age bound that never expires here: only a notification can refresh an entry


async def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.01)


class Recorder:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.resets = 0

    def notified(self, payload: str) -> None:
        self.payloads.append(payload)

    def reset(self) -> None:
        self.resets += 1


@pytest.fixture
async def listening(
    database_url: str, db: asyncpg.Connection[Any]
) -> AsyncIterator[tuple[Listener, Recorder]]:
    recorder = Recorder()
    listener = Listener(
        database_url,
        CHANNEL,
        recorder.notified,
        recorder.reset,
        ping_every=0.5,
        backoff_first=0.05,
        backoff_max=0.2,
    )
    listener.start()
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        yield listener, recorder
    finally:
        await listener.close()


async def test_catalog_writes_notify_on_commit_only_and_bookings_do_not(
    listening: tuple[Listener, Recorder], database: Database, db: asyncpg.Connection[Any]
) -> None:
    _, recorder = listening
    event_id = await add_event(db, database)
    await eventually(lambda: recorder.payloads == [str(event_id)], 5, "the insert's notification")

    async with db.transaction():
        await db.execute("UPDATE events SET name = 'Renamed' WHERE id = $1", event_id)
        await asyncio.sleep(0.2)
        assert len(recorder.payloads) == 1, "notified before the commit"
    await eventually(lambda: len(recorder.payloads) == 2, 5, "the update's notification")

    rolled_back = db.transaction()
    await rolled_back.start()
    await db.execute("UPDATE events SET name = 'Never' WHERE id = $1", event_id)
    await rolled_back.rollback()
    # A booking writes the inventory row only: no notification (NOTIFY would serialise commits).
    await db.execute("UPDATE event_inventory SET available = 3 WHERE event_id = $1", event_id)
    await db.execute("DELETE FROM events WHERE id = $1", event_id)
    await eventually(lambda: len(recorder.payloads) == 3, 5, "the delete's notification")
    await asyncio.sleep(0.2)
    assert recorder.payloads == [str(event_id)] * 3


async def test_a_killed_listen_connection_comes_back_and_resets(
    listening: tuple[Listener, Recorder], database: Database, db: asyncpg.Connection[Any]
) -> None:
    listener, recorder = listening
    assert (listener.connections, recorder.resets) == (1, 1)
    first_pid = listener.backend_pid
    assert await db.fetchval(
        "SELECT application_name FROM pg_stat_activity WHERE pid = $1", first_pid
    ) == ("goticket-listen")
    assert await db.fetchval("SELECT pg_terminate_backend($1)", first_pid)
    await eventually(lambda: listener.connections == 2, 5, "the listener to reconnect")
    assert recorder.resets == 2  # what was missed meanwhile is thrown away
    assert listener.failures == 1
    assert listener.backend_pid not in (None, first_pid)
    event_id = await add_event(db, database)
    await eventually(lambda: str(event_id) in recorder.payloads, 5, "a notification after it")


async def test_a_notification_refreshes_a_cached_event_at_once(
    database_url: str, database: Database, db: asyncpg.Connection[Any]
) -> None:
    service = EventService(partial(PgEventsUnitOfWork, database, CatalogInventory), SystemClock())
    reads = EventReads(service, CursorCodec("k" * 32), max_events=100, max_pages=100, max_age=LONG)
    listener = Listener(database_url, CHANNEL, reads.changed, reads.reset, ping_every=0.5)
    listener.start()
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        event_id = await add_event(db, database)
        first = await reads.event(event_id, None)
        assert b'"name":"Gig"' in first.body
        page = await reads.page(ALL, None)
        await db.execute(
            "UPDATE events SET name = 'Renamed', updated_at = $2 WHERE id = $1",
            event_id,
            NOW + timedelta(minutes=1),
        )

        async def name_now() -> bytes:
            return (await reads.event(event_id, None)).body

        deadline = time.monotonic() + 2
        while b'"name":"Renamed"' not in await name_now():
            assert time.monotonic() < deadline, "the notification did not refresh the entry"
            await asyncio.sleep(0.01)
        assert b'"name":"Renamed"' in (await reads.page(ALL, None)).body
        assert page.body != (await reads.page(ALL, None)).body
    finally:
        await listener.close()


async def test_a_database_out_of_reach_is_retried_until_closed() -> None:
    recorder = Recorder()
    # Port 9 (discard) on the loopback: nothing listens, each attempt is refused at once.
    listener = Listener(
        "postgresql://nobody@127.0.0.1:9/none",
        CHANNEL,
        recorder.notified,
        recorder.reset,
        backoff_first=0.01,
        backoff_max=0.05,
    )
    listener.start()
    await asyncio.sleep(0.3)
    assert listener.failures >= 3, "it gave up, or does not back off as configured"
    assert (listener.connections, recorder.resets) == (0, 0)
    assert not listener.listening.is_set()
    await asyncio.wait_for(listener.close(), 5)


class CountingService(EventService):
    """The real service, counting the events the read cache loads, and its queries for them."""

    loads = 0
    batches = 0

    async def get_many(self, event_ids: list[UUID]) -> dict[UUID, EventView]:
        self.loads += len(event_ids)
        self.batches += 1
        return await super().get_many(event_ids)


class StoppedClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_refresh_checks_many_events_at_once_without_a_notification(
    database: Database, db: asyncpg.Connection[Any]
) -> None:
    """No listener here: the refresh alone keeps entries fresh and finds edits and deletions."""
    service = CountingService(
        partial(PgEventsUnitOfWork, database, CatalogInventory), SystemClock()
    )
    clock = StoppedClock()
    reads = EventReads(
        service, CursorCodec("k" * 32), max_events=100, max_pages=10, max_age=1.0, clock=clock
    )
    kept, edited, deleted = [await add_event(db, database) for _ in range(3)]
    for event_id in (kept, edited, deleted):
        assert (await reads.event(event_id, None)).status == 200
    assert service.loads == 3
    await db.execute("UPDATE event_inventory SET available = 4 WHERE event_id = $1", kept)
    await db.execute("UPDATE events SET name = 'Edited', updated_at = now() WHERE id = $1", edited)
    await db.execute("DELETE FROM events WHERE id = $1", deleted)

    clock.now += 0.6
    await reads.refresh()
    clock.now += 0.6  # past the bound of the first loads, within that of the refresh
    stock = await reads.event(kept, None)
    assert b'"availableSpots":4' in stock.body
    assert stock.headers["age"] == "1"
    assert service.loads == 3, "the refreshed entry was served without a load"
    assert b'"name":"Edited"' in (await reads.event(edited, None)).body
    assert (await reads.event(deleted, None)).status == 404
    assert service.loads == 5

    clock.now += 0.6
    await reads.refresh()  # nothing read since the last one but these three
    clock.now += 0.6
    for event_id in (kept, edited, deleted):
        await reads.event(event_id, None)
    assert service.loads == 6, "only the 404 (which has nothing to refresh) loaded again"


async def test_events_loaded_in_one_turn_of_the_loop_share_one_query(
    database: Database, db: asyncpg.Connection[Any]
) -> None:
    service = CountingService(
        partial(PgEventsUnitOfWork, database, CatalogInventory), SystemClock()
    )
    reads = EventReads(service, CursorCodec("k" * 32), max_events=100, max_pages=10, max_age=1.0)
    ids = [await add_event(db, database) for _ in range(20)]
    missing = uuid4()
    replies = await asyncio.gather(*(reads.event(i, None) for i in [*ids, *ids, missing]))
    assert [r.status for r in replies] == [200] * 40 + [404]
    assert all(str(i).encode() in r.body for i, r in zip(ids * 2, replies, strict=False))
    assert (service.batches, service.loads) == (1, 21)
