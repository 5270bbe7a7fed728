"""The reservation engine on real PostgreSQL when things go wrong: the engine's connection killed
while its batch waits on the inventory row, a burst past the queue bound while the row is held,
and the sold-out fast path. Each app here is its own in-process API instance (engine on)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import httpx
import pytest

from goticket.config import Settings
from tests.bookings_support import (
    DB,
    assert_booked,
    assert_invariant,
    booking_rows,
    users,
)
from tests.support import Actor, Api, assert_problem, serving

StartApp = Callable[..., Awaitable[Api]]
WAITING_FOR_THE_ROW = """
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND wait_event_type = 'Lock' AND query LIKE '%event_inventory%FOR UPDATE%'
"""


@pytest.fixture
async def start_app(settings: Settings, database_url: str, db: DB) -> AsyncIterator[StartApp]:
    """Starts an engine-on app with settings overridden; all are stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Api:
            application = await stack.enter_async_context(
                serving(settings.model_copy(update={"engine": "on", **overrides}))
            )
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=application),
                    base_url="http://faults.test",
                    timeout=30,
                )
            )
            return Api(http, settings, database_url)

        yield start


@pytest.fixture
async def row_holder(database_url: str, db: DB) -> AsyncIterator[RowHolder]:
    holder = RowHolder(database_url)
    try:
        yield holder
    finally:
        await holder.release()


class RowHolder:
    """Another session that locks an event's inventory row FOR UPDATE and keeps it."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: asyncpg.Connection[Any] | None = None
        self._tx: Any = None

    async def hold(self, event_id: str) -> None:
        self._conn = await asyncpg.connect(self._url)
        self._tx = self._conn.transaction()
        await self._tx.start()
        row = await self._conn.fetchrow(
            "SELECT available FROM event_inventory WHERE event_id = $1 FOR UPDATE", event_id
        )
        assert row is not None

    async def execute(self, sql: str, *args: Any) -> None:
        """Run ``sql`` in the holding transaction (it commits on ``commit``)."""
        assert self._conn is not None
        await self._conn.execute(sql, *args)

    async def commit(self) -> None:
        if self._conn is not None:
            await self._tx.commit()
            await self._conn.close()
            self._conn = None

    async def release(self) -> None:
        if self._conn is not None:
            await self._tx.rollback()
            await self._conn.close()
            self._conn = None


async def waiting_for_the_row(
    db: DB, *, other_than: frozenset[int] = frozenset(), seconds: float = 5.0
) -> int:
    """The pid of the one session waiting on the held inventory row, once there is one
    (a terminated session may show for a moment after ``pg_terminate_backend``: skipped)."""
    deadline = time.monotonic() + seconds
    while True:
        pids = {int(r["pid"]) for r in await db.fetch(WAITING_FOR_THE_ROW)} - other_than
        if pids:
            assert len(pids) == 1, f"one batch per event at a time, not {pids}"
            return pids.pop()
        assert time.monotonic() < deadline, "no session waits on the row"
        await asyncio.sleep(0.01)


async def timed(awaitable: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = await awaitable
    return response, time.monotonic() - began


def assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1, response.headers


# ------------------------------------------- (a) the engine's connection dies mid-batch


async def test_a_killed_batch_connection_loses_no_booking_and_retries_settle_once(
    start_app: StartApp, db: DB, row_holder: RowHolder
) -> None:
    api = await start_app()
    event = await api.event(capacity=50)
    fans = await users(api, 4)
    work = [(fans[i % 4], 1 + i % 3, f"fault-{i}") for i in range(12)]
    await row_holder.hold(event["id"])

    def send(fan: Actor, quantity: int, key: str) -> asyncio.Task[httpx.Response]:
        return asyncio.create_task(api.book(fan, event["id"], quantity=quantity, key=key))

    # A first wave forms the engine's batch, which blocks on the row; a second wave queues
    # behind it. Then the batch's connection is killed.
    first_round = [send(*w) for w in work[:5]]
    victim = await waiting_for_the_row(db)
    first_round += [send(*w) for w in work[5:]]
    await asyncio.sleep(0.1)
    assert await db.fetchval("SELECT pg_terminate_backend($1)", victim)
    # The next batch takes the queued requests and waits on the row in its turn.
    await waiting_for_the_row(db, other_than=frozenset({victim}))
    await row_holder.release()
    answers = await asyncio.wait_for(asyncio.gather(*first_round), 30)

    booked: dict[str, str] = {}  # key -> booking id
    for (fan, quantity, key), response in zip(work, answers, strict=True):
        if response.status_code == 201:
            body = assert_booked(response)
            assert (body["userId"], body["quantity"]) == (str(fan.id), quantity)
            row = await db.fetchrow(
                "SELECT id::text AS id, status FROM bookings WHERE user_id = $1"
                " AND idempotency_key = $2",
                fan.id,
                key,
            )
            assert row is not None
            assert (row["id"], row["status"]) == (body["id"], "confirmed")
            booked[key] = body["id"]
        else:
            assert_retry_later(response)
    assert 0 < len(booked) < len(work), "the killed batch fails, the queued one commits"
    await assert_invariant(db)

    retries = await asyncio.wait_for(
        asyncio.gather(*(api.book(fan, event["id"], quantity=q, key=key) for fan, q, key in work)),
        30,
    )

    for (fan, quantity, key), response in zip(work, retries, strict=True):
        body = assert_booked(response)
        assert (body["userId"], body["quantity"]) == (str(fan.id), quantity)
        if key in booked:
            assert body["id"] == booked[key]  # the acknowledged booking, not a second one
    per_key = await db.fetch(
        "SELECT idempotency_key AS key, count(*) AS n FROM bookings WHERE event_id = $1"
        " GROUP BY idempotency_key",
        event["id"],
    )
    assert {r["key"]: r["n"] for r in per_key} == {key: 1 for _, _, key in work}
    assert await booking_rows(db) == len(work)
    spots = await db.fetchval(
        "SELECT available FROM event_inventory WHERE event_id = $1", event["id"]
    )
    assert spots == 50 - sum(q for _, q, _ in work)
    await assert_invariant(db)


# --------------------------------------------------- (b) a burst past the queue bound


async def test_a_burst_past_the_queue_bound_is_shed_at_once_and_the_queued_complete(
    start_app: StartApp, db: DB, row_holder: RowHolder
) -> None:
    api = await start_app(engine_queue_limit=5)
    event = await api.event(capacity=100)
    buyers = await users(api, 50)
    await row_holder.hold(event["id"])

    in_flight = asyncio.create_task(timed(api.book(buyers[0], event["id"])))
    await waiting_for_the_row(db)  # the first batch holds the lane; the queue is empty
    burst = [asyncio.create_task(timed(api.book(b, event["id"]))) for b in buyers[1:]]
    done, waiting = await asyncio.wait(burst, timeout=1.5)

    shed = [task.result() for task in done]
    assert len(shed) == 49 - 5, len(shed)  # five fit in the queue
    for response, elapsed in shed:
        assert_problem(response, 503, "overloaded")
        assert int(response.headers["retry-after"]) >= 1
        assert elapsed < 1.0, elapsed
    assert len(waiting) == 5
    assert not in_flight.done()

    await row_holder.release()
    queued = await asyncio.wait_for(asyncio.gather(in_flight, *waiting), 10)

    for response, _ in queued:
        assert_booked(response)
    assert await booking_rows(db, event["id"]) == 6
    await assert_invariant(db)


# ---------------------------------------------------------- (c) the sold-out fast path


async def test_sold_out_is_answered_from_memory_until_a_cancellation_brings_spots_back(
    start_app: StartApp, db: DB, row_holder: RowHolder
) -> None:
    api = await start_app(sold_out_ttl=30)
    event = await api.event(capacity=3)
    fans = await users(api, 6)
    mine = assert_booked(await api.book(fans[0], event["id"], key="mine"))
    theirs = [assert_booked(await api.book(f, event["id"])) for f in fans[1:3]]

    body = assert_problem(await api.book(fans[3], event["id"]), 409, "sold-out")
    assert body["available"] == 0

    # The row is locked by someone else: only an answer from memory can come back quickly.
    await row_holder.hold(event["id"])
    for fan, quantity in ((fans[4], 1), (fans[5], 2), (fans[3], 1)):
        response, elapsed = await timed(api.book(fan, event["id"], quantity=quantity))
        assert assert_problem(response, 409, "sold-out")["available"] == 0
        assert elapsed < 1.0, elapsed
    assert await db.fetchval(WAITING_FOR_THE_ROW.replace("SELECT pid", "SELECT count(*)")) == 0
    # A keyed request is never refused from memory: it may be the retry of a booking that is
    # committing elsewhere, so it goes to the row, and its retry gets the booking.
    keyed = asyncio.create_task(api.book(fans[0], event["id"], key="mine"))
    await asyncio.sleep(0.3)
    assert not keyed.done()
    await row_holder.release()
    assert assert_booked(await keyed) == mine

    cancel = await api.http.post(f"/bookings/{theirs[0]['id']}/cancel", headers=fans[1].headers)
    assert cancel.status_code == 200, cancel.text
    # Back on sale at once, well within the 30 s the flag would otherwise last.
    assert_booked(await api.book(fans[4], event["id"]))
    body = assert_problem(await api.book(fans[5], event["id"]), 409, "sold-out")
    assert body["available"] == 0
    assert await booking_rows(db, event["id"]) == 4
    await assert_invariant(db)


@pytest.mark.parametrize("engine", ["on", "off"])
async def test_a_booking_is_decided_on_the_terms_in_force_when_it_commits(
    start_app: StartApp, db: DB, row_holder: RowHolder, engine: str
) -> None:
    """An edit that commits while a booking waits for the inventory row applies to it: the terms
    are read after the lock, in the booking's own transaction."""
    api = await start_app(engine=engine)
    event = await api.event(capacity=10, price=2500)
    (fan,) = await users(api, 1)
    await row_holder.hold(event["id"])
    booking = asyncio.create_task(api.book(fan, event["id"], quantity=5))
    await waiting_for_the_row(db)
    # The edit holds the lock as an organizer's PUT would, and commits first.
    await row_holder.execute(
        "UPDATE events SET max_per_user = 1, price = 9999 WHERE id = $1", event["id"]
    )
    await row_holder.commit()
    assert_problem(await booking, 409, "per-user-limit")
    again = assert_booked(await api.book(fan, event["id"], quantity=1))
    assert again["totalPrice"] == 9999
    await assert_invariant(db)
